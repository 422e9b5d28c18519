"""Leave-one-out fits of multinomial logistic regression, started from the full-data solution.

Leaving one row out of ``n`` moves the solution by ``O(1/n)``. Each one-out subset therefore starts
at the full-data solution ``theta`` (where its gradient is the full gradient minus the left-out
row's, with no pass over the data), and takes Newton-type steps with the inverse Hessian of "all
rows but ``e``" at ``theta``. That inverse comes from the full-data inverse by the Woodbury
identity: row ``e`` contributes ``B M B^T`` to the Hessian, with ``B = I_K (x) x_e`` (``P x K``)
and ``M = diag(p_e) - p_e p_e^T``, so::

    H_e^{-1} = H^{-1} + A M (I - S M)^{-1} A^T,   A = H^{-1} B,   S = B^T A,

which costs ``O(P^2 K)`` per subset and never inverts the singular ``M``. The same matrix is
reused for every step of the subset (a chord iteration); a subset whose gradient does not shrink
fast under it is handed to the general solver, which recomputes Hessians (on small, weakly
regularised tasks, where one row moves the solution far). Every subset stops at the gradient
tolerance of the batched solver, after at least one step.

What makes a step cheap is that the logits move little: with ``z = z_ref + x . dtheta``, each
``exp(z_c - m_ref)`` is the reference's value times ``exp(x . dtheta_c)``, a short Taylor series
when ``|x . dtheta_c|`` is tiny (exact to double precision) and a call to ``exp`` otherwise. A
step then costs ``O(n K d)`` multiply-adds per subset, in compiled code (Numba, the ``fast``
extra). Subsets are stepped side by side: every trial point pending in a batch of subsets is
evaluated in one pass over the rows, so each row is read once per batch rather than once per
subset (at 50,000 rows the feature matrix no longer fits in cache, and streaming it per subset
made the pass memory-bound), and the work per row is loops over the batch that the compiler
vectorises; a row's zero entries (one-hot columns) are skipped, which changes no bit. The first
trial point, a full step from the reference, is the one-step Newton (influence) approximation;
on large tasks the second is converged, so a subset costs about two passes, the last one the
gradient that proves it. Batches run on several threads. Each subset's arithmetic is its own
and in a fixed order, so its bits depend neither on the batch it shares, nor on its place there,
nor on the number of threads.

The intercepts of a softmax model are defined up to a common constant; the full-data Hessian is
made invertible by the batched solver's lift along that direction. Both row ``e``'s curvature
and every gradient are orthogonal to it, so the lift changes no step.
"""

from __future__ import annotations

import functools
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from dataworth.machine import usable_threads

__all__ = ["OneOutReference", "one_out_kernels", "prepare_one_out", "solve_one_out"]

# Columns (subsets times parameter rows) evaluated together per pass over the rows: enough to
# amortise reading each row, few enough that the batch's work arrays stay in the core's cache.
_BATCH_COLUMNS = 256


@functools.cache
def one_out_kernels():
    """The compiled kernels module, or ``None`` when Numba is not installed."""
    try:
        # The module itself, not through the package: importing the package from here would
        # close an import cycle (the package imports the learner, which imports this module).
        import dataworth.learners.logreg.one_out_kernels as kernels
    except ImportError:  # Numba is not installed
        return None
    return kernels


@dataclass(frozen=True)
class OneOutReference:
    """What every one-out subset of a multinomial task reuses from the full-data solution."""

    theta: np.ndarray  # (P,) full-data solution, K rows of [w, b]
    zref: np.ndarray  # (n, K) logits at theta
    eref: np.ndarray  # (n, K) exp(zref - mref)
    mref: np.ndarray  # (n,) largest logit of each row
    inv_sref: np.ndarray  # (n,) 1 / sum_c eref[:, c]
    loss: np.ndarray  # (n,) row losses at theta
    resid: np.ndarray  # (n, K) row residuals p - onehot at theta
    loss_sum: float
    grad_sum: np.ndarray  # (P,) data part of the gradient at theta
    proba: np.ndarray  # (n, K)
    hinv: np.ndarray  # (P, P) inverse of the full objective's (lifted) Hessian at theta
    pen: np.ndarray  # (P,) 1/C on coefficients, 0 on intercepts


