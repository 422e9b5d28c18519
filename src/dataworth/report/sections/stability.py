"""Report blocks on how much the Shapley values can be relied on.

They read what the study's stable-TMC step stored: the exact group values beside the
10-permutation estimates (``shapley_groups_exact``), the run continued until its ranks were
stable (``shapley_points_stable``), its rank stability (``shapley_rank_stability.csv``) and the
summary of both (``shapley_stability.json``). Nothing is fitted here.
"""

from __future__ import annotations

import json

import pandas as pd

from dataworth.report.load import RunData
from dataworth.report.model import Figure, Heading, Paragraph, Table, fmt, pct

# A rank correlation with LOO that rises by more than this with more permutations is called
# sampling noise in the 10-permutation figure.
_NOISE_GAIN = 0.05


def stability_summary(run: RunData) -> dict | None:
    """``shapley_stability.json``, or None when the study did not write it."""
    path = run.folder / "shapley_stability.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def stability_blocks(run: RunData) -> list:
    """Exact group values beside the estimates; the stable run, its intervals and ranks."""
    summary = stability_summary(run)
    if summary is None:
        return []
    blocks: list = [Heading("How far the course's run is from the answer")]
    groups, exact = run.results.get("shapley_groups"), run.results.get("shapley_groups_exact")
    if "groups" in summary and groups is not None and exact is not None:
        blocks += _group_blocks(summary["groups"], groups, exact)
    points = summary.get("points")
    if points is not None:
        blocks += _point_blocks(run, points)
    return blocks


def _group_blocks(d: dict, groups, exact) -> list:
    n = d["players"]
    text = (
        f"The {n} groups make a game of 2^{n} = {2**n:,} coalitions, few enough to compute the "
        f"exact Shapley values ({fmt(exact.n_evaluations)} evaluations). They range from "
        f"{fmt(d['exact_range'][0])} to {fmt(d['exact_range'][1])}; the "
        f"{fmt(groups.params.get('permutations'))}-permutation estimates range from "
        f"{fmt(d['estimate_range'][0])} to {fmt(d['estimate_range'][1])}, off by "
        f"{fmt(d['mean_abs_error'])} on average and {fmt(d['max_abs_error'])} at most."
    )
    if "outside_2se" in d:
        text += (
            f" For {d['outside_2se']} of the {n} groups the exact value lies outside the "
            "estimate ± 2 standard errors: standard errors from so few heavy-tailed "
            "permutations (a group's contribution is large only when it comes early) "
            "understate the error."
        )
    if d.get("with_ci"):
        text += (
            f" The 95% intervals ({groups.ci_note}) miss the exact value for "
            f"{d['outside_ci']} of the {d['with_ci']} groups."
        )
    elif groups.ci_note:
        text += f" Intervals of the estimates: {groups.ci_note}."
    frame = pd.DataFrame(
        {
            "player_id": groups.player_ids,
            "value": groups.values,
            "stderr": groups.stderr,
            "exact": exact.values,
            "error": groups.values - exact.values,
        }
    )
    return [
        Paragraph(text),
        Table(
            "shapley_groups_exact",
            frame,
            "Group Shapley values: the estimate beside the exact value.",
            "shapley_groups.parquet, shapley_groups_exact.parquet",
            headers={
                "player_id": "group",
                "value": "estimate",
                "stderr": "std. error",
                "exact": "exact",
                "error": "estimate - exact",
            },
        ),
    ]


def _point_blocks(run: RunData, d: dict) -> list:
    short = d["short_vs_stable"]
    text = _short_sentence(d) + (
        " Beside them the study continued TMC with the same seed, to "
        f"stop at the first of: {d.get('until') or 'a fixed count'}. It stopped at "
        f"{d['stopped_by']}, after {fmt(d['permutations'])} permutations. Of its intervals ("
        f"{d['ci_note']}), "
        f"{fmt(d['ci_contains_zero'])} of {fmt(d['with_ci'])} contain 0, so those points "
        "cannot be told from worthless."
    )
    if "stability" in d:
        text += " " + d["stability"]["verdict"]
    text += (
        f" The {d['short_permutations']}-permutation ranking agrees with the longer run's with "
        f"Spearman {fmt(short['spearman'], 3)}; of its {fmt(short['k'])} highest values "
        f"{pct(short['top_overlap'], 0)} are among the longer run's {fmt(short['k'])} highest, "
        f"and of its {fmt(short['k'])} lowest {pct(short['bottom_overlap'], 0)}."
    )
    blocks: list = [Paragraph(text)]
    if run.figure("shapley_intervals") is not None:
        blocks.append(
            Figure(
                "shapley_intervals",
                "The highest and lowest Shapley values of the longer run with their 95% "
                "intervals; crosses: the course's run.",
            )
        )
    table = run.csv("shapley_rank_stability.csv")
    if table is not None:
        blocks.append(
            Table(
                "shapley_rank_stability",
                table,
                "Top and bottom of the longer run: the bootstrap probability that each row "
                "belongs there, and whether it is distinguishable from the next row at 95%.",
                "shapley_rank_stability.csv",
                headers={"player_id": "id", "probability": "P(in this end)"},
            )
        )
    return blocks


def _short_sentence(d: dict) -> str:
    """What the course's run's own intervals say."""
    n = d["short_permutations"]
    if not d.get("short_with_ci"):
        return f"The course's {n} permutations give no interval ({d.get('short_ci_note', '')})."
    return (
        f"The course's {n} permutations give intervals ({d['short_ci_note']}) of which "
        f"{fmt(d['short_ci_contains_zero'])} of {fmt(d['short_with_ci'])} contain 0 (a point "
        "whose interval contains 0 cannot be told from worthless)."
    )


def loo_noise_sentence(run: RunData) -> str | None:
    """Whether the low Shapley-LOO agreement of the short run is sampling noise."""
    summary = stability_summary(run)
    points = (summary or {}).get("points") or {}
    if "loo_vs_stable" not in points:
        return None
    short, stable = points["loo_vs_short"], points["loo_vs_stable"]
    text = (
        f"With {fmt(points['permutations'])} permutations instead of "
        f"{fmt(points['short_permutations'])}, Spearman with LOO is {fmt(stable['spearman'], 3)} "
        f"instead of {fmt(short['spearman'], 3)}"
    )
    gain = stable["spearman"] - short["spearman"]
    if gain > _NOISE_GAIN:
        return text + (
            f", and {fmt(points['ci_contains_zero'])} of the {fmt(points['with_ci'])} 95% "
            "intervals contain 0: much of the low agreement of the course's run is sampling "
            "noise in the Shapley values, not a difference between the methods."
        )
    return text + (
        ": more permutations do not raise the agreement, so the disagreement is between the "
        "methods, not sampling noise."
    )
