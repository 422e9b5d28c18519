"""Compiled kernel of :mod:`dataworth.learners.logreg.near` (imported only when Numba is).

A module-level function, so that Numba's on-disk cache (``cache=True``) serves every later
process instead of compiling again.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from dataworth.learners.logreg.one_out_kernels import _SMALL_DZ, exp_small

njit = numba.njit(cache=True, nogil=True)


@njit
def predict_near(Xt, zref, eref, theta_ref, params, slots, out):
    """Class probabilities of the models ``params`` on the rows ``Xt``, from a nearby reference.

    ``Xt`` is ``(m, W)`` (features and a column of ones), ``params`` ``(k, P)`` with ``R = P / W``
    parameter rows (one for a binary task, whose class 0 keeps the logit 0), ``zref`` and
    ``eref`` the rows' logits at ``theta_ref`` and ``exp(zref - max)``; ``out`` ``(k, m, K)``
    receives the probabilities. As in the one-out kernels, ``exp(z_c - max_ref)`` is
    ``eref_c * exp(dz_c)`` with ``dz = x . (theta - theta_ref)``, a short series when
    ``|dz|`` is small; a model with any ``|dz_c|`` beyond it on a row gets that row's softmax
    from its logits directly. Up to ``slots`` models are stepped side by side (loops over them
    vectorise), and each model's arithmetic is its own and in a fixed order (features in order,
    zero entries skipped: adding +-0 to a sum that started at +0 changes no bit), so its bits
    depend neither on its batch nor on its place there.
    """
    m, W = Xt.shape
    k, P = params.shape
    K = eref.shape[1]
    R = P // W
    off = K - R
    B = max(1, min(slots, k))
    C = B * R
    D = np.empty((W, C))
    dz = np.empty(C)
    E = np.empty(C)
    s = np.empty(B)
    z = np.empty(K)
    for b0 in range(0, k, B):
        mb = min(B, k - b0)
        Cb = mb * R
        for j in range(W):
            for r in range(R):
                a = r * W + j
                for q in range(mb):
                    D[j, r * mb + q] = params[b0 + q, a] - theta_ref[a]
        for i in range(m):
            for col in range(Cb):
                dz[col] = 0.0
            for j in range(W):
                xv = Xt[i, j]
                if xv != 0.0:
                    for col in range(Cb):
                        dz[col] += D[j, col] * xv
            far = 0
            for col in range(Cb):
                far += abs(dz[col]) >= _SMALL_DZ
                E[col] = exp_small(dz[col])
            e0 = eref[i, 0]
            if off == 1:
                for q in range(mb):
                    s[q] = e0
            else:
                for q in range(mb):
                    E[q] = e0 * E[q]
                    s[q] = E[q]
            for r in range(1 - off, R):
                e = eref[i, r + off]
                for q in range(mb):
                    t = e * E[r * mb + q]
                    E[r * mb + q] = t
                    s[q] += t
            for q in range(mb):
                if off == 1:
                    out[b0 + q, i, 0] = e0 / s[q]
                for r in range(R):
                    out[b0 + q, i, r + off] = E[r * mb + q] / s[q]
            if far:
                for q in range(mb):
                    moved = False
                    for r in range(R):
                        moved = moved or abs(dz[r * mb + q]) >= _SMALL_DZ
                    if moved:
                        # Far from the reference: the softmax of the logits themselves.
                        top = -math.inf
                        for c in range(K):
                            z[c] = zref[i, c] + (dz[(c - off) * mb + q] if c >= off else 0.0)
                            top = max(top, z[c])
                        total = 0.0
                        for c in range(K):
                            z[c] = math.exp(z[c] - top)
                            total += z[c]
                        for c in range(K):
                            out[b0 + q, i, c] = z[c] / total
