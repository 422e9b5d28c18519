"""scikit-learn's LASSO path as AME's CV calls it, and the compiled fold path's loader.

:func:`_path` runs :func:`sklearn.linear_model.lasso_path` on a precomputed Gram matrix (the
values' path, and the fold paths without Numba); :func:`compiled_path` gives the compiled
kernels of :mod:`dataworth.methods.ame.lasso.kernels` when Numba is installed.
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.linear_model import lasso_path


@functools.cache
def compiled_path():
    """The compiled path module (:mod:`.lasso_kernels`), or ``None`` without Numba."""
    try:
        import dataworth.methods.ame.lasso.kernels as lasso_kernels
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
