"""The study step beside the course's 10-permutation TMC run: how far it is from the answer.

Two checks, each within a bounded cost:

- the group game has few players, so its exact Shapley values are computed when the measured
  cost per evaluation says ``2^n`` evaluations fit
  (:mod:`dataworth.methods.shapley.affordable`), and the 10-permutation group estimates are set
  beside them;
- TMC of the points is continued until the top and bottom ``k`` values are stable (a bootstrap
  over the permutations), within a share of the study's time budget and a permutation cap, and
  its 95% intervals, rank probabilities and agreement with the 10-permutation run and with LOO
  are stored for the report (``shapley_stability.json``, ``shapley_points_stable.*``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dataworth.methods.compare import compare_values
from dataworth.methods.result import ValuationResult
from dataworth.methods.shapley import tmc_shapley
from dataworth.methods.shapley.affordable import EXACT_SECONDS, exact_beside
from dataworth.methods.stability import RankStability, rank_stability
from dataworth.study.steps import _progress, _save, study_utility

if TYPE_CHECKING:
    from dataworth.study.context import StudyContext

# The top and bottom of the ranking the stable run watches, and its stability level.
RANK_K = 10
RANK_LEVEL = 0.9
# Rows the report's interval figure shows at each end.
FIGURE_ROWS = 20


def stable_tmc_step(ctx: StudyContext) -> None:
    """Exact group values when affordable; TMC of the points until its ranks are stable."""
    u = study_utility(ctx)
    config = ctx.config
    summary: dict = {}
    by_group: ValuationResult | None = ctx.results.get("tmc_groups")
    groups = ctx.results.get("groups")
    budget = ctx.results.get("budget")
    if by_group is not None and groups is not None:
        # Within the time the budget can spare, at the cost of a cold fit of half the rows (a
        # coalition of groups holds half of them on average) when the cost study measured it.
        cost = ctx.results.get("cost")
        exact = exact_beside(
            u,
            by_group,
            groups=groups,
            seconds=EXACT_SECONDS if budget is None else min(EXACT_SECONDS, budget.spare()),
            seconds_each=None if cost is None else cost.seconds_per_fit(max(1, u.n_players // 2)),
        )
        if exact is not None:
            ctx.results["tmc_groups_exact"] = exact
            _save(ctx, exact, "shapley_groups_exact")
            _save(ctx, by_group, "shapley_groups")  # now with the exact values beside
            summary["groups"] = by_group.params["exact_distance"]
    points: ValuationResult | None = ctx.results.get("tmc")
    share, cap = float(config.stable_share), int(config.stable_permutations)
    figures = {}
    seconds = share * float(config.budget_seconds)
    if budget is not None:  # never at the expense of the methods the budget still owes time
        seconds = min(seconds, budget.spare())
    if points is not None and seconds > 0 and cap > points.params["permutations"]:
        # The same seed and tolerance: the stable run extends the 10 permutations (the store
        # journal resumes them), so the two rankings differ by the added permutations only.
        stable = tmc_shapley(
            u,
            tol=config.tmc_tol,
            seed=config.seed,
            until="ranks",
            rank_k=RANK_K,
            rank_level=RANK_LEVEL,
            time_budget=seconds,
            max_permutations=cap,
            progress=_progress(ctx, "TMC-Shapley until stable"),
        )
        ctx.results["tmc_stable"] = stable
        _save(ctx, stable, "shapley_points_stable")
        found = rank_stability(stable, k=RANK_K) if stable.samples is not None else None
        summary["points"] = stable_summary(points, stable, _loo_reference(ctx), found)
        ctx.results["tmc_stable_summary"] = summary["points"]
        if found is not None:
            ctx.write_csv("shapley_rank_stability.csv", found.to_frame(), index=False)
        figures["shapley_intervals"] = stable
    if summary:
        ctx.write_json("shapley_stability.json", summary)
    if figures:
        from dataworth.report.figures import save_figure
        from dataworth.report.interval_figures import interval_figure

        ctx.save_figures(
            lambda folder: {
                "shapley_intervals": save_figure(
                    interval_figure(figures["shapley_intervals"], points, rows=FIGURE_ROWS),
                    folder,
                    "shapley_intervals",
                )
            }
        )


def _loo_reference(ctx: StudyContext) -> ValuationResult | None:
    return ctx.results.get("loo_all", ctx.results.get("loo"))


def stable_summary(
    short: ValuationResult,
    stable: ValuationResult,
    loo: ValuationResult | None = None,
    found: RankStability | None = None,
) -> dict:
    """What the report says of the stable run: its stopping, its intervals, its agreements.

    Parameters
    ----------
    short : ValuationResult
        The fixed-count run (the course's 10 permutations).
    stable : ValuationResult
        The run continued until its ranks were stable.
    loo : ValuationResult, optional
        Exact LOO, to say how much of the low Shapley-LOO agreement is sampling noise.
    found : RankStability, optional
        The stable run's rank stability.
    """
    with_ci, zero = _zero_inside(stable)
    short_with_ci, short_zero = _zero_inside(short)
    out: dict = {
        "permutations": stable.params["permutations"],
        "short_permutations": short.params["permutations"],
        "stopped_by": stable.params["stopped_by"],
        "until": stable.params.get("until"),
        "ci_note": stable.ci_note,
        "with_ci": with_ci,
        "ci_contains_zero": zero,
        "short_ci_note": short.ci_note,
        "short_with_ci": short_with_ci,
        "short_ci_contains_zero": short_zero,
        # share just under k/n so the compared top and bottom hold exactly k players
        "short_vs_stable": compare_values(short, stable, share=(RANK_K - 0.5) / len(stable)),
    }
    if found is not None:
        out["stability"] = {
            "k": found.k,
            "verdict": found.verdict(),
            "top_distinct": int(found.top_distinct.sum()),
            "bottom_distinct": int(found.bottom_distinct.sum()),
            "top_overlap": found.top_overlap,
            "bottom_overlap": found.bottom_overlap,
        }
    if loo is not None:
        out["loo_vs_short"] = compare_values(short, loo)
        out["loo_vs_stable"] = compare_values(stable, loo)
    return out


def _zero_inside(result: ValuationResult) -> tuple[int, int]:
    """How many values have an interval, and how many of those intervals contain 0."""
    if result.ci_low is None:
        return 0, 0
    has = np.isfinite(result.ci_low) & np.isfinite(result.ci_high)
    inside = has & (result.ci_low <= 0) & (result.ci_high >= 0)
    return int(has.sum()), int(inside.sum())
