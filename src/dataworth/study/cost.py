"""The cost study: how long one fit takes, and what each valuation method would therefore cost.

Refitting is the whole cost of refit-based valuation, so before valuing anything we time each
model on the full training set and on stratified 10% and 1% subsamples, time the valuation
learner through the engine (:class:`~dataworth.engine.utility.Utility`, which may batch fits),
and turn the number of refits each method needs into an estimate of its running time.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, clone
from threadpoolctl import threadpool_limits

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.learners.registry import available_models, make_estimator
from dataworth.metrics import get_metric

ProgressFn = Callable[[str, int, int], None]
"""``progress(description, done, total)``: called as work advances (the CLI draws a bar)."""

DEFAULT_FRACTIONS = (1.0, 0.1, 0.01)
MIN_ROWS_PER_CLASS = 3
"""A subsample needs a few rows of every class for a fit (and its timing) to mean anything."""


def time_fit(
    estimator: ClassifierMixin,
    X: np.ndarray,
    y: np.ndarray,
    *,
    repeats: int = 3,
    slow_seconds: float = 1.0,
    threads: int | None = 1,
) -> tuple[ClassifierMixin, float, int]:
    """Fit a fresh clone of ``estimator`` a few times and return the last fit and the median time.

    Parameters
    ----------
    estimator : scikit-learn classifier
    X, y : ndarray
        Training rows and labels.
    repeats : int, default=3
        Fits to time; the median resists one slow outlier (a cold cache, a busy machine).
    slow_seconds : float, default=1.0
        A model whose first fit takes longer is timed once: repeats add little there.
    threads : int or None, default=1
        BLAS/OpenMP threads during the fits (``None``: the library defaults). Valuation runs many
        fits side by side, one per worker, so the single-thread time is the cost that matters;
        it is also stable on a busy machine, where OpenMP models (histogram gradient boosting)
        can slow down many times over when their threads compete for cores.

    Returns
    -------
    fitted : classifier
    seconds : float
        Median wall-clock seconds per fit.
    n_timed : int
        How many fits the median is over.
    """
    times: list[float] = []
    fitted = estimator
    with threadpool_limits(limits=threads):
        for _ in range(max(1, repeats)):
            fitted = clone(estimator)
            start = perf_counter()
            fitted.fit(X, y)
            times.append(perf_counter() - start)
            if times[0] > slow_seconds:
                break
    return fitted, statistics.median(times), len(times)


def stratified_subsample(
    y: np.ndarray, size: int, rng: np.random.Generator, min_per_class: int = MIN_ROWS_PER_CLASS
) -> np.ndarray:
    """Positions of a stratified sample of ``size`` rows with at least ``min_per_class`` per class.

    Each class gets its share of ``size`` (rounded), raised to ``min_per_class`` (or all its rows
    when it has fewer), so rare classes are never dropped from a small subsample.
    """
    classes, counts = np.unique(y, return_counts=True)
    quota = np.maximum(np.round(counts / counts.sum() * size).astype(int), min_per_class)
    quota = np.minimum(quota, counts)
    picks = [
        rng.choice(np.flatnonzero(y == c), size=q, replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(picks))


@dataclass
class CostResult:
    """Measured fit times and what they imply for each valuation method.

    Attributes
    ----------
    fit_times : DataFrame
        One row per model and training size: ``model, fraction, rows, seconds, n_timed, note``
        (``seconds`` is NaN and ``note`` says why when a size was skipped).
    n_train : int
        Training rows of the task.
    valuation_model : str
        The learner valuation methods will refit.
    utility : dict or None
        Timing of subset evaluations through the engine (``seconds_per_subset`` and more), or
        ``None`` when the engine is not available (``utility_note`` says why).
    utility_note : str
    notes : list of str
        Sizes skipped and other remarks, as sentences.
    """

    fit_times: pd.DataFrame
    n_train: int
    n_classes: int
    valuation_model: str
    utility: dict[str, Any] | None = None
    utility_note: str = ""
    notes: list[str] = field(default_factory=list)
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Seconds of each method's own path (see :func:`dataworth.study.cost_paths.time_paths`)."""

    def seconds_per_fit(self, rows: int | None = None) -> float:
        """Estimated seconds per valuation refit on ``rows`` training rows (default: all).

        Uses the engine's measured time per subset when there is one (that is what methods pay),
        otherwise the median scikit-learn fit time; other sizes follow a power law through the
        measured sizes (a straight line in log-log).
        """
        rows = self.n_train if rows is None else rows
        own = self.fit_times[
            (self.fit_times["model"] == self.valuation_model) & self.fit_times["seconds"].notna()
        ]
        if own.empty and self.utility is None:
            raise DataworthError(
                f"No fit time was measured for {self.valuation_model!r}; rerun the cost study."
            )
        scale = _power_law(own["rows"].to_numpy(float), own["seconds"].to_numpy(float))
        if self.utility is not None:
            measured_rows = self.utility["rows"]
            return self.utility["seconds_per_subset"] * scale(rows) / scale(measured_rows)
        return float(scale(rows))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "n_train": self.n_train,
            "valuation_model": self.valuation_model,
            "fit_times": self.fit_times.to_dict(orient="records"),
            "utility": self.utility,
            "utility_note": self.utility_note,
            "notes": list(self.notes),
            "paths": self.paths,
        }

    def scale(self, rows: int | None) -> float:
        """How much longer a fit on ``rows`` rows takes than one on all training rows."""
        if rows is None or rows == self.n_train:
            return 1.0
        return self.seconds_per_fit(rows) / self.seconds_per_fit(self.n_train)


