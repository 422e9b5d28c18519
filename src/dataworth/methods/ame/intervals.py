"""Intervals for AME's regression estimates: a bootstrap over the subsets at the chosen alpha.

AME's values are ``c * beta`` from one cross-validated LASSO on ``m`` random subsets. Their
sampling variability comes from which subsets were drawn, so the interval resamples the
subsets: rows of the (centred) design and their scores are drawn with replacement, re-centred
per stratum of ``p`` exactly as the estimate was, and the LASSO is refitted *at the alpha
already chosen* by cross-validation (no cross-validation per resample), warm-started from the
full-data solution. The 95% interval is the percentile interval of the resampled ``c * beta``
(Efron and Tibshirani, "An Introduction to the Bootstrap", 1993, chapter 13).

What it covers: the sampling variability of the LASSO estimate *given the chosen alpha*. It
does not cover the LASSO's shrinkage bias (every resample is shrunk by the same penalty), nor
the choice of alpha. A point the LASSO sets to zero in most resamples gets an interval at or
around 0: its effect cannot be told from zero at this number of subsets, which is what the
interval then means. For the least-squares and moment estimators the intervals are Student's t
on their classical standard errors (see :mod:`dataworth.methods.intervals`).

Cost: one resample refits the LASSO at one alpha by coordinate descent on an active set (the
full-data support, grown by the columns that violate the optimality condition), so a sweep
costs ``m * support`` and the check on every column one product with the design. The default
number of resamples, :func:`default_resamples`, falls as ``m * columns`` grows. Measured with
``benchmarks/bench_ame_intervals.py`` on a shared, loaded 2-core machine: on breast cancer (400
points, 4,000 subsets, knockoffs) 100 resamples took 2.6 to 4.9 times AME's own time, and on
2,000 points (4,000 subsets) 40 resamples 0.9 to 3.1 times, so the intervals are off unless
asked for.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from dataworth.errors import DataworthError
from dataworth.methods.ame.lasso.paths import _path
from dataworth.methods.intervals import LEVEL
from dataworth.methods.sampler import STREAM_BOOTSTRAP

# Fewest and most resamples by default; between them the count falls with the design's size.
MIN_RESAMPLES = 40
MAX_RESAMPLES = 200
# Resamples times design cells (m * columns) allowed by default: 200 resamples of a
# 400-column design with 4,000 subsets; 40 at 2,000 columns.
_CELL_BUDGET = 200 * 400 * 4000


def default_resamples(m: int, n_columns: int) -> int:
    """The default number of bootstrap resamples for an ``m`` x ``n_columns`` design.

    ``clip(budget / (m * n_columns), MIN_RESAMPLES, MAX_RESAMPLES)``: a resample costs about
    ``m * n_columns`` per coordinate-descent sweep, so the intervals' share of the run's time
    stays roughly constant as the design grows (until the floor).
    """
    cells = max(int(m) * int(n_columns), 1)
    return int(np.clip(_CELL_BUDGET // cells, MIN_RESAMPLES, MAX_RESAMPLES))


def lasso_bootstrap(
    x: np.ndarray,
    y: np.ndarray,
    strata: np.ndarray,
    centre: Callable[[np.ndarray, np.ndarray], np.ndarray],
    coefs: list[np.ndarray],
    alphas: list[float | None],
    *,
    scale: float,
    n_values: int,
    n_resamples: int,
    seed: int,
    level: float = LEVEL,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Percentile bootstrap intervals of ``scale * beta`` at fixed alphas, one per target.

    Parameters
    ----------
    x : ndarray of shape (m, n_columns)
        The centred design the estimate was fitted on (knockoff columns included).
    y : ndarray of shape (m, n_targets)
        The centred scores.
    strata : ndarray of int of shape (m,)
        Stratum of ``p`` of each row (the resampled rows are re-centred within them).
    centre : callable
        ``centre(a, strata)`` removes each stratum's column means from ``a`` in place (the
        estimate's own centring).
    coefs : list of ndarray of shape (n_columns,)
        Each target's full-data coefficients (the warm start).
    alphas : list of float or None
        Each target's chosen alpha; None for a constant target (its interval is its value).
    scale : float
        Coefficient -> value (``c``).
    n_values : int
        The first ``n_values`` columns are the players (the rest are knockoffs).
    n_resamples : int
        Number of resamples.
    seed : int
        The run's seed; the resamples use their own stream of it.
    level : float, default=0.95
        Two-sided level.
    max_iter, tol : int, float
        Coordinate descent's limits, as for the estimate.

    Returns
    -------
    lows, highs : list of ndarray of shape (n_values,)
        One per target.
    n_warnings : int
        Convergence warnings raised by the refits.
    """
    if n_resamples < 2:
        raise DataworthError(f"n_boot must be at least 2 resamples; got {n_resamples}.")
    m, n_targets = y.shape
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_BOOTSTRAP, m)))
    draws = np.empty((n_targets, n_resamples, n_values))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        for b in range(n_resamples):
            rows = np.sort(rng.integers(0, m, m))
            yb = centre(y[rows].copy(), strata[rows])
            for t in range(n_targets):
                if alphas[t] is None:
                    draws[t, b] = coefs[t][:n_values]
                    continue
                coef = _refit(
                    x, rows, strata[rows], yb[:, t], coefs[t], alphas[t], centre, tol, max_iter
                )
                draws[t, b] = coef[:n_values]
    n_warnings = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    tail = 50.0 * (1.0 - level)
    lows, highs = [], []
    for t in range(n_targets):
        low, high = np.percentile(scale * draws[t], [tail, 100.0 - tail], axis=0)
        lows.append(low)
        highs.append(high)
    return lows, highs, n_warnings


def _refit(x, rows, strata, y, coef, alpha, centre, tol, max_iter) -> np.ndarray:
    """The LASSO at ``alpha`` on the resampled rows, by active sets.

    Coordinate descent runs on the columns of the active set only (first the full-data
    support), then the optimality condition ``|x_i' r| / m <= alpha`` is checked on every other
    column of the resampled design, and violators join the set until there are none. The
    check needs no copy of the design: a resampled row's re-centring is orthogonal to a
    residual that is centred in every stratum, so ``x_b' r = x' (counts-weighted r)``.
    """
    m, ncols = x.shape
    active = np.flatnonzero(coef)
    out = np.zeros(ncols)
    # Slack on the condition: the refits stop at the solver's duality-gap tolerance.
    limit = alpha * (1.0 + 1e-3)
    for _ in range(ncols + 1):
        if active.size:
            xa = centre(np.asfortranarray(x[np.ix_(rows, active)]), strata)
            # Coordinate descent on the active columns' Gram matrix: one product per round,
            # then sweeps that cost the support squared, not the subsets times the support.
            beta = _path(
                m,
                np.ascontiguousarray(y),
                np.array([alpha]),
                xa.T @ xa,
                xa.T @ y,
                max_iter=max_iter,
                tol=tol,
                coef_init=coef[active].copy(),
            )[:, 0]
            residual = y - xa @ beta
        else:
            beta, residual = np.zeros(0), y
        gradient = np.abs(x.T @ np.bincount(rows, weights=residual, minlength=m)) / m
        gradient[active] = 0.0
        violators = np.flatnonzero(gradient > limit)
        if not violators.size:
            break
        active = np.union1d(active, violators)
    out[active] = beta
    return out
