"""AME at scale: the flat estimator when its regression fits, else the hierarchy.

One function decides the path, :func:`choose_ame_path`, for :func:`~dataworth.methods.ame.ame`
(``mode="auto"``), the study and the CLI: the memory plan (:func:`study_ame_plan`, which is
:func:`~dataworth.methods.ame.plan.plan_ame` with AME's sizing) where the hierarchy applies,
else the flat estimator with the reason. The study says the plan's reason in the terminal and
the report and runs :func:`hierarchical_metric` when the plan says so; ``ame`` runs the same
function and spreads its two levels over every point (:func:`spread_levels`), so its result
keeps the flat estimator's shape.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

import dataworth.methods.ame.plan as ame_plan
from dataworth.errors import DataworthError
from dataworth.methods._common import point_ids
from dataworth.methods.ame.estimate import _single
from dataworth.methods.ame.hierarchy import ame_hierarchical
from dataworth.methods.ame.plan import AmePlan, hierarchy_size, plan_ame, random_partition
from dataworth.methods.result import ValuationResult
from dataworth.methods.sampler import subsets_for

MODES = ("auto", "flat", "hierarchical")


def study_ame_plan(
    n_players: int,
    *,
    n_subsets: int | None,
    k: int | None,
    fdr: float | None,
    n_targets: int,
    memory_limit: int | None = None,
    size_factor: float = 8.0,
) -> AmePlan:
    """The plan for AME on ``n_players`` points with the study's sizing (subsets or ``k``)."""
    m = (
        int(n_subsets)
        if n_subsets is not None
        else subsets_for(int(k or 1), n_players, size_factor)
    )
    return plan_ame(
        n_players, m, knockoffs=fdr is not None, n_targets=n_targets, memory_limit=memory_limit
    )


def _why_flat(target, estimator: str, groups, intervals: bool) -> str | None:
    """Why the hierarchy does not apply to this call (None when it does)."""
    if groups is not None:
        return "groups= given: the players are those groups (the hierarchy values points)"
    if not _single(target):
        return "the hierarchy explains one target (the metric or one test row), not a list"
    if estimator != "lasso":
        return f"the hierarchy selects groups with the LASSO; estimator={estimator!r} is flat"
    if intervals:
        return (
            "intervals=True: the bootstrap needs one regression over every point (the "
            "hierarchy's second level sees only the selected groups' points)"
        )
    return None