def _power_law(rows: np.ndarray, seconds: np.ndarray) -> Callable[[float], float]:
    """``seconds(rows)`` through the measured points; flat when only one size was measured."""
    if len(rows) == 0:
        return lambda r: 1.0
    if len(np.unique(rows)) < 2:
        value = float(np.median(seconds))
        return lambda r: value
    slope, intercept = np.polyfit(np.log(rows), np.log(np.maximum(seconds, 1e-9)), 1)
    # Fit times never shrink as data grows; a negative slope is timing noise on tiny sizes.
    slope = max(slope, 0.0)
    return lambda r: float(np.exp(intercept + slope * np.log(max(r, 1.0))))


def run_cost_study(
    task: Task,
    models: Sequence[str] | None = None,
    *,
    valuation_model: str = "logreg",
    metric: str = "neg_log_loss",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    repeats: int = 3,
    utility_subsets: int = 20,
    seed: int = 0,
    knn_k: int = 10,
    full_fit_seconds: dict[str, tuple[float, int]] | None = None,
    tmc_tol: float = 0.01,
    progress: ProgressFn | None = None,
) -> CostResult:
    """Time every model at several training sizes and the engine on a batch of subsets.

    Parameters
    ----------
    task : Task
    models : sequence of str, optional
        Models to time; default every available model. The valuation model is always included.
    valuation_model : str, default="logreg"
        The learner valuation methods refit.
    metric : str, default="neg_log_loss"
        The metric of the utility timed through the engine.
    fractions : sequence of float, default=(1.0, 0.1, 0.01)
        Training sizes as shares of the training rows (stratified subsamples).
    repeats : int, default=3
        Fits per timing (median), fewer for slow models.
    utility_subsets : int, default=20
        Random 90% subsets evaluated through :class:`~dataworth.engine.utility.Utility`.
        ``0`` skips the engine and estimates from scikit-learn fit times; it also skips
        timing each method's own path (:func:`dataworth.study.cost_paths.time_paths`).
    seed : int, default=0
    knn_k : int, default=10
        KNN-Shapley's number of neighbours, for timing its path.
    full_fit_seconds : dict, optional
        ``model -> (seconds, n_timed)`` already measured on the whole training set the same way
        (the baseline times each model with :func:`time_fit`); those models are not fitted on
        the whole set again, which at many rows saves as long as the baseline took.
    tmc_tol : float, default=0.01
        TMC's truncation tolerance, for estimating the prefixes it fits.
    progress : callable, optional
        ``progress(description, done, total)``.

    Returns
    -------
    CostResult
    """
    models = list(available_models() if models is None else models)
    if valuation_model not in models:
        models.append(valuation_model)
    get_metric(metric)  # fail on a misspelled name before timing anything
    estimators = {name: make_estimator(name, seed) for name in models}
    rng = np.random.default_rng(seed)
    n, n_classes = task.n_train, task.n_classes
    sizes: list[tuple[float, int, np.ndarray | None, str]] = []
    notes: list[str] = []
    for fraction in fractions:
        rows = round(fraction * n)
        floor = MIN_ROWS_PER_CLASS * n_classes
        if fraction >= 1.0:
            sizes.append((fraction, n, None, ""))
        elif rows < floor:
            note = (
                f"{fraction:.0%} of {n} rows is {rows} rows, fewer than {MIN_ROWS_PER_CLASS} "
                f"per class for {n_classes} classes; that size was skipped."
            )
            notes.append(note)
            sizes.append((fraction, rows, None, note))
        else:
            picks = stratified_subsample(task.y_train, rows, rng)
            sizes.append((fraction, len(picks), picks, ""))

    total = len(models) * len(sizes) + 1
    done = 0
    records = []
    for name in models:
        for fraction, rows, picks, note in sizes:
            if progress:
                progress(f"timing {name} on {rows} rows", done, total)
            seconds, n_timed = math.nan, 0
            known = (full_fit_seconds or {}).get(name) if picks is None and not note else None
            if known is not None:
                seconds, n_timed = float(known[0]), int(known[1])
            elif not note:
                X = task.X_train if picks is None else task.X_train[picks]
                y = task.y_train if picks is None else task.y_train[picks]
                try:
                    _, seconds, n_timed = time_fit(estimators[name], X, y, repeats=repeats)
                except ValueError as error:
                    # e.g. k-NN with k larger than the subsample: the size makes no sense there.
                    note = f"{name} cannot be fitted on {rows} rows ({error}); skipped."
                    notes.append(note)
            records.append(
                {
                    "model": name,
                    "fraction": fraction,
                    "rows": rows,
                    "seconds": seconds,
                    "n_timed": n_timed,
                    "note": note,
                }
            )
            done += 1
    if progress:
        progress(f"timing {utility_subsets} subset evaluations", done, total)
    if utility_subsets > 0:
        utility, utility_note = _time_utility(task, valuation_model, metric, utility_subsets, seed)
    else:
        utility, utility_note = None, "engine timing skipped; estimates use scikit-learn fits."
    paths: dict[str, dict[str, Any]] = {}
    if utility is not None:
        from dataworth.study.cost_paths import time_paths

        if progress:
            progress("timing each method's own path", done, total)
        paths = time_paths(task, valuation_model, metric, seed=seed, knn_k=knn_k, tmc_tol=tmc_tol)
    if progress:
        progress("cost study done", total, total)
    return CostResult(
        fit_times=pd.DataFrame.from_records(records),
        n_train=n,
        n_classes=n_classes,
        valuation_model=valuation_model,
        utility=utility,
        utility_note=utility_note,
        notes=notes,
        paths=paths,
    )


