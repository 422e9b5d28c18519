"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) via Playwright.

Networking is off, so the page must render from the file alone. Skipped only when Chromium or
the Playwright package is missing (``scripts/install-browser.sh`` installs Chromium). Playwright's
own browser download is never used: the test launches the system Chromium.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataworth.cli import app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(
        "Chromium is not installed (see scripts/install-browser.sh)", allow_module_level=True
    )

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECTIONS = (
    "dataset",
    "features",
    "split",
    "baselines",
    "metric",
    "loo",
    "groups",
    "shapley",
    "ame",
    "appendix",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "run"
    result = CliRunner().invoke(
        app,
        [
            "study",
            "--rows",
            "150",
            "--train-size",
            "100",
            "--baselines",
            "logreg,knn",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out / "report.html"


@pytest.fixture(scope="module")
def seen() -> dict[str, list[str]]:
    """Console errors and requested URLs, filled while the page loads."""
    return {"errors": [], "requests": []}


@pytest.fixture(scope="module")
def page(report, seen):
    """The report opened offline in headless Chromium."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))
        page.on("request", lambda r: seen["requests"].append(r.url))
        page.goto(report.as_uri(), wait_until="load")
        yield page
        context.close()
        browser.close()


def test_no_console_errors_and_no_requests_but_the_file(page, report, seen):
    assert seen["errors"] == []
    # Inlined images are data: URIs; nothing else may be fetched.
    assert [u for u in seen["requests"] if not u.startswith("data:")] == [report.as_uri()]


def test_every_image_is_decoded_with_a_size(page):
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight, e.alt])"
    )
    assert len(images) >= 10
    for complete, width, height, alt in images:
        assert complete and width > 0 and height > 0, alt


def test_every_section_is_present_and_visible(page):
    for key in SECTIONS:
        section = page.locator(f"section#{key}")
        assert section.count() == 1, key
        assert section.locator("h2").is_visible(), key
    # Nothing spills beyond the page's width (wide tables scroll inside their own box).
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0


def test_full_page_screenshot_and_pdf(page, report):
    shot = report.with_name("report-screenshot.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    pdf = report.with_name("report.pdf")
    page.pdf(path=str(pdf), format="A4", print_background=True)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 100_000
    # The print style sheet starts a page for each part: at least six pages.
    assert len(re.findall(rb"/Type\s*/Page(?![s\w])", data)) >= 6
