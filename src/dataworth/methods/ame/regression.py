"""AME's regressions of the scores on the design: the cross-validated LASSO, OLS, the moments."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dataworth.errors import DataworthError
from dataworth.methods.ame.lasso.cv import lasso_cv
from dataworth.methods.sampler import STREAM_FOLDS

_ESTIMATORS = ("lasso", "ols", "moment")


@dataclass
class _Fit:
    """Coefficients of one target, in the encoding's units (before the ``c`` rescaling)."""

    coef: np.ndarray  # for values: CV-minimum LASSO, OLS or moments
    coef_select: np.ndarray  # for selection: one-standard-error LASSO, else the same as coef
    stderr: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def _folds(m: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_FOLDS, m)))
    return rng.permutation(np.arange(m) % k)


def _lasso_cv(
    x: np.ndarray,
    y: np.ndarray,
    *,
    cv: int,
    n_alphas: int,
    seed: int,
    max_iter: int,
    tol: float,
    n_jobs: int | None = None,
    prepared=None,
) -> list[_Fit]:
    """K-fold cross-validated LASSO paths, one per column of ``y`` (see :mod:`.lasso`).

    ``K = min(cv, m)`` folds, drawn from the seed; values at the CV-minimum alpha, selection
    at the one-standard-error alpha. ``prepared``: the design's Gram matrices, when built
    ahead (:mod:`.ame_design_ahead`).
    """
    m = x.shape[0]
    k = min(cv, m)
    if k < 2:
        raise DataworthError("Cross-validation needs at least 2 subsets.")
    fits = lasso_cv(
        x,
        y,
        _folds(m, k, seed),
        n_alphas=n_alphas,
        max_iter=max_iter,
        tol=tol,
        n_jobs=n_jobs,
        prepared=prepared,
    )
    return [_Fit(fit.coef_min, fit.coef_1se, info=fit.info) for fit in fits]


def _ols(x: np.ndarray, y: np.ndarray, n_strata: int) -> list[_Fit]:
    """Least squares on the centred design, with classical standard errors."""
    m, ncols = x.shape
    dof = m - ncols - n_strata
    if dof < 1:
        raise DataworthError(
            f"OLS needs more subsets than players: {m} subsets for {ncols} columns; "
            "use estimator='lasso' or draw more subsets."
        )
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    if rank < ncols:
        raise DataworthError("The subsets do not identify every player; draw more subsets.")
    inv_diag = np.diag(np.linalg.inv(x.T @ x))
    fits = []
    for t in range(y.shape[1]):
        sigma2 = float(np.sum((y[:, t] - x @ coef[:, t]) ** 2) / dof)
        se = np.sqrt(sigma2 * inv_diag)
        fits.append(_Fit(coef[:, t], coef[:, t].copy(), se))
    return fits


def _moments(x: np.ndarray, y: np.ndarray, n_strata: int) -> list[_Fit]:
    """The difference-in-means moment ``sum_j x_ji y_j / (m - strata)`` of each column.

    With per-stratum centred ``x`` and ``y`` this is the pooled within-stratum covariance,
    unbiased for ``E[x_i y | p]`` averaged over ``p`` (the randomized-experiment estimator).
    """
    m = x.shape[0]
    denom = max(m - n_strata, 1)
    moment = (x.T @ y) / denom
    fits = []
    for t in range(y.shape[1]):
        terms = x * y[:, t][:, None]
        se = terms.std(axis=0, ddof=1) / np.sqrt(m) if m > 1 else None
        fits.append(_Fit(moment[:, t], moment[:, t].copy(), se))
    return fits
