"""The CV folds of AME's LASSO: each fold's float32 problem and the walks down the grid.

:func:`_cv_lockstep` walks every fold (and, beside them, the full-data path that gives the
values, :class:`_FullPaths`) block by block down each target's grid and stops a target once its
CV curve has clearly passed its minimum (:func:`passed_minimum`); :func:`_cv_whole` walks each
fold's whole grid at once when the fold Gram matrices do not fit together. The design and its
reasons are described in :mod:`dataworth.methods.ame.lasso.cv`.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from dataworth.methods.ame.lasso.paths import _path, _path_direct, compiled_path
from dataworth.methods.ame.lasso.working import working_set_solve

# Columns of a fold's Gram matrix formed per product (see _fold_gram): up to this many, one
# symmetric product (half the arithmetic of a general one).
GRAM_BLOCK = 2048
# The K float32 fold Gram matrices walked in lockstep must fit in this many bytes together
# (10 folds of GRAM_LIMIT columns); beyond, each worker walks one fold's whole grid at a time.
FOLD_GRAMS_BYTES = 1_500_000_000
# Early stop of the CV paths: grid points walked per fold between checks, points that must lie
# past the minimum, and how far above the minimum (in standard errors) the last must be.
STOP_BLOCK = 5
STOP_PATIENCE = 10
STOP_SE = 2.0


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
