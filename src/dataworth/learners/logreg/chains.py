"""Chains of nested logistic regression fits, each warm-started from the one before (Numba).

A *chain* is a sequence of training subsets ``S_0 ⊆ S_1 ⊆ ...``, such as the prefixes of one
permutation that Truncated Monte Carlo Shapley walks through. Adding a row or a few rows moves the
solution a little, so each member starts from its predecessor's solution and from its inverse
Hessian updated by Sherman-Morrison for the new rows (the exact inverse Hessian of the larger
subset at the old solution when the old inverse was exact), then takes BFGS steps: a rank-two
update of the inverse per step, ``O(|S| d + d^2)`` work, no factorisation. A fresh inverse Hessian
is computed only at the chain's first member and when a step fails its line search. The new
member's objective and gradient at the old solution are its predecessor's extended by the new rows
(bitwise a full pass), so each step costs one pass over the member's rows. Every member
is converged to the same gradient tolerance as the batched solver, so its utility equals an
independent fit's to that tolerance.

The loop over a chain is sequential by nature, which is why it is compiled: in NumPy each step
would be a dozen array calls on 31-number vectors. Numba is an optional dependency
(``pip install "dataworth[fast]"``); without it, :func:`chain_kernel` returns ``None`` and the
learner fits chain members independently, as any other subsets.

One compiled solver serves binary and multiclass (softmax) chains, which differ only in the
shape of their parameters (:mod:`dataworth.learners.logreg.chains_kernels`, with the softmax
model's pieces in :mod:`~dataworth.learners.logreg.chains_softmax`); a multiclass chain is passed
to it once per run of members with the same classes present. The arithmetic of one chain never
depends on other chains or on how chains are batched.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

__all__ = ["chain_kernel", "class_runs", "join_order"]


def join_order(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a chain in the order they join it, and the size of each member.

    Parameters
    ----------
    masks : ndarray of bool, shape (L, n)
        The chain's members, each a superset of the one before.

    Returns
    -------
    order : ndarray of int
        The rows of the last member: those of the first member (ascending), then those each later
        member adds (ascending within a member). Member ``r`` is ``order[:sizes[r]]``.
    sizes : ndarray of int, shape (L,)
    """
    last = masks[-1]
    rows = np.flatnonzero(last)
    joined = np.argmax(masks[:, rows], axis=0)  # first member that contains each row
    order = rows[np.lexsort((rows, joined))]
    return order, masks.sum(axis=1).astype(np.int64)


def class_runs(present: np.ndarray) -> list[tuple[int, int]]:
    """Runs ``[start, stop)`` of consecutive chain members with the same classes present.

    Parameters
    ----------
    present : ndarray of bool, shape (L, n_classes)
        Classes present in each member of a chain (members are nested, so classes only join).

    Returns
    -------
    list of (start, stop)
    """
    change = np.flatnonzero((present[1:] != present[:-1]).any(axis=1)) + 1
    bounds = [0, *change.tolist(), len(present)]
    return list(itertools.pairwise(bounds))


@functools.cache
def chain_kernel():
    """The compiled chain solver of binary and multiclass chains, or ``None`` without Numba.

    Compiled on first use and cached on disk by Numba (``cache=True``), so later processes load it
    instead of compiling again.
    """
    try:
        from dataworth.learners.logreg.chains_kernels import fit_chain
    except ImportError:  # Numba is not installed
        return None
    return fit_chain


@functools.cache
def proba_kernel():
    """The compiled multiclass probabilities, or ``None`` when Numba is not installed (loaded
    here beside the chain solvers, whose exponential they share)."""
    try:
        from dataworth.learners.logreg.proba_kernels import softmax_proba
    except ImportError:  # Numba is not installed
        return None
    return softmax_proba