def _time_utility(
    task: Task, learner: str, metric: str, n_subsets: int, seed: int
) -> tuple[dict[str, Any] | None, str]:
    """Seconds per subset evaluation through the engine, on random 90% subsets."""
    try:
        from dataworth.engine.utility import Utility
    except ImportError as error:  # the engine is optional to this study, not to valuation
        return None, f"engine not available ({error}); estimates use scikit-learn fit times."
    rng = np.random.default_rng([seed, 90])
    keep = max(2, round(0.9 * task.n_train))
    masks = np.zeros((n_subsets, task.n_train), dtype=bool)
    for row in masks:
        row[rng.choice(task.n_train, size=keep, replace=False)] = True
    try:
        utility = Utility(task, learner=learner, metric=metric)
    except ImportError as error:  # e.g. a batched learner whose optional dependency is missing
        return None, f"engine learner not available ({error}); estimates use scikit-learn fits."
    try:
        start = perf_counter()
        evaluation = utility.evaluate(masks)
        seconds = perf_counter() - start
    finally:
        close = getattr(utility, "close", None)
        if close is not None:
            close()
    return (
        {
            "learner": learner,
            "metric": metric,
            "subsets": n_subsets,
            "rows": keep,
            "seconds_total": seconds,
            "seconds_per_subset": seconds / n_subsets,
            "n_fitted": int(getattr(evaluation, "n_fitted", n_subsets)),
            "n_fallback": int(getattr(evaluation, "n_fallback", 0)),
        },
        "",
    )


def default_ame_subsets(n: int, k: int = 10, c: int = 8) -> int:
    """AME sizing ``c * k * log2(n)`` (Lin et al. 2022), at least 2000 as the authors used."""
    return max(2000, math.ceil(c * k * math.log2(max(n, 2))))


