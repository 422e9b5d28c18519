"""Part 4 of the report: TMC-Shapley values of points and groups, their efficiency, and their
comparison with exact LOO and the other methods."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dataworth.methods.result import ValuationResult
from dataworth.report.load import RunData
from dataworth.report.model import (
    Heading,
    Paragraph,
    Section,
    Table,
    fmt,
    pct,
)
from dataworth.report.sections.parts import _figure, _not_run, _sign_sentence, _thumbnails
from dataworth.report.sections.stability import loo_noise_sentence, stability_blocks

# How many of the highest and lowest Shapley values the report lists.
_EXTREMES = 5


def shapley_section(run: RunData) -> Section:
    """TMC-Shapley values of points and groups, and their comparison with LOO."""
    section = Section("shapley", "Shapley values", "Part 4")
    points = run.results.get("shapley_points")
    groups = run.results.get("shapley_groups")
    if points is None and groups is None:
        return _not_run(section, "TMC-Shapley", "no shapley_points.parquet")
    first = points if points is not None else groups
    p = first.params
    section.add(
        Paragraph(
            "Truncated Monte Carlo Shapley (Ghorbani and Zou, ICML 2019, Algorithm 1): each "
            "random permutation of the players is walked prefix by prefix, every player gets "
            "its marginal contribution `U(prefix + i) - U(prefix)`, and once a prefix scores "
            f"within {fmt(p.get('tol'))} × |U(D)| of U(D) the rest of the permutation is "
            f"truncated (contributions 0, no fit). As the course asks, the estimate stops after "
            f"exactly {fmt(p.get('permutations'))} permutations (seed {fmt(first.seed)}); the "
            "standard error of each value is taken across permutations."
        )
    )
    if points is not None:
        section.add(*_point_shapley_blocks(run, points))
    if groups is not None:
        section.add(*_group_shapley_blocks(run, groups))
    section.add(*stability_blocks(run))
    if points is not None:
        section.add(*_loo_comparison_blocks(run, points))
    return section


def efficiency_numbers(result: ValuationResult) -> tuple[float, float | None]:
    """The sum of the values and ``U(D) - U(empty)`` (None when not stored)."""
    full, empty = result.manifest.get("full_value"), result.manifest.get("empty_value")
    target = None if full is None or empty is None else float(full) - float(empty)
    return float(np.sum(result.values)), target


def _point_shapley_blocks(run: RunData, points: ValuationResult) -> list:
    v = points.values
    total, target = efficiency_numbers(points)
    efficiency = f"The values sum to {fmt(total, 6)}"
    if target is not None:
        efficiency += (
            f"; efficiency requires U(D) - U(empty) = {fmt(points.manifest['full_value'], 6)} - "
            f"({fmt(points.manifest['empty_value'], 6)}) = {fmt(target, 6)}"
        )
        gap = points.manifest.get("efficiency_gap")
        if gap is not None:
            efficiency += f"; the stored efficiency gap, left by truncation, is {fmt(gap)}"
    stats = pd.DataFrame(
        {
            "statistic": [
                "players",
                "min",
                "25%",
                "median",
                "75%",
                "max",
                "share > 0",
                "share < 0",
            ],
            "value": [
                len(v),
                v.min(),
                *np.quantile(v, [0.25, 0.5, 0.75]),
                v.max(),
                float(np.mean(v > 0)),
                float(np.mean(v < 0)),
            ],
        }
    )
    order = np.argsort(-v, kind="stable")
    rows = (
        np.concatenate([order[:_EXTREMES], order[-_EXTREMES:]]) if len(v) > 2 * _EXTREMES else order
    )
    extremes = pd.DataFrame(
        {
            "player_id": points.player_ids[rows],
            "rank": [int(np.flatnonzero(order == r)[0]) + 1 for r in rows],
            "value": v[rows],
            "stderr": points.stderr[rows] if points.stderr is not None else np.nan,
        }
    )
    return [
        Heading("Training points"),
        Paragraph(
            f"{len(v)} training points: {fmt(points.n_evaluations)} prefix evaluations recorded, "
            f"{pct(points.params.get('truncated_share', 0))} of prefixes truncated, "
            f"{fmt(points.n_fallback)} scored by the fallback model. {efficiency}."
        ),
        Table(
            "shapley_distribution",
            stats,
            "Distribution of the Shapley values of all training points.",
            "shapley_points.parquet",
        ),
        *_figure(run, "shapley_distribution", "Distribution of all Shapley values."),
        *_thumbnails(run, "shapley_points", "TMC-Shapley"),
        Paragraph(_sign_sentence(v, "Shapley values")),
        Table(
            "shapley_extremes",
            extremes,
            f"The {_EXTREMES} highest and {_EXTREMES} lowest Shapley values (rank 1 = highest).",
            "shapley_points.parquet",
            headers={"player_id": "id", "value": "Shapley", "stderr": "std. error"},
        ),
    ]


def _group_shapley_blocks(run: RunData, groups: ValuationResult) -> list:
    frame = groups.to_frame()
    total, target = efficiency_numbers(groups)
    columns = [
        c for c in ("player_id", "size", "value", "stderr", "sum_of_point_values") if c in frame
    ]
    text = (
        f"The players are the {len(groups)} groups of part 3 (a group joins a coalition as a "
        f"whole): {fmt(groups.n_evaluations)} prefix evaluations recorded, "
        f"{pct(groups.params.get('truncated_share', 0))} truncated. The group values sum to "
        f"{fmt(total, 6)}"
    )
    if target is not None:
        text += f" (U(D) - U(empty) = {fmt(target, 6)})"
    text += "."
    if "sum_of_point_values" in frame:
        text += (
            " The last column adds up the Shapley values of each group's points from the point "
            "game, for comparison; the two need not agree, since the games differ."
        )
    return [
        Heading("Groups"),
        Paragraph(text),
        Table(
            "shapley_groups",
            frame[columns],
            "TMC-Shapley values of the groups.",
            "shapley_groups.parquet",
            headers={
                "player_id": "group",
                "value": "Shapley",
                "stderr": "std. error",
                "sum_of_point_values": "sum of point values",
            },
        ),
        *_figure(run, "shapley_groups", "Group Shapley values (± 1 standard error) by size."),
    ]


def _loo_comparison_blocks(run: RunData, points: ValuationResult) -> list:
    blocks: list = []
    loo = run.results.get("loo")
    if loo is not None:
        index = {str(p): i for i, p in enumerate(points.player_ids)}
        rows = [index.get(str(p)) for p in loo.player_ids]
        have = [r is not None for r in rows]
        rows_ok = [r for r in rows if r is not None]
        table = pd.DataFrame(
            {
                "player_id": loo.player_ids[have],
                "loo": loo.values[have],
                "shapley": points.values[rows_ok],
                "stderr": points.stderr[rows_ok] if points.stderr is not None else np.nan,
            }
        )
        blocks += [
            Heading("The LOO points"),
            Table(
                "shapley_loo_points",
                table,
                "Shapley values (with one standard error) of the points valued by LOO in part 2.",
                "shapley_points.parquet, loo.parquet",
                headers={
                    "player_id": "id",
                    "loo": "LOO",
                    "shapley": "Shapley",
                    "stderr": "std. error",
                },
            ),
            *_figure(
                run, "shapley_loo_points", "Shapley values of the LOO points, ± 1 std. error."
            ),
        ]
    c = run.comparison
    if c is not None:
        scope = (
            f"all {fmt(c['n_common'])} training points"
            if c.get("loo_points") == "all"
            else f"the {fmt(c['n_common'])} points valued by LOO"
        )
        blocks += [
            Heading("Shapley against LOO"),
            Paragraph(
                f"Over {scope}, the rank agreement of Shapley and LOO is Spearman "
                f"{fmt(c['spearman'], 3)} and Kendall {fmt(c['kendall'], 3)}; of the "
                f"{fmt(c['k'])} highest Shapley values, {pct(c['top_overlap'], 0)} are among "
                f"the {fmt(c['k'])} highest LOO values, and of the {fmt(c['k'])} lowest, "
                f"{pct(c['bottom_overlap'], 0)}. LOO measures a point's effect given all others; "
                "Shapley averages it over coalitions of every size, so the two rank points "
                "differently when points substitute for one another."
            ),
            *[Paragraph(s) for s in [loo_noise_sentence(run)] if s],
            *_figure(run, "shapley_vs_loo", "Shapley value against exact LOO influence."),
        ]
    methods = run.csv("method_comparison.csv")
    if methods is not None:
        blocks += [
            Heading("Every method compared"),
            Paragraph(
                "Rank correlations of each method's values with TMC-Shapley and with exact LOO "
                "of all points, over the points both valued; `evaluations` counts the models "
                "or utility evaluations each method needed (0 for closed forms)."
            ),
            Table(
                "method_comparison",
                methods,
                "Methods compared.",
                "method_comparison.csv",
                headers={
                    "spearman_tmc": "Spearman vs TMC",
                    "kendall_tmc": "Kendall vs TMC",
                    "spearman_loo_all": "Spearman vs LOO",
                    "kendall_loo_all": "Kendall vs LOO",
                },
            ),
        ]
    # On image data, what each of the other methods flags, as pictures.
    for stem, what in (
        ("loo_all", "exact LOO of every point"),
        ("knn_shapley", "KNN-Shapley"),
        ("data_oob", "Data-OOB"),
        ("influence", "the influence function"),
    ):
        blocks += _thumbnails(run, stem, what)
    return blocks
