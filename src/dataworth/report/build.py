"""``build_report``: the run folder's stored results -> ``report.html`` and ``report.md``.

Only stored files are read (see :mod:`dataworth.report.load`): ``dataworth report RUN_FOLDER``
rebuilds the same report a study wrote, without fitting a model. The two files are written
through temporary names and renamed, so a reader never finds half a report.
"""

from __future__ import annotations

import os
from pathlib import Path

from dataworth.report.html import render_html
from dataworth.report.load import RunData, load_run
from dataworth.report.markdown import render_markdown
from dataworth.report.sections.outline import build_sections, builders_for

HTML_NAME = "report.html"
MARKDOWN_NAME = "report.md"


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)  # atomic within one folder


def parquet_twins(run: RunData) -> list[Path]:
    """Write ``NAME.parquet`` beside every stored ``NAME.csv`` table that has none.

    Valuation results are saved in both formats already; the other tables (baseline metrics,
    the LOO diagnostics, the plan...) are CSV only. With their twins every value of the run
    folder loads into pandas with its type. Existing Parquet files are left alone.

    Returns
    -------
    list of Path
        The files written.
    """
    written = []
    for csv in sorted(run.folder.glob("*.csv")):
        twin = csv.with_suffix(".parquet")
        if twin.exists():
            continue
        frame = run.csv(csv.name)
        if frame is None:
            continue
        # Parquet wants one type per column: text columns stay text (mixed ones become text).
        for column in frame.columns:
            if frame[column].dtype == object:
                frame[column] = frame[column].astype(str)
        frame.to_parquet(twin, index=False)
        written.append(twin)
    return written


def build_report(
    run_folder: str | Path, *, path: str | Path | None = None, parquet: bool = True
) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into a run folder from its stored results.

    Parameters
    ----------
    run_folder : str or Path
        A folder written by ``dataworth study`` (or the temporary folder a study is writing).
    path : str or Path, optional
        The folder's final path, named in the report's commands (default: ``run_folder``).
    parquet : bool, default=True
        Also write a Parquet twin of every CSV table that has none (see :func:`parquet_twins`).

    Returns
    -------
    (Path, Path)
        The HTML and Markdown files.

    Raises
    ------
    DataworthError
        When ``run_folder`` is not a run folder.

    Examples
    --------
    >>> html, md = build_report("runs/breast_cancer-20250101-120000")  # doctest: +SKIP
    """
    run = load_run(run_folder, path=path)
    if parquet:
        parquet_twins(run)
    report = build_sections(run, builders_for(run))
    figures = {stem: run.figure(stem) for stem in report.figure_stems()}
    figures = {stem: p for stem, p in figures.items() if p is not None}
    html_path = run.folder / HTML_NAME
    md_path = run.folder / MARKDOWN_NAME
    _write_atomically(html_path, render_html(report, figures))
    _write_atomically(md_path, render_markdown(report))
    return html_path, md_path


__all__ = ["build_report", "parquet_twins"]