def method_fits(
    n: int, ame_subsets: int, sized_by_rule: bool = True
) -> list[tuple[str, Callable[[int], int], str]]:
    """(method, fits as a function of the training rows, note) for each planned method."""
    ame_note = (
        f"m = max(2000, 8·k·log2 n) with k = 10 points that matter (n = {n})"
        if sized_by_rule
        else f"m = {ame_subsets} subsets, as configured"
    )
    return [
        ("LOO (10 points)", lambda r: 11, "U(D) once, then D without each point"),
        ("LOO (all points)", lambda r: r + 1, "U(D) plus one refit per training point"),
        ("leave-group-out (10 groups)", lambda r: 11, "U(D) plus one refit per group"),
        (
            "TMC-Shapley (10 perms)",
            lambda r: 10 * r + 1,
            "upper bound: truncation skips the tail of each permutation once U is near U(D)",
        ),
        (
            "TMC-Shapley, 10 groups (10 perms)",
            lambda r: 10 * 10 + 1,
            "upper bound without truncation; players are the groups",
        ),
        (
            f"AME ({ame_subsets} subsets)",
            lambda r: ame_subsets,
            ame_note,
        ),
    ]


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
    warm-started from the one before) times the share of prefixes a permutation fits before
    truncation (measured on a subsample, which errs on the long side); else an upper bound,
    one generic refit per prefix of every permutation.
    """
    rows = cost.n_train if rows is None else rows
    path = cost.paths.get("tmc_chain")
    if path is None:
        return permutations * rows * cost.seconds_per_fit(rows)
    # The prefixes a permutation fits before truncation, as measured on a subsample.
    share = path.get("fitted_share", 1.0)
    return permutations * rows * share * path["per_prefix"] * cost.scale(rows)


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
    n = cost.n_train if rows is None else rows
    per_fit = cost.seconds_per_fit(max(1, n // 2))
    timing = cost.paths.get("ame_estimation")
    if not timing:
        return 0.0, per_fit
    from dataworth.study.cost_paths import ame_estimation_seconds

    return targets * ame_estimation_seconds(timing, n if players is None else players), per_fit


def estimate_influence(cost: CostResult) -> float | None:
    """Seconds for influence functions (one fit and one solve), as timed on all rows."""
    path = cost.paths.get("influence")
    return None if path is None else path["seconds"]


def _plan_rows(
    cost: CostResult, ame_subsets: int, sized_by_rule: bool, oob_estimators: int
) -> list[tuple[str, Callable[[int], int], Callable[[int], float], str]]:
    """(method, fits of rows, seconds of rows, note) of each planned method."""
    rows_out = []
    for method, fits_of, note in method_fits(cost.n_train, ame_subsets, sized_by_rule):

        def generic(r: int, fits_of=fits_of) -> float:
            return fits_of(r) * cost.seconds_per_fit(r)

        seconds_of = generic
        if method.startswith("LOO") and "loo_one_out" in cost.paths:
            points = 10 if "10 points" in method else None

            def seconds_of(r: int, points=points) -> float:
                return estimate_loo(cost, r if points is None else points, r)

            note += "; timed on a batch of one-out subsets (the learner's one-out path)"
        elif method.startswith("AME") and "ame_estimation" in cost.paths:

            def seconds_of(r: int) -> float:
                fixed, per_subset = estimate_ame(cost, players=r, rows=r)
                return fixed + ame_subsets * per_subset

            note += "; with its LASSO, timed on 100 players and scaled to all of them"
        elif method.startswith("TMC-Shapley (") and "tmc_chain" in cost.paths:

            def seconds_of(r: int) -> float:
                return estimate_tmc(cost, 10, r)

            share = cost.paths["tmc_chain"].get("fitted_share", 1.0)
            note = (
                "timed on a chain of nested prefixes, each warm-started from the last, for the "
                f"{share:.0%} of prefixes a permutation fitted before truncation on a subsample"
            )
        rows_out.append((method, fits_of, seconds_of, note))
    knn = estimate_knn_shapley(cost)
    if knn is not None:
        rows_out.append(
            (
                "KNN-Shapley",
                lambda r: 0,
                lambda r: estimate_knn_shapley(cost, r),
                "no model is fitted; timed on a few test rows",
            )
        )
    if estimate_data_oob(cost, oob_estimators) is not None:
        rows_out.append(
            (
                f"Data-OOB ({oob_estimators} models)",
                lambda r: oob_estimators,
                lambda r: estimate_data_oob(cost, oob_estimators, r),
                f"one tree per bootstrap sample; timed on {cost.paths['data_oob']['models']}",
            )
        )
    influence_seconds = estimate_influence(cost)
    if influence_seconds is not None:
        rows_out.append(
            (
                "influence (first order)",
                lambda r: 1,
                lambda r: influence_seconds * r / cost.n_train,
                "one fit, one linear solve; timed on all rows",
            )
        )
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
