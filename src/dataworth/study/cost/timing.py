"""The cost study: how long one fit takes, and what each valuation method would therefore cost.

Refitting is the whole cost of refit-based valuation, so before valuing anything we time each
model on the full training set and on stratified 10% and 1% subsamples, time the valuation
learner through the engine (:class:`~dataworth.engine.utility.Utility`, which may batch fits),
and turn the number of refits each method needs into an estimate of its running time.

What was measured is a :class:`~dataworth.study.cost.result.CostResult`; the estimates and the
plan built from it are in :mod:`dataworth.study.cost.plan` (both re-exported here).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, clone
from threadpoolctl import threadpool_limits

from dataworth.data.task import Task
from dataworth.learners.registry import available_models, make_estimator
from dataworth.metrics import get_metric
from dataworth.study.cost.result import MIN_ROWS_PER_CLASS, CostResult
from dataworth.study.cost.warm_up import KernelWarmUp

ProgressFn = Callable[[str, int, int], None]
"""``progress(description, done, total)``: called as work advances (the CLI draws a bar)."""

DEFAULT_FRACTIONS = (1.0, 0.1, 0.01)


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
    warm_up: KernelWarmUp | None = None,
    groups: dict[str, np.ndarray] | None = None,
    device: str | None = None,
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
        timing each method's own path (:func:`dataworth.study.cost.paths.time_paths`).
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
    warm_up : KernelWarmUp, optional
        The compilation of the paths' kernels, already under way (the study starts it once the
        data are loaded); by default it starts here, beside the models' fits. Either way the
        engine and the paths are timed only once it is done.
    groups : dict of str to ndarray, optional
        The groups the study values, for timing leave-group-out and TMC of groups on them.
    device : {"auto", "cpu", "cuda"}, optional
        Where the networks (``mlp``, ``cnn``) train.

    Returns
    -------
    CostResult
    """
    models = list(available_models() if models is None else models)
    if valuation_model not in models:
        models.append(valuation_model)
    get_metric(metric)  # fail on a misspelled name before timing anything
    estimators = {name: make_estimator(name, seed, device) for name in models}
    if warm_up is None and utility_subsets > 0:
        warm_up = KernelWarmUp(task, valuation_model, knn_k)
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
    if warm_up is not None:
        warm_up.wait()  # no timing below may count a compilation
    if utility_subsets > 0:
        utility, utility_note = _time_utility(
            task, valuation_model, metric, utility_subsets, seed, device
        )
    else:
        utility, utility_note = None, "engine timing skipped; estimates use scikit-learn fits."
    paths: dict[str, dict[str, Any]] = {}
    if utility is not None:
        from dataworth.study.cost.paths import time_paths

        if progress:
            progress("timing each method's own path", done, total)
        paths = time_paths(
            task,
            valuation_model,
            metric,
            seed=seed,
            knn_k=knn_k,
            tmc_tol=tmc_tol,
            groups=groups,
            device=device,
        )
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
    task: Task, learner: str, metric: str, n_subsets: int, seed: int, device: str | None = None
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
        utility = Utility(task, learner=learner, metric=metric, device=device)
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


# The plan and the estimates lived here first; their names still import from this module.
from dataworth.study.cost.plan import (  # noqa: E402
    default_ame_subsets,
    estimate_ame,
    estimate_data_oob,
    estimate_influence,
    estimate_knn_shapley,
    estimate_loo,
    estimate_tmc,
    largest_feasible_rows,
    method_fits,
    plan_table,
)

__all__ = [
    "DEFAULT_FRACTIONS",
    "MIN_ROWS_PER_CLASS",
    "CostResult",
    "default_ame_subsets",
    "estimate_ame",
    "estimate_data_oob",
    "estimate_influence",
    "estimate_knn_shapley",
    "estimate_loo",
    "estimate_tmc",
    "largest_feasible_rows",
    "method_fits",
    "plan_table",
    "run_cost_study",
    "stratified_subsample",
    "time_fit",
]