def choose_ame_path(
    n_players: int,
    *,
    mode: str = "auto",
    n_subsets: int | None,
    k: int | None,
    size_factor: float = 8.0,
    fdr: float | None = None,
    target="metric",
    estimator: str = "lasso",
    groups=None,
    intervals: bool = False,
    memory_limit: int | None = None,
) -> tuple[str, AmePlan | None, str]:
    """The path AME takes, ``"flat"`` or ``"hierarchical"``, decided before any fit.

    ``mode="auto"`` follows :func:`study_ame_plan` (flat while the regression fits in memory
    and has at most :data:`~dataworth.methods.ame.plan.FLAT_COLUMN_LIMIT` columns) when the
    hierarchy applies: points (no ``groups=``), one target, the LASSO, no intervals. Otherwise
    the path is flat. ``"flat"`` and ``"hierarchical"`` force one; forcing the hierarchy where it
    does not apply raises a :class:`~dataworth.errors.DataworthError`.

    Parameters
    ----------
    n_players : int
        Training points.
    mode : {"auto", "flat", "hierarchical"}, default="auto"
    n_subsets, k, size_factor, fdr, target, estimator, groups, intervals : see
        :func:`~dataworth.methods.ame.explain.ame`
    memory_limit : int, optional
        Bytes the regression may take (default: half the memory available now).

    Returns
    -------
    path : {"flat", "hierarchical"}
    plan : AmePlan or None
        The memory plan (None when the hierarchy does not apply); for a forced hierarchy, one
        with :func:`~dataworth.methods.ame.plan.hierarchy_size` groups.
    reason : str
        One sentence: the plan's reason, or why the path is flat.
    """
    if mode not in MODES:
        raise DataworthError(f"Unknown AME mode {mode!r}; use one of {MODES}.")
    why_flat = _why_flat(target, estimator, groups, intervals)
    if why_flat is not None:
        if mode == "hierarchical":
            raise DataworthError(f"mode='hierarchical' does not apply: {why_flat}.")
        return "flat", None, f"flat AME: {why_flat}"
    plan = study_ame_plan(
        n_players,
        n_subsets=n_subsets,
        k=k,
        fdr=fdr,
        n_targets=1,
        memory_limit=memory_limit,
        size_factor=size_factor,
    )
    if mode == "auto" or mode == plan.mode:
        return plan.mode, plan, plan.reason
    if mode == "flat":
        return "flat", plan, f"flat AME: asked for (mode='flat'); the plan said: {plan.reason}"
    groups_n = hierarchy_size(n_players)
    reason = (
        f"hierarchical AME: asked for (mode='hierarchical'); {groups_n} groups of about "
        f"{n_players // groups_n} points first, then the points of the selected groups"
    )
    return (
        "hierarchical",
        replace(plan, mode="hierarchical", n_groups=groups_n, reason=reason),
        reason,
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
    target="metric",
    **options,
) -> dict[str, ValuationResult]:
    """Hierarchical AME of one target: random groups of the plan's number, then their points.

    ``options`` (``size_factor``, ``law``, ``eps``, ``knockoff_plus``, ``side``, ``cv``,
    ``n_alphas``, ``n_jobs``) go to :func:`~dataworth.methods.ame.hierarchy.ame_hierarchical`.
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
        utility,
        groups,
        fdr=fdr,
        seed=seed,
        progress=progress,
        max_points=budget,
        target=target,
        **sizing,
        **options,
    )
    results = {"ame_groups": out.groups}
    if out.points is not None:
        results["ame_metric"] = out.points
    for result in results.values():
        result.params["ame_plan"] = plan.describe()
    return results


def spread_levels(utility, levels: dict[str, ValuationResult], groups: dict) -> ValuationResult:
    """One result over every training point from the hierarchy's two levels.

    A point of a group valued at level 2 gets its level-2 value, selection, one-standard-error
    value and Knockoff statistic; every other point gets 0 and is not selected, as a LASSO
    gives a point whose effect it does not tell from 0: its group was not selected at level 1
    (or was dropped to keep level 2 within the flat width, named in
    ``params["groups_dropped_for_size"]``). ``extra`` adds ``valued`` (level 2 valued the
    point), ``group`` (its random group) and ``group_value`` (that group's level-1 value).
    """
    n = utility.n_players
    level1 = levels["ame_groups"]
    level2 = levels.get("ame_metric")
    group_of = np.empty(n, dtype=object)
    group_value = np.zeros(n)
    for name, value in zip(level1.player_ids, level1.values, strict=True):
        group_of[groups[name]] = name
        group_value[groups[name]] = value
    values, value_1se = np.zeros(n), np.zeros(n)
    selected, valued = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    counts = np.full(n, level1.params["n_subsets"])
    w = np.zeros(n) if "w" in level1.extra else None
    source = level1 if level2 is None else level2
    if level2 is not None:
        at = level2.extra["position"]
        values[at], value_1se[at] = level2.values, level2.extra["value_1se"]
        selected[at], valued[at] = level2.extra["selected"], True
        counts[at] = level2.params["n_subsets"]
        if w is not None:
            w[at] = level2.extra["w"]
    extra = {
        "position": np.arange(n),
        "value_1se": value_1se,
        "selected": selected,
        "valued": valued,
        "group": group_of,
        "group_value": group_value,
    }
    if w is not None:
        extra["w"] = w
    params = dict(source.params)
    params |= {
        "n_subsets": source.params["n_subsets"],
        "n_subsets_groups": level1.params["n_subsets"],
        "n_groups": len(level1.values),
        "n_selected_groups": int(level1.extra["selected"].sum()),
        "n_valued_points": int(valued.sum()),
        "n_selected": int(selected.sum()),
        "selected_groups": list(source.params.get("selected_groups", [])),
        "groups_dropped_for_size": list(source.params.get("groups_dropped_for_size", [])),
    }
    levels_run = [level1] if level2 is None else [level1, level2]
    timings: dict[str, float] = {}
    for level in levels_run:
        for phase, seconds in level.timings.items():
            timings[phase] = timings.get(phase, 0.0) + seconds
    return ValuationResult(
        method="ame",
        values=values,
        player_ids=point_ids(utility, np.arange(n)),
        stderr=None,
        counts=counts,
        params=params,
        seed=level1.seed,
        n_evaluations=sum(level.n_evaluations for level in levels_run),
        n_fitted=sum(level.n_fitted for level in levels_run),
        n_fallback=sum(level.n_fallback for level in levels_run),
        timings=timings,
        manifest=level1.manifest,
        extra=extra,
        ci_low=None,
        ci_high=None,
        ci_note=level1.ci_note,
    )


def ame_plan_lines(result: ValuationResult) -> list[str]:
    """The report's sentence on which AME estimator ran and why (empty when none recorded)."""
    plan = result.params.get("ame_plan")
    if not plan:
        return []
    return [f"Estimator: {plan['reason']}.", ""]
