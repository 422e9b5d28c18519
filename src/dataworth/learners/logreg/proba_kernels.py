"""Compiled class probabilities of many multinomial models (imported only when Numba is).

Scoring a TMC permutation predicts the test rows once per prefix: ``K`` models of ``R`` classes
on ``m`` rows. In NumPy the stacked ``(K, m, d + 1) x (K, d + 1, R)`` product takes a slow loop
(the models' matrices are not laid out for BLAS) and the softmax makes several ``(K, m, R)``
temporaries; on a 14,000-row, 5-class table this was four fifths of a permutation's time, four
times the chain solver's. Here each model's logits accumulate along contiguous memory (the test
rows transposed), one class at a time, and the softmax uses the vectorisable exponential of
:mod:`dataworth.learners.logreg.chains_math`; nothing larger than one model's ``R x m`` logits is
allocated. A model's probabilities depend on its own parameters alone (fixed loops, no BLAS), so
never on the batch.
"""

from __future__ import annotations

import numpy as np

from dataworth.learners.logreg.chains_math import fexp, njit


@njit
def softmax_proba(XT, params, present, out):
    """Probabilities of each model into ``out`` (K, m, R); exactly 0 for an absent class.

    Parameters
    ----------
    XT : ndarray of shape (d + 1, m)
        The rows to predict, with the intercept's column of ones, transposed (C-contiguous).
    params : ndarray of shape (K, R * (d + 1))
    present : ndarray of bool, shape (K, R)
        Classes each model knows; at least one per model.
    out : ndarray of shape (K, m, R)
    """
    K, R = present.shape
    W, m = XT.shape
    z = np.empty((R, m))
    top = np.empty(m)
    acc = np.empty(m)
    for k in range(K):
        for c in range(R):
            if not present[k, c]:
                continue
            for i in range(m):
                z[c, i] = 0.0
            for j in range(W):
                tj = params[k, c * W + j]
                for i in range(m):
                    z[c, i] += XT[j, i] * tj
        for i in range(m):
            top[i] = -np.inf
            acc[i] = 0.0
        for c in range(R):
            if present[k, c]:
                for i in range(m):
                    top[i] = max(top[i], z[c, i])
        for c in range(R):
            if present[k, c]:
                for i in range(m):
                    e = fexp(z[c, i] - top[i])
                    z[c, i] = e
                    acc[i] += e
        for c in range(R):
            if present[k, c]:
                for i in range(m):
                    out[k, i, c] = z[c, i] / acc[i]
            else:
                for i in range(m):
                    out[k, i, c] = 0.0
