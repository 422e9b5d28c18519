"""Compiled kernel of :mod:`dataworth.methods.knn.shapley` (imported only when Numba is)."""

from __future__ import annotations

import numba
import numpy as np


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


# Radix sort digits: 11 bits, six passes over a 64-bit key (2,048 buckets stay in L1 cache).
_BITS = 11
_BUCKETS = 1 << _BITS
_PASSES = 6


@numba.njit(cache=True, nogil=True)
def squared_distances(q_sq, cross, x_sq, out):
    """``out = q_sq[:, None] - 2 * cross + x_sq[None, :]`` in one pass, the same arithmetic in the
    same order as that NumPy expression (so the same bits), without its temporaries."""
    B, N = cross.shape
    for b in range(B):
        qb = q_sq[b]
        for i in range(N):
            out[b, i] = qb - 2.0 * cross[b, i] + x_sq[i]
    return out


@numba.njit(cache=True, nogil=True)
def stable_order(sq, order):
    """Each row's positions sorted by ``sq``, ties by position: ``np.argsort(kind="stable")``.

    A least-significant-digit radix sort of the floats' bits, mapped to unsigned integers that
    order as the floats do (``-0.0`` first made ``+0.0``, which compares equal to it). Radix
    sorting is stable, so tied distances keep their positions' order with no second pass, and
    it takes six linear passes per row instead of a comparison sort; a pass whose digit is the
    same for every key (the exponent's, typically) is skipped.
    """
    B, N = sq.shape
    sign = np.uint64(1) << np.uint64(63)
    mask = np.uint64(_BUCKETS - 1)
    tmp = np.empty(N)
    keys = np.empty(N, dtype=np.uint64)
    keys2 = np.empty(N, dtype=np.uint64)
    idx = np.empty(N, dtype=np.int64)
    idx2 = np.empty(N, dtype=np.int64)
    hist = np.zeros((_PASSES, _BUCKETS), dtype=np.int64)
    for b in range(B):
        for i in range(N):
            tmp[i] = sq[b, i] + 0.0
        bits = tmp.view(np.uint64)
        hist[:, :] = 0
        for i in range(N):
            u = bits[i]
            k = ~u if u & sign else u | sign
            keys[i] = k
            idx[i] = i
            for p in range(_PASSES):
                hist[p, np.int64((k >> np.uint64(p * _BITS)) & mask)] += 1
        src_k, src_i, dst_k, dst_i = keys, idx, keys2, idx2
        for p in range(_PASSES):
            shift = np.uint64(p * _BITS)
            h = hist[p]
            if h[np.int64((src_k[0] >> shift) & mask)] == N:
                continue  # every key has this digit: the pass would not move anything
            total = 0
            for d in range(_BUCKETS):
                c = h[d]
                h[d] = total
                total += c
            for i in range(N):
                k = src_k[i]
                d = np.int64((k >> shift) & mask)
                pos = h[d]
                h[d] = pos + 1
                dst_k[pos] = k
                dst_i[pos] = src_i[i]
            src_k, src_i, dst_k, dst_i = dst_k, dst_i, src_k, src_i
        for i in range(N):
            order[b, i] = src_i[i]
    return order
