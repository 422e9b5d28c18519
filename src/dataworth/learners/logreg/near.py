"""Test-row probabilities of many models near the full-data solution, in compiled code.

Scoring exact LOO of a large task means the probabilities of every one-out model on every test
row: at 35,000 training and 15,000 test rows, 2.6e9 of them. NumPy's stacked products and softmax
pass over that array several times; here each model's logits on a row are the full-data model's
plus ``x . (theta - theta_full)``, whose exponential is a short series (no ``exp`` call) for a
model as near as a one-out fit, as in :mod:`dataworth.learners.logreg.one_out`. Models far from
the full-data solution on a row get that row's softmax from their logits directly.

The path is taken by task, never by batch: for every model of a task whose test set has at least
``_NEAR_MIN_TEST_ROWS`` rows (with Numba installed, every class in the model, and the full-data
solution at hand), so a model's probabilities never depend on the batch it came in; smaller
tasks keep NumPy's arithmetic and their values bit for bit.
"""

from __future__ import annotations

import functools
import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dataworth.learners.logreg.problem import _augment
from dataworth.machine import usable_threads

__all__ = ["predict_proba_near"]

# Test sets from this many rows are scored by the compiled path (the default study's tasks have
# a few hundred test rows and keep NumPy's bits).
_NEAR_MIN_TEST_ROWS = 2000
# Models stepped side by side, in parameter rows (as the one-out kernels' batch columns).
_BATCH_COLUMNS = 256


@functools.cache
def near_kernels():
    """The compiled kernel module, or ``None`` when Numba is not installed."""
    try:
        # The module itself, not through the package (whose __init__ imports the learner).
        import dataworth.learners.logreg.near_kernels as kernels
    except ImportError:  # Numba is not installed
        return None
    return kernels


def predict_proba_near(
    theta_ref: np.ndarray | None,
    X: np.ndarray,
    params: np.ndarray,
    present: np.ndarray,
    n_classes: int,
    predict_proba,
) -> np.ndarray | None:
    """Probabilities of the models ``params`` on the rows ``X``, near the full-data model.

    Parameters
    ----------
    theta_ref : ndarray of shape (P,) or None
        The task's full-data solution (``None`` when it is not at hand).
    X : ndarray of shape (m, d)
    params : ndarray of shape (K, P)
    present : ndarray of bool, shape (K, n_classes)
        Classes each model knows; a model that lacks one is passed to ``predict_proba``.
    n_classes : int
    predict_proba : callable
        NumPy's path, :meth:`BatchedLogisticRegression.predict_proba`.

    Returns
    -------
    ndarray of shape (K, m, n_classes) or None
        ``None`` when this task keeps NumPy's path (fewer than ``_NEAR_MIN_TEST_ROWS`` rows, no
        Numba, or no full-data solution).
    """
    if theta_ref is None or len(X) < _NEAR_MIN_TEST_ROWS or near_kernels() is None:
        return None
    Xa = np.ascontiguousarray(_augment(np.asarray(X, dtype=np.float64)))
    W = Xa.shape[1]
    R = len(theta_ref) // W
    zref = np.zeros((len(Xa), n_classes))  # a binary task's class 0 keeps the logit 0
    zref[:, n_classes - R :] = Xa @ theta_ref.reshape(R, W).T
    eref = np.exp(zref - zref.max(axis=1)[:, None])
    full = present.all(axis=1)
    out = np.empty((len(params), len(Xa), n_classes))
    near = np.flatnonzero(full)
    if near.size:
        chosen = np.ascontiguousarray(params[near], dtype=np.float64)
        result = out if near.size == len(params) else np.empty((near.size, *out.shape[1:]))
        _run(Xa, zref, eref, np.ascontiguousarray(theta_ref), chosen, result, R)
        if result is not out:
            out[near] = result
    if near.size < len(params):
        rest = np.flatnonzero(~full)
        out[rest] = predict_proba(params[rest], X, present[rest], n_classes=n_classes)
    return out


def _run(Xa, zref, eref, theta_ref, params, out, R) -> None:
    """The kernel on contiguous shares of the models, one per thread (the kernel releases the
    GIL; a model's bits do not depend on its share)."""
    kernel = near_kernels().predict_near
    slots = max(1, _BATCH_COLUMNS // R)
    k = len(params)
    threads = int(max(1, min(usable_threads(), -(-k // slots))))
    if threads == 1:
        kernel(Xa, zref, eref, theta_ref, params, slots, out)
        return
    bounds = np.linspace(0, k, threads + 1).astype(int)
    parts = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]

    def run(part: slice) -> None:
        kernel(Xa, zref, eref, theta_ref, params[part], slots, out[part])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, parts))  # list() re-raises a share's exception
