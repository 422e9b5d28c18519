"""The report's cleaning section: the verified gain, the held-out removal curves, the flags.

Built from ``clean.json``, ``clean_curves.csv`` and ``flags.csv`` alone, as every section is
built from stored files; the figure is drawn by :func:`clean_figures` when the step runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dataworth.report.figures import new_figure, save_figure
from dataworth.report.load import RunData
from dataworth.report.model import Heading, Paragraph, Section, Table, fmt
from dataworth.report.sections.parts import _figure, _not_run

#: How many of the most suspect rows the report lists.
_FLAG_ROWS = 20
_ORDERS = {
    "lowest_first": "most suspect (lowest-valued) first",
    "random": "random rows",
    "highest_first": "least suspect (highest-valued) first",
}


def clean_figures(curves: pd.DataFrame, metric: str, folder: str | Path) -> dict[str, list[Path]]:
    """The held-out removal curves with their 95% intervals, one line per order."""
    fig, ax = new_figure()
    for order, label in _ORDERS.items():
        part = curves[curves["order"] == order]
        share = 100 * part["fraction"]
        ax.plot(share, part["metric"], marker="o", label=label)
        ax.fill_between(share, part["low"], part["high"], alpha=0.15)
    ax.set_xlabel("rows acted on (% of the cleaned part)")
    ax.set_ylabel(f"held-out {metric}")
    ax.set_title("Held-out removal curves (mean over repeats, 95% intervals)")
    ax.legend()
    return {"clean_curves": save_figure(fig, folder, "clean_curves")}


def _interval(d: dict) -> str:
    if d.get("one_sided"):
        return f"{fmt(d.get('mean'))} (one-sided 95%: at least {fmt(d.get('low'))})"
    return f"{fmt(d.get('mean'))} (95% {fmt(d.get('low'))} to {fmt(d.get('high'))})"


def _deciding_rows(decided: dict | None) -> list[dict[str, str]]:
    """The table's rows of the intervals that decide (absent from older run folders)."""
    if not decided:
        return []
    name = decided["metric"]
    return [
        {"measure": f"deciding gain ({name})", "value": _interval(decided["gain"])},
        {
            "measure": "deciding gain over random rows",
            "value": _interval(decided["gain_over_random"]),
        },
    ]


def clean_section(run: RunData) -> Section:
    """The decision, the figures behind it and the most suspect rows."""
    section = Section("clean", "Acting on the values: cleaning", "")
    path = run.folder / "clean.json"
    if not path.exists():
        return _not_run(section, "Cleaning", "no clean.json in the run folder")
    info = json.loads(path.read_text(encoding="utf-8"))
    metric = info.get("metric", "the metric")
    section.add(
        Paragraph(
            "Every row gets a suspicion from the out-of-fold probability of its label, its "
            "Data-OOB value and its neighbours' labels (exact duplicates with another label and "
            "extreme outliers count too); a removal curve on folds of the rows chooses how many "
            "to act on. The gain is measured by cross-fitting: over "
            f"{fmt(info['gain'].get('n_repeats'))} random splits, everything is decided on one "
            "part and the refitted model is scored on the other part, which took part in "
            "nothing, against acting on as many random rows. The interval is Student's t with "
            "the Nadeau-Bengio variance `s^2 (1/J + n_test/n_train)` for overlapping splits. "
            "Action is recommended only when the one-sided 95% intervals of the deciding gain "
            "and of its gain over random rows both lie above zero and the gain on the given "
            "labels is not negative on average. With accuracy, the deciding score is the "
            "accuracy on the true labels of the held-out rows, estimated from their given labels "
            "through the label-noise matrix estimated on the cleaned part (it differs from the "
            "given labels' accuracy only where the noise favours some classes)."
        ),
        Paragraph(info["decision"]),
        Table(
            "clean_gain",
            pd.DataFrame(
                [
                    {"measure": f"held-out {metric} before", "value": _interval(info["before"])},
                    {"measure": f"held-out {metric} after", "value": _interval(info["after"])},
                    {"measure": "gain (after - before)", "value": _interval(info["gain"])},
                    {
                        "measure": "as many random rows (- before)",
                        "value": _interval(info["random_gain"]),
                    },
                    {
                        "measure": "gain over random rows",
                        "value": _interval(info["gain_over_random"]),
                    },
                    *_deciding_rows(info.get("decided_by")),
                ]
            ),
            f"Action `{info['action']}`; rows flagged: {fmt(info['n_flagged'])} of "
            f"{fmt(info['n_rows'])} (share chosen on all rows: {fmt(info['fraction_chosen'])}).",
            "clean.json",
        ),
    )
    section.add(*_figure(run, "clean_curves", "Held-out removal curves with 95% intervals."))
    flags = run.csv("flags.csv")
    if flags is not None and len(flags):
        top = flags.sort_values("score", ascending=False, kind="stable").head(_FLAG_ROWS)
        title = "Flagged rows" if info["n_flagged"] else "Most suspect rows (none acted on)"
        section.add(
            Heading(title),
            Table(
                "clean_flags",
                top,
                f"The {len(top)} most suspect rows; every row is in flags.csv.",
                "flags.csv",
            ),
        )
    return section
