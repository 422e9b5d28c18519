"""Numerical kernels of the batched logistic regression: logits, probabilities, penalties, Hessians.

Every function treats each subset's arrays on their own (stacked operations of a fixed shape), so
a subset's numbers never depend on the other subsets of its batch.
"""

from __future__ import annotations

import numpy as np

from dataworth.learners.logreg.problem import _Problem, _Structure


def _logits(Xa: np.ndarray, theta: np.ndarray, rows: int) -> np.ndarray:
    """(k, n, R) logits: one (n, d+1) x (d+1, R) product per subset, never mixing subsets."""
    k = len(theta)
    return np.matmul(Xa, theta.reshape(k, rows, Xa.shape[-1]).transpose(0, 2, 1))


def _sigmoid_softplus(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sigmoid(z)`` and ``log(1 + exp(z))`` from one exponential, stable for any ``z``.

    (Cheaper than ``expit`` plus ``np.logaddexp``, which dominate the cost of an evaluation.)
    """
    e = np.exp(-np.abs(z))
    inv = 1.0 / (1.0 + e)
    proba = np.where(z >= 0.0, inv, e * inv)
    softplus = np.maximum(z, 0.0) + np.log1p(e)
    return proba, softplus


# Up to this many classes NumPy sums a short last axis in order, one class after the other (from
# eight on it sums pairwise), so :func:`_softmax` can add class by class and keep its bits.
_IN_ORDER_CLASSES = 7


def _softmax(
    z: np.ndarray, offset: np.ndarray | None = None, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax over the last axis and the log-sum-exp, with -inf logits giving exactly 0.

    ``offset`` (shape ``(k, classes)``, 0 or -inf) is added to the logits ``(k, m, classes)``
    first; the probabilities are written into ``out`` when it is given. The max, exponentials
    and sums are those of ``z.max``, ``np.exp`` and ``sum`` over the last axis, bit for bit,
    but taken on a class-major copy: NumPy reduces a last axis of
    a few entries at about 10 ns an entry (the costliest part of scoring 35,000 models on
    15,000 test rows), and whole-array operations per class cost a tenth of that.
    """
    classes = z.shape[-1]
    if not 2 <= classes <= _IN_ORDER_CLASSES:
        if offset is not None:
            z = z + offset[:, None, :]
        top = z.max(axis=-1, keepdims=True)
        e = np.exp(z - top)
        total = e.sum(axis=-1, keepdims=True)
        return np.divide(e, total, out=out), (np.log(total) + top)[..., 0]
    e = np.moveaxis(z, -1, 0).copy()  # (classes, k, m)
    if offset is not None:
        e += offset.T[:, :, None]
    top = e[0].copy()
    for c in range(1, classes):
        np.maximum(top, e[c], out=top)
    e -= top
    np.exp(e, out=e)
    total = e[0].copy()
    for c in range(1, classes):
        total += e[c]
    e /= total
    proba = np.empty(z.shape) if out is None else out
    for c in range(classes):
        proba[..., c] = e[c]
    return proba, np.log(total) + top


def _penalty(theta: np.ndarray, struct: _Structure, C: float) -> np.ndarray:
    w = theta * struct.penalised
    return 0.5 / C * np.matmul(w[:, None, :], w[:, :, None])[:, 0, 0]


def _penalty_grad(theta: np.ndarray, struct: _Structure, C: float) -> np.ndarray:
    return theta * struct.penalised / C


def _stacked_data_hessian(
    problem: _Problem, Xa: np.ndarray, proba: np.ndarray, mask_f: np.ndarray
) -> np.ndarray:
    """Data Hessians of subsets, all class blocks: one stacked product per subset (and block).

    ``Xa`` is (m, d + 1) shared by the subsets or (k, m, d + 1) their own rows; ``mask_f`` (k, m)
    weighs the rows in. Blocks of classes a subset does not optimise are pinned later by
    :func:`_finish_hessian`.
    """
    width, R = problem.width, problem.n_rows
    XaT = np.swapaxes(Xa, -1, -2)
    if R == 1:
        p = proba[..., 0]
        return np.matmul(XaT, Xa * (p * (1.0 - p) * mask_f)[:, :, None])
    k = len(mask_f)
    H = np.zeros((k, R * width, R * width))
    for c in range(R):
        pc = proba[..., c] * mask_f
        for c2 in range(c, R):
            weight = pc * ((c == c2) - proba[..., c2])
            block = np.matmul(XaT, Xa * weight[:, :, None])
            H[:, c * width : (c + 1) * width, c2 * width : (c2 + 1) * width] = block
            if c2 != c:
                H[:, c2 * width : (c2 + 1) * width, c * width : (c + 1) * width] = block.transpose(
                    0, 2, 1
                )
    return H


def _finish_hessian(problem: _Problem, H: np.ndarray, struct: _Structure, C: float) -> np.ndarray:
    """Add the penalty, pin frozen coordinates, and lift the intercepts' flat direction.

    Frozen coordinates get an identity row (their gradient is zero, so they never move). With
    three or more classes the objective is flat along "all present intercepts + t"; adding
    ``a u u^T`` (u the normalised all-ones vector on those intercepts) makes the Hessian
    invertible without changing steps: the gradient is orthogonal to ``u``, hence so is the step.
    """
    P = H.shape[1]
    width, rows = problem.width, problem.n_rows
    diag = np.arange(P)
    H[:, diag, diag] += struct.penalised / C
    keep = struct.free_params
    if (keep == 0.0).any():
        H *= keep[:, :, None] * keep[:, None, :]
        fj, fi = np.nonzero(keep == 0.0)
        H[fj, fi, fi] = 1.0
    if rows > 1:
        icpt = np.arange(rows) * width + width - 1
        n_present = struct.present.sum(axis=1)
        for j in np.flatnonzero(n_present >= 3):
            idx = icpt[struct.present[j]]
            scale = H[j].diagonal()[struct.free_params[j] > 0].mean() / len(idx)
            H[j, idx[:, None], idx[None, :]] += scale
    return H
