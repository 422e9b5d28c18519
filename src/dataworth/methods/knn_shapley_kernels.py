"""Compiled kernel of :mod:`dataworth.methods.knn_shapley` (imported only when Numba is)."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def rank_values(order, y_train, y_rows, coef, out):
    """The closed-form recursion for each test row, scattered back to training positions.

    ``out[b, order[b, i]]`` receives ``s(a_i)``. The same arithmetic, in the same order, as
    NumPy's reversed cumulative sum in ``_block_values``, so the values are bitwise equal; one
    pass instead of a gather, a cumulative sum and a scatter over ``(B, N)`` arrays.
    """
    B, N = order.shape
    for b in range(B):
        label = y_rows[b]
        m_next = 1.0 if y_train[order[b, N - 1]] == label else 0.0
        last = m_next / N
        out[b, order[b, N - 1]] = last
        acc = 0.0
        for i in range(N - 2, -1, -1):
            m = 1.0 if y_train[order[b, i]] == label else 0.0
            acc += (m - m_next) * coef[i]
            out[b, order[b, i]] = acc + last
            m_next = m
    return out
