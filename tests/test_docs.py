"""The documentation's sources agree with the package: every public name is in the API
reference, every page the README links to exists, every page is in the site's table of contents.

The site itself is built by ``sh docs/build.sh`` (CI builds it with every warning an error); these
checks need no documentation tools, so they run with the tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import dataworth as dw

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_every_public_name_is_in_the_api_reference() -> None:
    listed = set(re.findall(r"^   (\w+)$", (DOCS / "api.md").read_text(), flags=re.M))
    public = {name for name in dw.__all__ if not name.startswith("__")}
    assert public - listed == set()
    assert listed - public == set()  # nothing documented that the package does not export


def test_every_link_of_the_readme_is_a_file_of_the_repository() -> None:
    links = re.findall(r"\]\(([^)#]+)\)", (ROOT / "README.md").read_text())
    assert links, "the README links to its documentation"
    missing = [link for link in links if not (ROOT / link).exists()]
    assert missing == []


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 100
    blocks = re.findall(r"```bash\n(.+?)\n```", text)
    assert blocks[0].endswith("dataworth study") and blocks[1].endswith("python -m pytest")
    # .ci/run runs exactly the README's test command.
    assert blocks[1] in (ROOT / ".ci" / "run").read_text()


def test_every_page_is_in_the_table_of_contents() -> None:
    index = (DOCS / "index.md").read_text()
    pages = [p.relative_to(DOCS).with_suffix("").as_posix() for p in DOCS.glob("**/*.md")]
    generated = {"cli", "index"}  # cli.md is written by conf.py at each build
    loose = [
        page
        for page in pages
        if page not in generated and not page.startswith("_") and f"\n{page}\n" not in index
    ]
    assert loose == []


def test_every_gallery_example_runs_in_the_build() -> None:
    examples = sorted((DOCS / "examples").glob("*.py"))
    assert examples and all(p.name.startswith("plot_") for p in examples)
