"""AME at the study's scale: the flat estimator when its regression fits, else the hierarchy.

The study calls :func:`study_ame_plan` before any subset is fitted, says the plan's reason in
the terminal and the report, and runs :func:`hierarchical_metric` when the plan says so.
"""

from __future__ import annotations

from dataworth.methods import ame_plan
from dataworth.methods.ame import ame_hierarchical
from dataworth.methods.ame_plan import AmePlan, plan_ame, random_partition
from dataworth.methods.result import ValuationResult
from dataworth.methods.sampler import subsets_for


def study_ame_plan(
    n_players: int,
    *,
    n_subsets: int | None,
    k: int | None,
    fdr: float | None,
    n_targets: int,
    memory_limit: int | None = None,
) -> AmePlan:
    """The plan for AME on ``n_players`` points with the study's sizing (subsets or ``k``)."""
    m = int(n_subsets) if n_subsets is not None else subsets_for(int(k or 1), n_players, 8.0)
    return plan_ame(
        n_players, m, knockoffs=fdr is not None, n_targets=n_targets, memory_limit=memory_limit
    )


def hierarchical_metric(
    utility,
    plan: AmePlan,
    *,
    n_subsets: int | None,
    k: int | None,
    fdr: float | None,
    seed: int,
    progress=None,
) -> dict[str, ValuationResult]:
    """Hierarchical AME of the metric: random groups of the plan's number, then their points.

    Returns ``{"ame_groups": level 1, "ame_metric": level 2}`` (no level 2 when no group was
    selected); both carry the plan in ``params["ame_plan"]``.
    """
    groups = random_partition(utility.n_players, int(plan.n_groups), seed)
    sizing = (
        {"n_subsets_groups": n_subsets, "n_subsets_points": n_subsets}
        if n_subsets is not None
        else {"k_groups": min(int(k), len(groups)), "k_points": int(k)}
    )
    # Level 2 holds the selected groups' points plus one column per other group; keep it
    # within the flat estimator's width.
    budget = max(1, ame_plan.FLAT_COLUMN_LIMIT // (2 if fdr is not None else 1) - len(groups))
    out = ame_hierarchical(
        utility, groups, fdr=fdr, seed=seed, progress=progress, max_points=budget, **sizing
    )
    results = {"ame_groups": out.groups}
    if out.points is not None:
        results["ame_metric"] = out.points
    for result in results.values():
        result.params["ame_plan"] = plan.describe()
    return results


def ame_plan_lines(result: ValuationResult) -> list[str]:
    """The report's sentence on which AME estimator ran and why (empty when none recorded)."""
    plan = result.params.get("ame_plan")
    if not plan:
        return []
    return [f"Estimator: {plan['reason']}.", ""]
