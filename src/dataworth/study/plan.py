"""The plan of a study: what each valuation method would cost on this task, against a budget.

The methods and the refits each needs come from the method registry
(:mod:`dataworth.methods.registry`); the seconds of a refit from the cost study
(:class:`~dataworth.study.cost_result.CostResult`). A method whose own path the cost study timed
(see :mod:`dataworth.study.cost_paths`) is estimated from that path instead of its refit count.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from dataworth.errors import DataworthError
from dataworth.methods.registry import REGISTRY, PlanRow
from dataworth.study.cost_result import MIN_ROWS_PER_CLASS, CostResult


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
    (found on all rows, see :func:`dataworth.study.cost_paths.time_paths`); else an upper
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
    return permutations * fitted * path["per_prefix"] * cost.scale(rows)


def estimate_data_oob(cost: CostResult, models: int, rows: int | None = None) -> float | None:
    """Seconds for Data-OOB with ``models`` bootstrap models (linear in models and in rows)."""
    path = cost.paths.get("data_oob")
    if path is None:
        return None
    rows = cost.n_train if rows is None else rows
    return models * path["per_model"] * rows / cost.n_train


def estimate_knn_shapley(cost: CostResult, rows: int | None = None) -> float | None:
    """Seconds for KNN-Shapley of the test metric (linear in the test rows and training rows)."""
    path = cost.paths.get("knn_shapley")
    if path is None:
        return None
    rows = cost.n_train if rows is None else rows
    return path["per_test_row"] * path["n_test"] * rows / cost.n_train


def estimate_ame(
    cost: CostResult, players: int | None = None, targets: int = 1, rows: int | None = None
) -> tuple[float, float]:
    """``(fixed, per_subset)`` seconds of AME: about ``fixed + per_subset * subsets`` in all.

    ``per_subset`` is one fit (subsets hold half the rows on average). ``fixed`` is its
    estimation, a cross-validated LASSO per target, at its smallest useful number of subsets
    (timed on a small subsample and scaled to the players, see
    :func:`dataworth.study.cost_paths.ame_estimation_seconds`): at many players it costs far more
    than the fits. Zero when it was not timed.
    """
    from dataworth.methods.ame_plan import FLAT_COLUMN_LIMIT, hierarchy_size
    from dataworth.study.cost_paths import ame_estimation_seconds

    n = cost.n_train if rows is None else rows
    players = n if players is None else players
    per_fit = cost.seconds_per_fit(max(1, n // 2))
    # Above the flat regression's column limit the study runs the hierarchy: its subsets are
    # fitted twice (groups, then points) and its two regressions have the groups' and at most
    # the limit's columns.
    hierarchical = players > FLAT_COLUMN_LIMIT
    if hierarchical:
        per_fit *= 2
    timing = cost.paths.get("ame_estimation")
    if not timing:
        return 0.0, per_fit
    if hierarchical:
        estimation = ame_estimation_seconds(timing, hierarchy_size(players))
        estimation += ame_estimation_seconds(timing, FLAT_COLUMN_LIMIT)
    else:
        estimation = ame_estimation_seconds(timing, players)
    return targets * estimation, per_fit


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
        return note + "; with its LASSO, timed on 100 players and scaled to all of them"
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
    :mod:`dataworth.study.cost_paths`), else its number of refits times the seconds of one refit.

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
