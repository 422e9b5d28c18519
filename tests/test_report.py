"""The report: both files, every section, every number equal to the stored results, offline HTML,
a rebuild that fits nothing, and one-line errors for bad folders."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dataworth.cli import app
from dataworth.report.build import build_report
from dataworth.report.model import fmt

runner = CliRunner()
SMALL = ["--rows", "150", "--train-size", "100", "--baselines", "logreg,knn"]
SECTIONS = {
    "checks": "Data checks",
    "dataset": "Dataset",
    "features": "Features and labels",
    "split": "Train/test split",
    "baselines": "Baseline models",
    "metric": "Primary metric",
    "loo": "Leave-one-out influence",
    "groups": "Group influence",
    "shapley": "Shapley values",
    "ame": "Average marginal effects (AME)",
    "clean": "Acting on the values: cleaning",
    "appendix": "Methods appendix",
}


def _invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """One real small study (about 10 s), shared by the tests of this file."""
    out = tmp_path_factory.mktemp("report") / "run"
    result = _invoke("study", *SMALL, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def copy_of_run(run_folder, tmp_path) -> Path:
    """A private copy for tests that add files or rebuild."""
    target = tmp_path / "run"
    shutil.copytree(run_folder, target)
    return target


class _Tables(HTMLParser):
    """Every ``<table id=...>`` of a page: rows of (data-value, shown text) per cell."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str]]]] = {}
        self._table: str | None = None
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._table is not None:
            self._cell = [attrs.get("data-value"), ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append(tuple(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None


def _tables(html: str) -> dict[str, list[list[tuple[str, str]]]]:
    parser = _Tables()
    parser.feed(html)
    # Drop the header row (it has no td cells).
    return {key: [row for row in rows if row] for key, rows in parser.tables.items()}


def _column(rows, index: int) -> list[tuple[str, str]]:
    return [row[index] for row in rows]


def _read(folder: Path) -> tuple[str, str]:
    return (folder / "report.html").read_text(), (folder / "report.md").read_text()


# --- the files and their sections ----------------------------------------------------------------


def test_study_writes_html_and_markdown_reports(run_folder):
    html, md = _read(run_folder)
    assert html.startswith("<!DOCTYPE html>")
    assert md.startswith("# Training-data valuation: breast_cancer")
    manifest = json.loads((run_folder / "manifest.json").read_text())
    assert manifest["steps"][-1] == "report"
    assert {"report.html", "report.md"} <= set(manifest["files"])


def test_every_section_is_present_in_the_course_order(run_folder):
    html, md = _read(run_folder)
    ids = re.findall(r'<section class="[^"]*" id="([a-z]+)"', html)
    assert ids == list(SECTIONS)
    headings = re.findall(r"^## \d+\. (.+)$", md, flags=re.MULTILINE)
    assert headings == list(SECTIONS.values())
    for title in SECTIONS.values():
        assert title in html


def test_markdown_links_figures_beside_it_and_html_inlines_them(run_folder):
    html, md = _read(run_folder)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 10
    for link in links:
        assert link.startswith("figures/") and (run_folder / link).exists()
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == len(links)
    assert all(s.startswith("data:image/png;base64,") for s in sources)


def test_html_refers_to_nothing_outside_itself(run_folder):
    html, _ = _read(run_folder)
    references = re.findall(r'(?:src|href)\s*=\s*["\']?([^"\'\s>]+)', html)
    assert references  # the images and the table of contents
    for ref in references:
        assert ref.startswith(("data:", "#")), ref
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html and "@import" not in html


# --- every number shown equals the stored value ---------------------------------------------------


def test_loo_table_shows_the_values_of_loo_parquet(run_folder):
    html, md = _read(run_folder)
    stored = pd.read_parquet(run_folder / "loo.parquet")
    rows = _tables(html)["table-loo"]
    assert len(rows) == len(stored) == 10
    shown = {
        raw_id: value for (raw_id, _), value in zip(_column(rows, 0), _column(rows, 2), strict=True)
    }
    for player, value in zip(stored["player_id"], stored["value"], strict=True):
        raw, text = shown[str(player)]
        assert float(raw) == value  # full precision, exactly
        assert text == fmt(value)
        assert re.search(
            rf"^\| {re.escape(str(player))} \| [^|]+ \| {re.escape(fmt(value))} \|", md, re.M
        )


def test_loo_diagnostics_and_paragraph_come_from_the_stored_diagnostics(run_folder):
    html, md = _read(run_folder)
    diagnostics = pd.read_csv(run_folder / "loo_table.csv", keep_default_na=False)
    rows = _tables(html)["table-loo"]
    by_id = {row[0][0]: row for row in rows}
    for record in diagnostics.itertuples():
        row = by_id[str(record.player_id)]
        assert float(row[3][0]) == record.neighbour_agreement
        assert int(row[5][0]) == record.outlier_rank
        assert row[8][1] == record.flags
    flagged = int((diagnostics["flags"] != "").sum())
    sentence = f"{flagged} of the 10 valued points are flagged by at least one check."
    assert sentence in md and sentence in html
    # The most influential point is named first, with its stored value.
    top = diagnostics.loc[diagnostics["value"].abs().idxmax()]
    assert (
        f"Point {top['player_id']} (label {top['label']}) has influence {top['value']:+.4g}" in md
    )


def test_shapley_efficiency_sum_is_the_sum_of_the_stored_values(run_folder):
    html, md = _read(run_folder)
    values = pd.read_parquet(run_folder / "shapley_points.parquet")["value"].to_numpy()
    meta = json.loads((run_folder / "shapley_points.json").read_text())
    total = fmt(float(values.sum()), 6)
    target = fmt(meta["manifest"]["full_value"] - meta["manifest"]["empty_value"], 6)
    sentence = f"The values sum to {total}; efficiency requires U(D) - U(empty)"
    assert sentence in md and sentence in html
    assert f"= {target}" in md
    stats = {row[0][1]: float(row[1][0]) for row in _tables(html)["table-shapley_distribution"]}
    assert stats["median"] == np.median(values)
    assert stats["max"] == values.max() and stats["min"] == values.min()


def test_group_and_group_shapley_tables_equal_their_parquet_files(run_folder):
    html, _ = _read(run_folder)
    tables = _tables(html)
    for key, stem, column in (
        ("table-groups", "groups", 3),
        ("table-shapley_groups", "shapley_groups", 2),
    ):
        stored = pd.read_parquet(run_folder / f"{stem}.parquet")
        rows = tables[key]
        assert [r[0][0] for r in rows] == stored["player_id"].tolist()
        assert [float(r[column][0]) for r in rows] == stored["value"].tolist()


def test_baseline_metrics_and_confusion_matrix_equal_the_stored_ones(run_folder):
    html, md = _read(run_folder)
    baseline = json.loads((run_folder / "baseline.json").read_text())
    rows = _tables(html)["table-baseline_metrics"]
    for row in rows:
        stored = baseline["metrics"][row[0][1]]
        assert float(row[1][0]) == stored["accuracy"]
        assert float(row[5][0]) == stored["neg_log_loss"]
    matrix = [[int(cell[0]) for cell in row[1:]] for row in _tables(html)["table-confusion"]]
    assert matrix == baseline["confusion_matrix"]["matrix"]
    assert baseline["primary_metric"]["justification"] in md


def test_appendix_states_seed_fits_fallbacks_timings_versions_and_command(run_folder):
    html, md = _read(run_folder)
    rows = {row[0][1]: row for row in _tables(html)["table-methods"]}
    for stem in ("loo", "groups", "shapley_points", "shapley_groups"):
        meta = json.loads((run_folder / f"{stem}.json").read_text())
        row = rows[stem]
        assert int(row[4][0]) == meta["n_evaluations"]
        assert int(row[5][0]) == meta["n_fitted"]
        assert int(row[6][0]) == meta["n_fallback"]
        assert float(row[7][0]) == sum(meta["timings"].values())
    versions = json.loads((run_folder / "loo.json").read_text())["manifest"]["versions"]
    for package, version in versions.items():
        assert f"| {package} | {version} |" in md
    command = f"dataworth study --config {run_folder.resolve() / 'study.toml'}"
    assert command in md and command in html
    assert f"dataworth report {run_folder.resolve()}" in md


def test_every_csv_table_has_a_parquet_twin_with_the_same_values(run_folder):
    for csv in run_folder.glob("*.csv"):
        twin = csv.with_suffix(".parquet")
        assert twin.exists(), twin.name
    table = pd.read_parquet(run_folder / "loo_table.parquet")
    loo = pd.read_parquet(run_folder / "loo.parquet")
    assert table["value"].tolist() == loo["value"].tolist()


# --- AME ------------------------------------------------------------------------------------------


def test_ame_section_says_not_run_without_ame_results(copy_of_run):
    for path in copy_of_run.glob("ame*"):
        path.unlink()
    build_report(copy_of_run)
    html, md = _read(copy_of_run)
    assert "AME was not run in this study" in md
    assert "AME was not run in this study" in html


def test_ame_section_reports_the_studys_own_ame_results(run_folder):
    from dataworth.methods.result import ValuationResult

    _html, md = _read(run_folder)
    stored = ValuationResult.load(run_folder / "ame_metric")
    assert "AME was not run in this study" not in md
    assert f"selects {int(stored.extra['selected'].sum())} points" in md


def test_ame_section_shows_stored_ame_results_with_the_knockoff_selection(copy_of_run):
    from dataworth.methods.result import ValuationResult

    # A stored AME result as the study will save it (values made up: the report must only
    # show what is stored, whatever it is).
    ids = pd.read_parquet(copy_of_run / "loo_all.parquet")["player_id"].astype(int).to_numpy()
    values = np.linspace(-0.01, 0.02, len(ids))
    selected = values > 0.018
    result = ValuationResult(
        method="ame",
        values=values,
        player_ids=ids,
        counts=np.full(len(ids), 400),
        params={
            "n_subsets": 400,
            "law": {"law": "grid", "values": [0.2, 0.4, 0.6, 0.8]},
            "estimator": "lasso",
            "value_scale": 5.2083,
            "fdr": 0.1,
            "knockoff_plus": True,
            "knockoff_threshold": 0.5,
            "n_selected": int(selected.sum()),
            "target": "metric",
        },
        seed=0,
        n_evaluations=400,
        n_fitted=400,
        extra={"w": np.where(selected, 1.0, 0.0), "selected": selected},
        manifest={"metric": "neg_log_loss"},
    )
    result.save(copy_of_run / "ame")
    build_report(copy_of_run)
    html, md = _read(copy_of_run)
    assert "not run" not in md.split("## 9.")[1].split("## 10.")[0]
    assert (
        f"Knockoff+ selection at q = 0.1 (threshold on W: 0.5) selects {selected.sum()} points"
        in md
    )
    for player in ids[selected]:
        assert f"`{player}`" in md.split("Selected: ")[1].split("\n")[0]
    rows = _tables(html)["table-ame"]
    assert float(rows[0][1][0]) == values.max()
    assert rows[0][0][0] == str(ids[np.argmax(values)])
    assert "ame" in {row[0][1] for row in _tables(html)["table-methods"]}


# --- rebuilding and errors ------------------------------------------------------------------------


def test_report_command_rebuilds_the_same_report_without_fitting(run_folder, monkeypatch):
    before = _read(run_folder)
    (run_folder / "report.md").unlink()
    (run_folder / "report.html").unlink()

    def no_fits(*args, **kwargs):
        raise AssertionError("the report must not load data, evaluate or fit anything")

    import dataworth.study.runner
    from dataworth.engine.utility import Utility

    monkeypatch.setattr(Utility, "evaluate", no_fits)
    monkeypatch.setattr(Utility, "__init__", no_fits)
    monkeypatch.setattr(dataworth.study.runner, "load_task", no_fits)
    result = _invoke("report", str(run_folder))
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output
    # The same bytes the study wrote: the report depends on nothing but the stored results.
    assert _read(run_folder) == before


def test_rebuilding_in_place_is_byte_identical(copy_of_run):
    build_report(copy_of_run)
    first = _read(copy_of_run)
    build_report(copy_of_run)
    assert _read(copy_of_run) == first


@pytest.mark.parametrize("make", ["missing", "file", "not_a_run"])
def test_a_bad_folder_gives_exit_2_and_one_line(tmp_path, make):
    target = tmp_path / "x"
    if make == "file":
        target.write_text("not a folder")
    elif make == "not_a_run":
        target.mkdir()
    result = _invoke("report", str(target))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output


def test_a_partial_run_folder_reports_the_parts_it_holds(tmp_path):
    out = tmp_path / "baseline-only"
    result = _invoke("baseline", *SMALL, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert not (out / "report.html").exists()  # only `study` runs the report step
    result = _invoke("report", str(out))
    assert result.exit_code == 0, result.output
    html, md = _read(out)
    assert "Leave-one-out was not run in this study" in md
    assert "TMC-Shapley was not run in this study" in md
    assert "table-baseline_metrics" in html