def prepare_one_out(
    Xa: np.ndarray, y: np.ndarray, theta: np.ndarray, hinv: np.ndarray, pen: np.ndarray, K: int
) -> OneOutReference:
    """Reference quantities, computed once per task with the kernels' own row arithmetic.

    Parameters
    ----------
    Xa : ndarray of shape (n, d + 1)
        Features with a trailing column of ones.
    y : ndarray of int, shape (n,)
    theta : ndarray of shape (P,)
        ``K`` rows of ``d + 1`` parameters, or one row for a binary task (``K = 2``).
    hinv : ndarray of shape (P, P)
    pen : ndarray of shape (P,)
    K : int
        Number of classes, all present.

    Returns
    -------
    OneOutReference
    """
    kernels = one_out_kernels()
    Xa = np.ascontiguousarray(Xa, dtype=np.float64)
    W = Xa.shape[1]
    rows = len(theta) // W
    zref = np.zeros((len(Xa), K))  # a binary task's class 0 keeps the logit 0
    zref[:, K - rows :] = Xa @ theta.reshape(rows, W).T
    mref = zref.max(axis=1)
    eref = np.exp(zref - mref[:, None])
    loss = np.empty(len(Xa))
    resid = np.empty((len(Xa), K))
    kernels.reference_terms(Xa, y, zref, eref, mref, K, loss, resid)
    sref = eref[:, 0].copy()
    for c in range(1, K):  # classes in order, as the kernels sum them
        sref += eref[:, c]
    grad_sum = np.ascontiguousarray((Xa.T @ resid[:, K - rows :]).T).reshape(-1)
    proba = resid.copy()
    proba[np.arange(len(y)), y] += 1.0
    return OneOutReference(
        theta=np.ascontiguousarray(theta, dtype=np.float64),
        zref=zref,
        eref=eref,
        mref=mref,
        inv_sref=1.0 / sref,
        loss=loss,
        resid=resid,
        loss_sum=float(loss.sum()),
        grad_sum=grad_sum,
        proba=proba,
        hinv=np.ascontiguousarray(hinv),
        pen=np.ascontiguousarray(pen, dtype=np.float64),
    )


def solve_one_out(
    ref: OneOutReference,
    Xa: np.ndarray,
    y: np.ndarray,
    excluded: np.ndarray,
    tol: float,
    max_iter: int,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit "all rows but ``e``" for each ``e`` in ``excluded``.

    Parameters
    ----------
    ref : OneOutReference
    Xa : ndarray of shape (n, d + 1)
    y : ndarray of int, shape (n,)
    excluded : ndarray of int, shape (k,)
        The row each subset leaves out.
    tol : float
        Gradient tolerance (largest entry of the gradient over ``n - 1``).
    max_iter : int
    n_threads : int, optional
        Threads, each solving a contiguous share of ``excluded``; by default as many as this
        process may use (and Numba allows). The results do not depend on it.

    Returns
    -------
    params : ndarray of shape (k, P)
    n_iter : ndarray of int, shape (k,)
    status : ndarray of int, shape (k,)
        0 converged, 1 out of steps, 2 handed over (``params`` then holds the last point
        accepted, a warm start for the general solver).
    """
    kernels = one_out_kernels()
    k, P = len(excluded), len(ref.theta)
    params = np.empty((k, P))
    n_iter = np.zeros(k, dtype=np.int64)
    status = np.zeros(k, dtype=np.int64)
    Xa = np.ascontiguousarray(Xa, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.int64)
    excluded = np.ascontiguousarray(excluded, dtype=np.int64)
    rows = P // Xa.shape[1]
    slots = max(1, _BATCH_COLUMNS // rows)

    def solve(part: slice) -> None:
        kernels.solve_one_out(
            Xa,
            y,
            ref.eref,
            ref.inv_sref,
            ref.theta,
            ref.loss,
            ref.resid,
            ref.loss_sum,
            ref.grad_sum,
            ref.proba,
            ref.hinv,
            ref.pen,
            excluded[part],
            float(tol),
            int(max_iter),
            slots,
            params[part],
            n_iter[part],
            status[part],
        )

    threads = _threads(n_threads, k, slots)
    if threads == 1:
        solve(slice(0, k))
    else:
        bounds = np.linspace(0, k, threads + 1).astype(int)
        parts = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(solve, parts))  # the kernels release the GIL; list() re-raises
    return params, n_iter, status


def _threads(n_threads: int | None, k: int, slots: int) -> int:
    """Threads for ``k`` subsets: at most one per half batch, so each keeps its batch busy; by
    default as many as Numba allows and this process (or its share as an engine worker) may use."""
    if n_threads is None:
        import numba

        n_threads = min(numba.get_num_threads(), usable_threads())
    return int(max(1, min(n_threads, -(-k // max(1, slots // 2)))))
