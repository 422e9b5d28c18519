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
  (:mod:`dataworth.methods.ame_design_ahead`).
* **Single precision for the CV paths.** The fold paths only rank alphas by validation error;
  float32 halves the memory traffic of every coordinate update (1.7x faster per path). The
  validation errors are computed in double precision from the float32 coefficients.
* **Double precision for the values.** The full-data path runs in float64 with the same
  scikit-learn solver, block by block beside the folds (one more task per round, instead of a
  refit on one thread after them): the coefficients at the chosen alphas are exactly those of
  :func:`sklearn.linear_model.lasso_path` on that grid.
* **Stop the CV paths past the minimum.** The grid runs down to ``1e-4`` of the largest alpha
  when there are more subsets than columns, nearly least squares, and the coordinate descent
  there is the dearest (on the design above the CV minimum is grid point 32 of 100, and about 80% of
  a whole fold path's time lies past point 42). The folds walk the grid in lockstep,
  :data:`STOP_BLOCK` points at a time (fewer when the stop could first hold sooner), and a
  target stops once its mean CV error has passed its
  minimum by :data:`STOP_PATIENCE` points and :data:`STOP_SE` standard errors
  (:func:`passed_minimum`). Only the minimum and the points before it choose the alphas (the
  one-standard-error alpha lies before the minimum), and the blocks continue one warm-started
  path, so the alphas and values equal the whole grid's unless the CV curve, once clearly
  rising, fell below its minimum again further down; a curve that only plateaus within noise
  of its minimum is walked to the end. ``early_stop=False`` walks every grid point.
* **Working sets on the sparse part.** scikit-learn's descent on a Gram matrix pays about
  ``n^2`` per alpha whatever the support; while a fold's support is small, each alpha is solved
  on a working set instead (:mod:`dataworth.methods.lasso_working`: the strong rule, then an
  optimality check on every other column), to the same duality-gap tolerance. On AME's wide
  designs (Knockoffs, fewer subsets than columns) the CV minimum lies there.
* **Ten folds.** See :data:`DEFAULT_FOLDS`.

* **Compiled fold paths.** With Numba, each fold walks a block of alphas in one compiled call
  (:mod:`dataworth.methods.lasso_kernels`): the same cyclic coordinate descent and duality-gap
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

import functools
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import lasso_path
from threadpoolctl import threadpool_limits

from dataworth.errors import DataworthError
from dataworth.methods.lasso_working import working_set_solve

# Above this many columns the n x n Gram matrices (one per worker) cost more than they save:
# coordinate descent then works on the design itself.
GRAM_LIMIT = 6000
# Columns of a fold's Gram matrix formed per product (see _fold_gram): up to this many, one
# symmetric product (half the arithmetic of a general one).
GRAM_BLOCK = 2048
# The K float32 fold Gram matrices walked in lockstep must fit in this many bytes together
# (10 folds of GRAM_LIMIT columns); beyond, each worker walks one fold's whole grid at a time.
FOLD_GRAMS_BYTES = 1_500_000_000
# The full-data paths walked beside the folds keep every walked point's coefficients (float64)
# until the CV has chosen; beyond this many bytes for all targets, the path is run afterwards.
FULL_PATHS_BYTES = 64 * 2**20
# Early stop of the CV paths: grid points walked per fold between checks, points that must lie
# past the minimum, and how far above the minimum (in standard errors) the last must be.
STOP_BLOCK = 5
STOP_PATIENCE = 10
STOP_SE = 2.0
# glmnet's default number of folds. The authors' K = min(m, 20) doubles the cost of the CV; on
# the designs measured (benchmarks/bench_ame.py --scale) 10 folds chose the same alphas with
# 4,000 subsets, and with 1,000 the same one-SE alpha but a CV minimum one grid point away.
DEFAULT_FOLDS = 10


@functools.cache
def compiled_path():
    """The compiled path module (:mod:`.lasso_kernels`), or ``None`` without Numba."""
    try:
        from dataworth.methods import lasso_kernels
    except ImportError:  # Numba is not installed
        return None
    return lasso_kernels


def warm_up_compiled_path() -> None:
    """Load the compiled path's machine code now (a no-op without Numba).

    In a fresh process, importing Numba and loading the kernel from its on-disk cache take
    about a second; AME does it on the thread that builds the design while the subsets are
    fitted, so that the estimation step does not wait for it.
    """
    kernels = compiled_path()
    if kernels is None:
        return
    n = 2
    # The argument types of the CV's calls: float32 Gram matrix and G w, float64 elsewhere.
    kernels.lasso_gram_path(
        np.eye(n, dtype=np.float32),
        np.ones(n),
        1.0,
        np.ones(1),
        1.0,
        1.0,
        1e-4,
        10,
        np.zeros(n),
        np.zeros(n),
        np.zeros(n, dtype=np.float32),
        np.empty((n, 1)),
    )


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


def _path(
    n_rows: int,
    y: np.ndarray,
    alphas: np.ndarray,
    gram: np.ndarray,
    xy: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    coef_init: np.ndarray | None = None,
) -> np.ndarray:
    """scikit-learn's LASSO path from a Gram matrix; returns (n_columns, n_alphas).

    With a precomputed Gram matrix and ``check_input=False`` the solver reads only the shape
    of ``X``; a zero-stride stand-in of that shape spares a copy of the design per fold.
    """
    shape_only = np.broadcast_to(np.zeros((1, 1), dtype=gram.dtype), (n_rows, gram.shape[0]))
    return lasso_path(
        shape_only,
        y,
        alphas=alphas,
        precompute=gram,
        Xy=xy,
        max_iter=max_iter,
        tol=tol,
        check_input=False,
        coef_init=coef_init,
    )[1]


def _path_direct(
    x: np.ndarray, y: np.ndarray, alphas: np.ndarray, *, max_iter: int, tol: float
) -> np.ndarray:
    """The covariance-free path (coordinate descent on the design's columns)."""
    return lasso_path(x, y, alphas=alphas, max_iter=max_iter, tol=tol, check_input=False)[1]


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
        # The full-data path walks the grid beside the folds when its columns fit the budget.
        full = None
        if lockstep and y.shape[1] * ncols * n_alphas * 8 <= FULL_PATHS_BYTES:
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
        fits = [
            _choose_and_refit(
                x,
                y[:, t],
                xy[:, t],
                gram,
                grids[t],
                mse[t, :, : walked[t]],
                options,
                walked_path=full.path(t) if full is not None else None,
            )
            for t in range(y.shape[1])
        ]
    n_warnings = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    for t, fit in enumerate(fits):
        fit.info |= {
            "cv_folds": k,
            "n_alphas": n_alphas,
            "cv_alphas_walked": int(walked[t]),
            "convergence_warnings": n_warnings,
        }
    return fits


class _FullPaths:
    """Each target's float64 path on all rows (scikit-learn's), walked block by block beside
    the folds: a block continues from the last block's coefficients, and scikit-learn's solver
    forms ``G w`` afresh at every alpha, so the coefficients are those of one call on the whole
    grid. It saves the refit after the CV, which would run on one thread."""

    def __init__(self, y: np.ndarray, xy: np.ndarray, gram: np.ndarray, options: dict) -> None:
        self.y, self.xy, self.gram, self.options = y, xy, gram, options
        self.blocks: list[list[np.ndarray]] = [[] for _ in range(y.shape[1])]

    def advance(self, t: int, alphas: np.ndarray) -> None:
        last = self.blocks[t][-1][:, -1].copy() if self.blocks[t] else None
        y_t = np.ascontiguousarray(self.y[:, t])
        xy_t = np.ascontiguousarray(self.xy[:, t])
        coefs = _path(len(y_t), y_t, alphas, self.gram, xy_t, coef_init=last, **self.options)
        self.blocks[t].append(coefs)

    def path(self, t: int) -> np.ndarray | None:
        """Target ``t``'s coefficients at the grid points walked, ``(n_columns, walked)``."""
        return np.concatenate(self.blocks[t], axis=1) if self.blocks[t] else None


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


def passed_minimum(mse: np.ndarray) -> bool:
    """Whether a CV curve walked so far has clearly passed its minimum (see :data:`STOP_SE`).

    ``mse`` is ``(folds, alphas walked)``. True when the last :data:`STOP_PATIENCE` grid points
    all lie past the minimum of the mean curve and the last one is more than :data:`STOP_SE`
    standard errors (of the minimum's fold errors) above it.
    """
    k, walked = mse.shape
    mean = mse.mean(axis=0)
    i_min = int(np.argmin(mean))
    if walked - 1 - i_min < STOP_PATIENCE:
        return False
    se = mse[:, i_min].std(ddof=1) / np.sqrt(k)
    return bool(mean[-1] > mean[i_min] + STOP_SE * se)


def _fold_gram(gram: np.ndarray, x_val: np.ndarray) -> np.ndarray:
    """``x'x`` of a fold's training rows in float32: ``gram`` less its validation rows' part.

    Formed in float64 by blocks of columns: float64 products have the same bits whatever
    BLAS's thread count (float32 ones do not, measured with OpenBLAS), and the blocks bound
    the temporary to ``n x GRAM_BLOCK``.
    """
    ncols = gram.shape[0]
    out = np.empty((ncols, ncols), dtype=np.float32)
    for start in range(0, ncols, GRAM_BLOCK):
        cols = slice(start, start + GRAM_BLOCK)
        part = x_val.T @ x_val[:, cols]
        out[:, cols] = np.subtract(gram[:, cols], part, out=part)  # no second temporary
    return out


def _one_blas_thread():
    """The folds are the parallelism: one BLAS thread per fold worker (threaded BLAS inside
    every worker oversubscribes the cores: 1.6x more CPU measured on two cores)."""
    return threadpool_limits(limits=1, user_api="blas")


class _Fold:
    """One fold's float32 problem: its Gram matrix, ``x'y``, and each target's coefficients."""

    def __init__(self, x, y, xy, gram: np.ndarray, val: np.ndarray) -> None:
        self.x_val = x[val]
        self.y_val = y[val]
        self.gram = gram  # float32 x'x of the training rows (:func:`prepare_design`)
        self.xy64 = np.asfortranarray(xy - self.x_val.T @ self.y_val)
        self.xy = np.asfortranarray(self.xy64, dtype=np.float32)
        y_train = y[~val]
        self.y_norm2 = np.einsum("ij,ij->j", y_train, y_train)
        self.y_train = np.asfortranarray(y_train, dtype=np.float32)
        self.coef: list[np.ndarray | None] = [None] * y.shape[1]
        # The compiled path's state: G w, the last but one solution, the last two penalties.
        self.gram_coef: list[np.ndarray | None] = [None] * y.shape[1]
        self.coef_before: list[np.ndarray | None] = [None] * y.shape[1]
        self.lams_solved: list[tuple[float, float] | None] = [None] * y.shape[1]

    def advance(
        self, t: int, alphas: np.ndarray, options: dict, alpha_prev: float | None, working: bool
    ) -> np.ndarray:
        """Target ``t``'s path on ``alphas``, warm-started where the last call ended; returns
        the validation errors. Without ``working`` sets, the same numbers as one call on the
        whole grid; with them, each alpha's solve runs on a working set while the support is
        small (:mod:`.lasso_working`), to the same duality-gap tolerance. With Numba, the
        working-set path runs compiled (:mod:`.lasso_kernels`)."""
        kernels = compiled_path() if working else None
        if kernels is not None:
            coefs = self._advance_compiled(kernels, t, alphas, options, alpha_prev)
            residual = self.y_val[:, t][:, None] - self.x_val @ coefs
            return np.mean(residual**2, axis=0)
        alphas = alphas.astype(np.float32)
        y_t, xy_t = self.y_train[:, t], self.xy[:, t]
        coefs = np.zeros((len(xy_t), len(alphas)), dtype=np.float32)
        done = 0
        if working:
            # The path starts from zero at the largest alpha (where zero is the solution).
            coef = self.coef[t] if self.coef[t] is not None else np.zeros_like(xy_t)
            for i, alpha in enumerate(alphas):
                previous = alphas[i - 1] if i else alpha_prev if alpha_prev is not None else alpha
                solved = working_set_solve(
                    _path, self.gram, xy_t, y_t, float(alpha), float(previous), coef, options
                )
                if solved is None:
                    break
                coefs[:, i] = coef = solved
                done = i + 1
        if done < len(alphas):
            coefs[:, done:] = _path(
                len(y_t),
                y_t,
                alphas[done:],
                self.gram,
                xy_t,
                coef_init=coefs[:, done - 1].copy() if done else self.coef[t],
                **options,
            )
        self.coef[t] = coefs[:, -1].copy()
        residual = self.y_val[:, t][:, None] - self.x_val @ coefs.astype(np.float64)
        return np.mean(residual**2, axis=0)

    def _advance_compiled(self, kernels, t, alphas, options, alpha_prev) -> np.ndarray:
        """Target ``t``'s path on ``alphas`` in one compiled call; ``G w`` and the last two
        solutions (for the path's extrapolation) are carried over."""
        n_rows, n = self.y_train.shape[0], self.gram.shape[0]
        lams = np.asarray(alphas, dtype=np.float64) * n_rows
        if self.coef[t] is None:  # the path starts from zero at the largest alpha
            # G w in the Gram matrix's precision: float32 halves each update's vector traffic.
            self.coef[t], self.gram_coef[t] = np.zeros(n), np.zeros(n, dtype=self.gram.dtype)
            self.coef_before[t] = np.zeros(n)
            lam_prev = lams[0] if alpha_prev is None else float(alpha_prev) * n_rows
            self.lams_solved[t] = (lam_prev, lam_prev)
        lam_prev, lam_before = self.lams_solved[t]
        coefs = np.empty((n, len(lams)))
        missed = kernels.lasso_gram_path(
            self.gram,
            np.ascontiguousarray(self.xy64[:, t]),
            float(self.y_norm2[t]),
            lams,
            lam_prev,
            lam_before,
            float(options["tol"]),
            int(options["max_iter"]),
            self.coef[t],
            self.coef_before[t],
            self.gram_coef[t],
            coefs,
        )
        self.lams_solved[t] = (lams[-1], lams[-2] if len(lams) > 1 else lam_prev)
        if missed:
            warnings.warn(
                f"The LASSO did not converge at {missed} alphas in {options['max_iter']} sweeps.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return coefs


def _cv_lockstep(
    x,
    y,
    folds,
    k,
    gram,
    xy,
    grids,
    options,
    workers,
    early_stop,
    working=True,
    fold_grams=None,
    full: _FullPaths | None = None,
):
    """Every fold walks each target's grid :data:`STOP_BLOCK` points at a time; a target stops
    when its mean CV curve has passed its minimum (:func:`passed_minimum`) or the grid ends.
    ``full``, when given, walks the full-data paths alongside (one more task per round).

    Returns the ``(targets, folds, alphas)`` errors (NaN where not walked) and the points
    walked per target.
    """
    n_targets, n_alphas = y.shape[1], max((len(g) for g in grids if g is not None), default=0)
    mse = np.full((n_targets, k, n_alphas), np.nan)
    walked = np.zeros(n_targets, dtype=int)
    active = [t for t in range(n_targets) if grids[t] is not None]
    if fold_grams is None:
        fold_grams = [_fold_gram(gram, x[folds == f]) for f in range(k)]  # from the given x'x

    def make(f: int) -> _Fold:
        return _Fold(x, y, xy, fold_grams[f], folds == f)

    def step(f: int) -> dict[int, np.ndarray]:
        if f == k:  # the full-data paths
            for t in active:
                full.advance(t, grids[t][walked[t] : walked[t] + blocks[t]])
            return {}
        fold = states[f]
        out = {}
        for t in active:
            lo = walked[t]
            previous = grids[t][lo - 1] if lo else None
            alphas = grids[t][lo : lo + blocks[t]]
            out[t] = fold.advance(t, alphas, options, previous, working)
        return out

    blas = _one_blas_thread() if workers > 1 else nullcontext()
    with blas, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        states = list(pool.map(make, range(k)))
        while active:
            blocks = {
                t: _block(mse[t, :, : walked[t]]) if early_stop else STOP_BLOCK for t in active
            }
            # The full-data task first: it is one task of the round, as dear as a fold's.
            tasks = ([k] if full is not None else []) + list(range(k))
            for f, errors in zip(tasks, pool.map(step, tasks), strict=True):
                for t, e in errors.items():
                    mse[t, f, walked[t] : walked[t] + len(e)] = e
            for t in active:
                walked[t] = min(walked[t] + blocks[t], len(grids[t]))
            active = [
                t
                for t in active
                if walked[t] < len(grids[t])
                and not (early_stop and passed_minimum(mse[t, :, : walked[t]]))
            ]
    return mse, np.where(walked > 0, walked, n_alphas)


def _block(mse: np.ndarray) -> int:
    """Grid points to walk next: :data:`STOP_BLOCK`, or fewer when :func:`passed_minimum` can
    first hold sooner (past the minimum the points are the dearest of the path)."""
    walked = mse.shape[1]
    if walked == 0:
        return STOP_BLOCK
    need = int(np.argmin(mse.mean(axis=0))) + STOP_PATIENCE + 1 - walked
    return need if 1 <= need < STOP_BLOCK else STOP_BLOCK


def _cv_whole(x, y, folds, k, gram, xy, grids, options, workers):
    """Each fold walks every target's whole grid in one call (one fold's Gram matrix, or its
    float32 training rows, per worker): the path when the fold Gram matrices do not all fit."""
    ncols = x.shape[1]
    n_targets, n_alphas = y.shape[1], max((len(g) for g in grids if g is not None), default=0)
    use_gram = gram is not None

    def fold_errors(f: int) -> np.ndarray:
        val = folds == f
        train = ~val
        x_val = x[val]
        y_val = y[val]
        errors = np.full((n_targets, n_alphas), np.nan)
        if use_gram:
            gram_f = _fold_gram(gram, x_val)  # one n x n array per worker
            xy_f = (xy - x_val.T @ y_val).astype(np.float32)
        else:
            x_train32 = np.asfortranarray(x[train], dtype=np.float32)
        n_train = int(train.sum())
        for t in range(n_targets):
            if grids[t] is None:
                continue
            y_train = np.ascontiguousarray(y[train, t], dtype=np.float32)
            alphas = grids[t].astype(np.float32)
            if use_gram:
                coefs = _path(n_train, y_train, alphas, gram_f, xy_f[:, t].copy(), **options)
            else:
                coefs = _path_direct(x_train32, y_train, alphas, **options)
            residual = y_val[:, t][:, None] - x_val @ coefs.astype(np.float64)
            errors[t] = np.mean(residual**2, axis=0)
        return errors

    # Each worker holds one fold's float32 Gram matrix; keep their total under the cap.
    workers = max(1, min(workers, k, int(FOLD_GRAMS_BYTES // max(4 * ncols * ncols, 1))))
    if workers == 1:
        per_fold = [fold_errors(f) for f in range(k)]
    else:
        with _one_blas_thread(), ThreadPoolExecutor(max_workers=workers) as pool:
            per_fold = list(pool.map(fold_errors, range(k)))
    return np.stack(per_fold, axis=1)  # (targets, folds, alphas)


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
