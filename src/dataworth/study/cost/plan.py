"""The plan of a study: what each valuation method would cost on this task, against a budget.

The methods and the refits each needs come from the method registry
(:mod:`dataworth.methods.registry`); the seconds of a refit from the cost study
(:class:`~dataworth.study.cost.result.CostResult`). A method whose own path the cost study timed
(see :mod:`dataworth.study.cost.paths`) is estimated from that path instead of its refit count.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from dataworth.errors import DataworthError
from dataworth.methods.registry import REGISTRY, PlanRow
from dataworth.study.cost.result import MIN_ROWS_PER_CLASS, CostResult


def default_ame_subsets(n: int, k: int = 10, c: int = 8) -> int:
    """AME sizing ``c * k * log2(n)`` (Lin et al. 2022), at least 2000 as the authors used."""
    return max(2000, math.ceil(c * k * math.log2(max(n, 2))))


def estimate_loo(cost: CostResult, points: int, rows: int | None = None) -> float:
    """Seconds for exact LOO of ``points`` points (plus the full fit) on ``rows`` rows.

    From the timed batch of one-out subsets when there is one (the batched logistic
    regression's one-out path, which starts from the full-data solution), else ``points + 1``
    generic refits.
    """
    path = cost.paths.get("loo_one_out")
    if path is None:
        return (points + 1) * cost.seconds_per_fit(rows)
    return (path["full_fit_seconds"] + points * path["per_subset"]) * cost.scale(rows)


def estimate_tmc(cost: CostResult, permutations: int, rows: int | None = None) -> float:
    """Seconds for TMC-Shapley on points.

    From the timed chain of nested prefixes when the learner has chains (each prefix is
    warm-started from the one before) times the prefixes a permutation fits before truncation
    (found on all rows, see :func:`dataworth.study.cost.paths.time_paths`); else an upper
    bound, one generic refit per prefix of every permutation.
    """
    rows = cost.n_train if rows is None else rows
    path = cost.paths.get("tmc_chain")
    if path is None:
        return permutations * rows * cost.seconds_per_fit(rows)
    # The prefixes a permutation fits before truncation, found on all rows (the learning curve
    # levels off after about ``fitted_rows`` rows, a number that barely grows with the table, so
    # a smaller table fits at most as many), each at the chain's cost per prefix timed around
    # half of them.
    fitted = min(rows, path.get("fitted_rows", rows * path.get("fitted_share", 1.0)))
    per_permutation = fitted * path["per_prefix"] * cost.scale(rows)
    # The first permutation runs alone (it measures the clock's pace); the others' chains run
    # side by side, one per core (the chain was timed on one).
    side_by_side = max(1, min(path.get("threads", 1), permutations - 1))
    return per_permutation * (min(permutations, 1) + max(permutations - 1, 0) / side_by_side)


def estimate_data_oob(cost: CostResult, models: int, rows: int | None = None) -> float | None:
    """Seconds for Data-OOB with ``models`` bootstrap models (linear in models and in rows)."""
    path = cost.paths.get("data_oob")
    if path is None:
        return None
    rows = cost.n_train if rows is None else rows
    return (path.get("fixed", 0.0) + models * path["per_model"]) * rows / cost.n_train


def estimate_knn_shapley(cost: CostResult, rows: int | None = None) -> float | None:
    """Seconds for KNN-Shapley of the test metric (linear in the test rows and training rows)."""
    path = cost.paths.get("knn_shapley")
    if path is None:
        return None
    rows = cost.n_train if rows is None else rows
    return path["per_test_row"] * path["n_test"] * rows / cost.n_train


LEVEL2_SHARE = 1.0
"""Share of its point budget the hierarchy's second level is modelled to hold (the points of the
groups selected at the first level, at most the flat width, see
:func:`dataworth.methods.ame.scale.hierarchical_metric`). With Knockoffs at 0.1 and 4,000
subsets, level 1 selected half the groups or more on the benchmark tables (44 and 68 of 84 at
7,000 rows, 91 of 187 at 35,000): level 2 was at its budget. With fewer subsets or a flat
learning curve fewer groups are selected, and an empty level 2 does not run at all; the estimate
is then on the long side, by at most the second level's share (about 2 to 3 times the first
level alone)."""
LEVEL2_FIT_FACTOR = 1.0
"""Seconds of a level-2 fit against a level-1 fit (both about half the rows): 0.95 at 7,000 rows
of the mixed 5-class table. (It was 1.8 to 2.0 while the group game formed each subset's point
mask by a product with its incidence matrix, some 3,000 players by all the rows at level 2.)"""


AME_TARGET_SHARE = 2 / 3
"""Share of one target's estimation that each further target adds. The study explains its test
rows in one call, which shares the design and its Gram matrices among them, and the metric in a
second: on a 1,400-row table three test rows took 1.9 times the metric's estimation, so the
metric and three rows took 3 times, ``1 + 3 * 2/3``."""


def ame_level_sizes(players: int, knockoffs: bool = True) -> tuple[int, int] | None:
    """Players of the hierarchy's two regressions as modelled, or None when AME runs flat.

    The path is the memory plan's column rule (:func:`dataworth.methods.ame.plan.plan_ame`):
    hierarchical above :data:`~dataworth.methods.ame.plan.FLAT_COLUMN_LIMIT` columns (twice the
    players with Knockoffs, as the study runs it). Level 1 has
    :func:`~dataworth.methods.ame.plan.hierarchy_size` groups; level 2 :data:`LEVEL2_SHARE` of
    its point budget and one column per other group.
    """
    from dataworth.methods.ame import plan as ame_plan

    width = 2 if knockoffs else 1
    if players * width <= ame_plan.FLAT_COLUMN_LIMIT:
        return None
    groups = ame_plan.hierarchy_size(players)
    budget = max(1, ame_plan.FLAT_COLUMN_LIMIT // width - groups)
    return groups, math.ceil(LEVEL2_SHARE * budget) + groups


def estimate_ame(
    cost: CostResult, players: int | None = None, targets: int = 1, rows: int | None = None
) -> tuple[float, float]:
    """``(fixed, per_subset)`` seconds of AME: about ``fixed + per_subset * subsets`` in all.

    Modelled on the path the plan will choose (:func:`ame_level_sizes`).

    * Flat: ``per_subset`` is one fit (subsets hold half the rows on average; timed on a batch
      of AME's own subsets when the cost study did, see
      :func:`dataworth.study.cost.paths._time_ame_fits`) plus the estimation's growth with the
      subsets; ``fixed`` is the estimation, a cross-validated LASSO per target, at its smallest
      useful number of subsets. Both come from the cost study's timings at two small sizes and
      the exponent measured between them
      (:func:`dataworth.study.cost.paths.ame_estimation_model`); each target after the first
      adds :data:`AME_TARGET_SHARE` of one.
    * Hierarchical: each level fits its own subsets (level 2's also hold about half the rows,
      and cost :data:`LEVEL2_FIT_FACTOR` times as much, as dear) and has its own regression, on the
      groups and on the modelled level-2 players; one target (the study's hierarchy explains
      the metric only).

    ``fixed`` is zero when the estimation was not timed.
    """
    from dataworth.study.cost.paths import ame_estimation_model

    n = cost.n_train if rows is None else rows
    players = n if players is None else players
    timing = cost.paths.get("ame_estimation")
    per_fit = cost.seconds_per_fit(max(1, n // 2))
    if timing and "fit_seconds" in timing:
        # AME's own fits, timed on all rows; other sizes follow the fits' growth with the rows.
        timed_rows = max(1, int(timing["fit_rows"]) // 2)
        per_fit = timing["fit_seconds"] * per_fit / cost.seconds_per_fit(timed_rows)
    levels = ame_level_sizes(players, knockoffs=(timing or {}).get("knockoffs", True))
    if not timing:
        return 0.0, per_fit * (1 if levels is None else 2)
    model = ame_estimation_model(timing)
    if levels is None:
        share = 1 + AME_TARGET_SHARE * (max(int(targets), 1) - 1)
        return share * model.seconds(players), per_fit + share * model.per_subset(players)
    fixed = sum(model.seconds(size) for size in levels)
    per_subset = per_fit * (1 + LEVEL2_FIT_FACTOR) + sum(model.per_subset(s) for s in levels)
    return fixed, per_subset


def estimate_influence(cost: CostResult) -> float | None:
    """Seconds for influence functions (one fit and one solve), as timed on all rows."""
    path = cost.paths.get("influence")
    return None if path is None else path["seconds"]


def _settings(cost: CostResult, ame_subsets: int, sized_by_rule: bool, oob_estimators: int):
    return {
        "n": cost.n_train,
        "ame_subsets": ame_subsets,
        "ame_sized_by_rule": sized_by_rule,
        "oob_estimators": oob_estimators,
    }


def method_fits(
    n: int, ame_subsets: int, sized_by_rule: bool = True
) -> list[tuple[str, Callable[[int], int], str]]:
    """(method, fits as a function of the training rows, note) of each method the plan always
    lists (those that fit models), from the method registry."""
    settings = {"n": n, "ame_subsets": ame_subsets, "ame_sized_by_rule": sized_by_rule}
    settings["oob_estimators"] = 0
    return [
        (
            row.label.format(**settings),
            lambda r, row=row: row.fits(r, settings),
            row.describe(settings),
        )
        for spec in REGISTRY
        for row in spec.plan
        if not row.needs_path
    ]


def _path_seconds(cost: CostResult, row: PlanRow, settings: dict) -> Callable[[int], float]:
    """``seconds(rows)`` of a plan row from the timed path it names (which was timed)."""
    path = row.path
    units = row.units or (lambda r: r)
    if path == "loo_one_out":
        return lambda r: estimate_loo(cost, units(r), r)
    if path == "tmc_chain":
        return lambda r: estimate_tmc(cost, units(r), r)
    if path == "ame_estimation":
        subsets = row.fits(cost.n_train, settings)

        def ame_seconds(r: int) -> float:
            fixed, per_subset = estimate_ame(cost, players=r, rows=r)
            return fixed + subsets * per_subset

        return ame_seconds
    if path == "knn_shapley":
        return lambda r: estimate_knn_shapley(cost, r)
    if path == "data_oob":
        return lambda r: estimate_data_oob(cost, settings["oob_estimators"], r)
    if path == "influence":
        seconds = estimate_influence(cost)
        return lambda r: seconds * r / cost.n_train
    raise DataworthError(f"No estimate for the timed path {path!r}; add one to the plan.")


def _path_note(cost: CostResult, row: PlanRow, note: str) -> str:
    """The note of a row estimated from its timed path: what was timed."""
    if row.path == "loo_one_out":
        return note + "; timed on a batch of one-out subsets (the learner's one-out path)"
    if row.path == "ame_estimation":
        from dataworth.study.cost.paths import ame_estimation_model

        model = ame_estimation_model(cost.paths["ame_estimation"])
        levels = ame_level_sizes(cost.n_train, cost.paths["ame_estimation"].get("knockoffs", True))
        path = (
            "flat"
            if levels is None
            else f"hierarchical: {levels[0]} groups, then about {levels[1]} players"
        )
        return note + f"; {path}, with {model.describe()}"
    if row.path == "tmc_chain":
        share = cost.paths["tmc_chain"].get("fitted_share", 1.0)
        return (
            "timed on a chain of nested prefixes, each warm-started from the last, for the "
            f"{share:.0%} of prefixes a permutation fits before truncation"
        )
    if row.path == "data_oob":
        return note + f"; timed on {cost.paths['data_oob']['models']}"
    return note


def _plan_rows(
    cost: CostResult, ame_subsets: int, sized_by_rule: bool, oob_estimators: int
) -> list[tuple[str, Callable[[int], int], Callable[[int], float], str]]:
    """(method, fits of rows, seconds of rows, note) of each planned method.

    Every method of the registry brings its plan rows; a row is estimated from the path it
    names when the cost study timed that path, else as its fits times the seconds of one refit.
    """
    settings = _settings(cost, ame_subsets, sized_by_rule, oob_estimators)
    rows_out = []
    for spec in REGISTRY:
        for row in spec.plan:
            timed = row.path is not None and row.path in cost.paths
            if row.needs_path and not timed:
                continue

            def fits_of(r: int, row=row) -> int:
                return row.fits(r, settings)

            def generic(r: int, fits_of=fits_of) -> float:
                return fits_of(r) * cost.seconds_per_fit(r)

            note = row.describe(settings)
            seconds_of = _path_seconds(cost, row, settings) if timed else generic
            if timed:
                note = _path_note(cost, row, note)
            rows_out.append((row.label.format(**settings), fits_of, seconds_of, note))
    return rows_out


def plan_table(
    cost: CostResult,
    *,
    budget_seconds: float = 600.0,
    ame_subsets: int | None = None,
    oob_estimators: int = 200,
) -> pd.DataFrame:
    """Refits and estimated time of each valuation method, against a budget.

    Each estimate follows the path the method takes where that path was timed (see
    :mod:`dataworth.study.cost.paths`), else its number of refits times the seconds of one refit.

    Parameters
    ----------
    cost : CostResult
        From :func:`run_cost_study`.
    budget_seconds : float, default=600
        Time one method may take.
    ame_subsets : int, optional
        Submodels for AME; default :func:`default_ame_subsets` of the training size.
    oob_estimators : int, default=200
        Data-OOB's bootstrap models.

    Returns
    -------
    DataFrame
        Columns ``method, fits, seconds_per_fit, estimated_seconds, feasible, suggested_rows,
        note``. ``seconds_per_fit`` is the estimate divided by the fits (empty for a method that
        fits nothing). ``suggested_rows`` is the largest training subsample (stratified) that
        fits the budget when the full set does not, and empty when it does.
    """
    n = cost.n_train
    m = default_ame_subsets(n) if ame_subsets is None else int(ame_subsets)
    rows_out = []
    for method, fits_of, seconds_of, note in _plan_rows(
        cost, m, ame_subsets is None, oob_estimators
    ):
        fits = fits_of(n)
        estimate = float(seconds_of(n))
        feasible = estimate <= budget_seconds
        suggested: int | None = None
        if not feasible:
            suggested = _largest_rows(cost, seconds_of, budget_seconds)
            if suggested is None:
                note += "; not feasible within the budget even on a small subsample"
        rows_out.append(
            {
                "method": method,
                "fits": fits,
                "seconds_per_fit": estimate / fits if fits else math.nan,
                "estimated_seconds": estimate,
                "feasible": feasible,
                "suggested_rows": suggested,
                "note": note,
            }
        )
    table = pd.DataFrame.from_records(rows_out)
    table["suggested_rows"] = table["suggested_rows"].astype("Int64")
    return table


def largest_feasible_rows(
    cost: CostResult, fits_of: Callable[[int], int], budget: float
) -> int | None:
    """Largest training size (down to a few rows per class) whose estimate fits the budget."""
    return _largest_rows(cost, lambda r: fits_of(r) * cost.seconds_per_fit(r), budget)


def _largest_rows(
    cost: CostResult, seconds_of: Callable[[int], float], budget: float
) -> int | None:
    floor = MIN_ROWS_PER_CLASS * cost.n_classes * 2
    low, high = floor, cost.n_train
    if seconds_of(low) > budget:
        return None
    # The estimate grows with the rows, so bisection finds the largest feasible size.
    while high - low > 1:
        mid = (low + high) // 2
        if seconds_of(mid) <= budget:
            low = mid
        else:
            high = mid
    return low
