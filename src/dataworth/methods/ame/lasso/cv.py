"""Cross-validated LASSO paths for AME's designs: many folds and targets over one Gram matrix.

AME regresses ``m`` utilities (or ``m`` x ``T`` per-prediction scores) on ``m`` x ``n`` encoded
memberships: a dense design whose columns are nearly orthogonal, with ``m`` and ``n`` in the
thousands. The LASSO is fitted along a descending grid of ``alpha`` (warm starts), ``K`` times on
the training folds to find the CV-minimum and one-standard-error alphas, then once on all rows.

Where the time goes (measured on a 2,000-player design with 4,000 subsets, a dense utility whose
CV-minimum support holds 1,200 players): coordinate descent on the fold paths. Each update of a
nonzero coefficient costs one pass over a Gram row, the support grows to nearly every column at
the small alphas at the end of the grid, and the grid is walked ``K + 1`` times per target.
Forming the Gram matrices is secondary (one ``m n^2`` product for all folds together). So:

* **One Gram matrix.** ``x'x`` is formed once; fold ``f``'s is ``x'x - x_f'x_f`` and its
  ``x'y`` likewise, so every fold and every target share one product. They depend on the
  design alone (:func:`prepare_design`), so AME forms them while its subsets are being fitted
  (:mod:`dataworth.methods.ame.design_ahead`).
* **Single precision for the CV paths.** The fold paths only rank alphas by validation error;
  float32 halves the memory traffic of every coordinate update (1.7x faster per path). The
  validation errors are computed in double precision from the float32 coefficients.
* **Double precision for the values.** The full-data path runs in float64 with the same
  scikit-learn solver, block by block beside the folds (one more task per round, instead of a
  refit on one thread after them): the coefficients at the chosen alphas are exactly those of
  :func:`sklearn.linear_model.lasso_path` on that grid.
* **Stop the CV paths past the minimum.** The grid runs down to ``1e-4`` of the largest alpha
  when there are more subsets than columns, nearly least squares, and the coordinate descent
  there is the dearest (on the design above the CV minimum is grid point 32 of 100, and about
  80% of a whole fold path's time lies past point 42). The folds walk the grid in lockstep,
  :data:`STOP_BLOCK` points at a time (fewer when the stop could first hold sooner), and a
  target stops once its mean CV error has passed its minimum by :data:`STOP_PATIENCE` points
  and :data:`STOP_SE` standard errors (:func:`passed_minimum`). Only the minimum and the points
  before it choose the alphas (the one-standard-error alpha lies before the minimum), and the
  blocks continue one warm-started path, so the alphas and values equal the whole grid's unless
  the CV curve, once clearly rising, fell below its minimum again further down; a curve that
  only plateaus within noise of its minimum is walked to the end. ``early_stop=False`` walks
  every grid point.
* **Working sets on the sparse part.** scikit-learn's descent on a Gram matrix pays about
  ``n^2`` per alpha whatever the support; while a fold's support is small, each alpha is solved
  on a working set instead (:mod:`dataworth.methods.ame.lasso.working`: the strong rule, then an
  optimality check on every other column), to the same duality-gap tolerance. On AME's wide
  designs (Knockoffs, fewer subsets than columns) the CV minimum lies there.
* **Ten folds.** See :data:`DEFAULT_FOLDS`.

* **Compiled fold paths.** With Numba, each fold walks a block of alphas in one compiled call
  (:mod:`dataworth.methods.ame.lasso.kernels`): the same cyclic coordinate descent and duality-gap
  rule as scikit-learn's, on working sets at every alpha, with ``G w`` carried from one alpha and
  one block to the next; the gap is checked after every sweep and each alpha starts from the
  path extrapolated from the last two solutions. scikit-learn's ``lasso_path`` spends about
  as long checking its arguments and forming ``G w`` per call as solving a small problem: on
  500 players and 10 test rows as targets the CV took 4.8 s serially, 2.5 s compiled, choosing
  the same alphas.

The fold solver runs in threads (both solvers release the GIL), and each fold's numbers do not
depend on the others, so the threading changes none of them. The full-data path that gives the
values is always scikit-learn's, in float64.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from dataworth.errors import DataworthError
from dataworth.methods.ame.lasso.folds import (
    FOLD_GRAMS_BYTES,
    _cv_lockstep,
    _cv_whole,
    _fold_gram,
    _FullPaths,
    _one_blas_thread,
)
from dataworth.methods.ame.lasso.paths import _path, _path_direct

# Above this many columns the n x n Gram matrices (one per worker) cost more than they save:
# coordinate descent then works on the design itself.
GRAM_LIMIT = 6000
# A full-data path walked beside the folds keeps every walked point's coefficients (float64)
# until the CV has chosen; beyond this many bytes, the path is run afterwards.
FULL_PATHS_BYTES = 64 * 2**20
# glmnet's default number of folds. The authors' K = min(m, 20) doubles the cost of the CV; on
# the designs measured (benchmarks/bench_ame.py --scale) 10 folds chose the same alphas with
# 4,000 subsets, and with 1,000 the same one-SE alpha but a CV minimum one grid point away.
DEFAULT_FOLDS = 10


@dataclass
class LassoCVFit:
    """One target's cross-validated LASSO.

    Attributes
    ----------
    coef_min : ndarray of shape (n_columns,)
        Coefficients at the CV-minimum alpha (float64, full data).
    coef_1se : ndarray of shape (n_columns,)
        Coefficients at the largest alpha within one standard error of the minimum.
    info : dict
        The alphas, the CV error at the minimum, both supports' sizes, the folds.
    """

    coef_min: np.ndarray
    coef_1se: np.ndarray
    info: dict = field(default_factory=dict)


def alpha_grid(xy: np.ndarray, m: int, n_columns: int, n_alphas: int) -> list[np.ndarray | None]:
    """glmnet's grid for each target: from the smallest alpha that zeroes every coefficient
    down by 0.01 (``m < n_columns``) or 1e-4, log-spaced, the whole way (the authors patched
    glmnet so it never stops early). None for a constant target.
    """
    ratio = 0.01 if m < n_columns else 1e-4
    alpha_max = np.abs(xy).max(axis=0) / m
    return [np.geomspace(a, a * ratio, n_alphas) if a > 0 else None for a in alpha_max]


def lasso_cv(
    x: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    *,
    n_alphas: int = 100,
    max_iter: int = 1000,
    tol: float = 1e-4,
    n_jobs: int | None = None,
    early_stop: bool = True,
    prepared: PreparedDesign | None = None,
) -> list[LassoCVFit]:
    """K-fold cross-validated LASSO paths, one per column of ``y``, over a shared design.

    ``x`` and ``y`` are centred (the LASSO has no intercept). Objective, as scikit-learn's:
    ``||y - x b||^2 / (2 m) + alpha ||b||_1``.

    Parameters
    ----------
    x : ndarray of shape (m, n_columns), float64
    y : ndarray of shape (m, n_targets), float64
    folds : ndarray of int of shape (m,)
        Fold of each row, ``0 .. K-1``.
    n_alphas : int, default=100
        Points on each target's grid (:func:`alpha_grid`).
    max_iter, tol : int, float
        Coordinate descent's limits (``tol`` relative to ``||y||^2``, as scikit-learn's).
    n_jobs : int, optional
        Threads over the folds (default: one per core). The numbers do not depend on it.
    early_stop : bool, default=True
        Stop each target's fold paths once its CV curve has clearly passed its minimum
        (:func:`passed_minimum`) instead of walking the whole grid. Applies when the ``K``
        fold Gram matrices fit under :data:`FOLD_GRAMS_BYTES` together.
    prepared : PreparedDesign, optional
        The Gram matrices of ``x`` and its folds from :func:`prepare_design` (computed, for
        instance, while the targets were being measured); by default computed here.

    Returns
    -------
    list of LassoCVFit
        One per target; the values use float64 coefficients of the full data at the chosen
        alphas, equal to :func:`sklearn.linear_model.lasso_path`'s on the same grid.
    """
    m, ncols = x.shape
    k = int(folds.max()) + 1 if len(folds) else 0
    if k < 2:
        raise DataworthError("Cross-validation needs at least 2 subsets.")
    workers = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
    if prepared is None:
        prepared = prepare_design(x, folds, n_jobs=workers)
    elif prepared.x is not x or not np.array_equal(prepared.folds, folds):
        raise DataworthError("The prepared design belongs to another design or folds.")
    xy = x.T @ y  # every target's x'y in one product
    grids = alpha_grid(xy, m, ncols, n_alphas)
    gram = prepared.gram
    options = {"max_iter": max_iter, "tol": tol}
    lockstep = prepared.fold_grams is not None
    # Convergence warnings from every thread are counted here (the warnings filters are
    # process-wide, so they are set once, around the whole pool).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        # One target: its full-data path walks the grid beside the folds (its columns fit the
        # budget). Several: their paths run after the CV, in parallel (a path per block and
        # target beside the folds would cost one scikit-learn call each: 1.3x slower measured
        # on 100 targets).
        full = None
        if lockstep and y.shape[1] == 1 and ncols * n_alphas * 8 <= FULL_PATHS_BYTES:
            full = _FullPaths(y, xy, gram, options)
        if lockstep:
            mse, walked = _cv_lockstep(
                x,
                y,
                folds,
                k,
                gram,
                xy,
                grids,
                options,
                min(workers, k),
                early_stop,
                fold_grams=prepared.fold_grams,
                full=full,
            )
        else:
            mse = _cv_whole(x, y, folds, k, gram, xy, grids, options, workers)
            walked = np.full(y.shape[1], n_alphas)

        def choose(t: int) -> LassoCVFit:
            walked_path = full.path(t) if full is not None else None
            mse_t = mse[t, :, : walked[t]]
            return _choose_and_refit(
                x, y[:, t], xy[:, t], gram, grids[t], mse_t, options, walked_path=walked_path
            )

        # Each target's path is its own: the threads change none of their numbers.
        if full is None and y.shape[1] > 1 and workers > 1:
            with _one_blas_thread(), ThreadPoolExecutor(max_workers=workers) as pool:
                fits = list(pool.map(choose, range(y.shape[1])))
        else:
            fits = [choose(t) for t in range(y.shape[1])]
    n_warnings = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    for t, fit in enumerate(fits):
        fit.info |= {
            "cv_folds": k,
            "n_alphas": n_alphas,
            "cv_alphas_walked": int(walked[t]),
            "convergence_warnings": n_warnings,
        }
    return fits


def fold_grams_bytes(n_columns: int, k: int) -> int:
    """Bytes of the ``k`` float32 fold Gram matrices the lockstep CV holds at once."""
    return 4 * int(n_columns) ** 2 * int(k)


@dataclass
class PreparedDesign:
    """What the CV needs of the design alone, before any target is known.

    Attributes
    ----------
    x, folds : ndarray
        The design and the fold of each row it was prepared for.
    gram : ndarray of shape (n_columns, n_columns) or None
        ``x'x`` in float64; None above :data:`GRAM_LIMIT` columns.
    fold_grams : list of ndarray or None
        Each fold's float32 ``x'x`` over its training rows, when the lockstep CV applies.
    """

    x: np.ndarray
    folds: np.ndarray
    gram: np.ndarray | None
    fold_grams: list[np.ndarray] | None


def prepare_design(
    x: np.ndarray, folds: np.ndarray, *, n_jobs: int | None = None, limit_blas: bool = True
) -> PreparedDesign:
    """The Gram matrices of a design and of its folds' training rows (see :func:`lasso_cv`).

    They depend on the design alone, so AME computes them while the subsets are being fitted.
    ``limit_blas=False`` computes the folds one after another without touching BLAS's thread
    count (its limit is process-wide: a thread running beside other work must leave it alone).
    """
    ncols = x.shape[1]
    k = int(folds.max()) + 1 if len(folds) else 0
    gram = x.T @ x if ncols <= GRAM_LIMIT else None
    fold_grams = None
    if gram is not None and k >= 2 and fold_grams_bytes(ncols, k) <= FOLD_GRAMS_BYTES:

        def fold_gram(f: int) -> np.ndarray:
            return _fold_gram(gram, x[folds == f])

        workers = min(k, n_jobs if n_jobs is not None else (os.cpu_count() or 1))
        if not limit_blas or workers == 1:
            fold_grams = [fold_gram(f) for f in range(k)]
        else:
            with _one_blas_thread(), ThreadPoolExecutor(max_workers=workers) as pool:
                fold_grams = list(pool.map(fold_gram, range(k)))
    return PreparedDesign(x, folds, gram, fold_grams)


def _choose_and_refit(
    x: np.ndarray,
    y: np.ndarray,
    xy: np.ndarray,
    gram: np.ndarray | None,
    grid: np.ndarray | None,
    mse: np.ndarray,
    options: dict,
    walked_path: np.ndarray | None = None,
) -> LassoCVFit:
    ncols = x.shape[1]
    if grid is None:  # a constant target: nothing to explain
        zeros = np.zeros(ncols)
        return LassoCVFit(zeros, zeros.copy(), {"alpha_min": None, "alpha_1se": None})
    k = mse.shape[0]
    mean = mse.mean(axis=0)
    se = mse.std(axis=0, ddof=1) / np.sqrt(k)
    i_min = int(np.argmin(mean))
    # One-standard-error rule: the largest alpha (sparsest model) within one SE of the
    # minimum; the grid is descending, so that is the first index that qualifies.
    i_1se = int(np.flatnonzero(mean <= mean[i_min] + se[i_min])[0])
    # The full-data path is needed only down to the CV minimum (warm starts give the same
    # coefficients at those alphas as the whole path would).
    y = np.ascontiguousarray(y)
    if walked_path is not None:
        coefs = walked_path  # walked beside the folds (:class:`_FullPaths`)
    elif gram is not None:
        coefs = _path(len(y), y, grid[: i_min + 1], gram, np.ascontiguousarray(xy), **options)
    else:
        coefs = _path_direct(np.asfortranarray(x), y, grid[: i_min + 1], **options)
    return LassoCVFit(
        coefs[:, i_min].copy(),
        coefs[:, i_1se].copy(),
        info={
            "alpha_min": float(grid[i_min]),
            "alpha_1se": float(grid[i_1se]),
            "cv_mse_min": float(mean[i_min]),
            "support_min": int(np.count_nonzero(coefs[:, i_min])),
            "support_1se": int(np.count_nonzero(coefs[:, i_1se])),
        },
    )
