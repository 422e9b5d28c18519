"""Compiled kernels of :mod:`dataworth.learners.logreg_one_out` (imported only when Numba is).

Module-level functions, so that Numba's on-disk cache (``cache=True``) serves every later process
instead of compiling again.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# Line search constants, as in the batched solver.
_ARMIJO = 1e-4
_MIN_STEP = 2.0**-40
_OBJECTIVE_NOISE = 1e-12
# A reused Hessian is kept while each full step shrinks the gradient by at least this factor.
_CHORD_CONTRACTION = 0.3
# Below this |dz| the exponential's Taylor series to degree 10 is exact to double precision.
_SMALL_DZ = 0.125
_INV2, _INV3, _INV4, _INV5, _INV6, _INV7, _INV8, _INV9, _INV10 = (1.0 / k for k in range(2, 11))
# Below this |u| the series of log(1 + u) to degree 8 is (absolute error under 1e-17).
_SMALL_U = 2.0**-6

# Outcome of one subset: converged, out of steps, or handed to the general solver.
CONVERGED = 0
MAX_ITER = 1
HAND_OVER = 2

njit = numba.njit(cache=True, nogil=True)


@njit
def exp_small(dz):
    """``exp(dz)`` for ``|dz| < 1/8`` by its Taylor series to degree 10 (the first omitted
    term is under 3e-18 relative, below the rounding of ``exp`` itself)."""
    acc = 1.0 + dz * _INV10
    acc = 1.0 + dz * _INV9 * acc
    acc = 1.0 + dz * _INV8 * acc
    acc = 1.0 + dz * _INV7 * acc
    acc = 1.0 + dz * _INV6 * acc
    acc = 1.0 + dz * _INV5 * acc
    acc = 1.0 + dz * _INV4 * acc
    acc = 1.0 + dz * _INV3 * acc
    acc = 1.0 + dz * _INV2 * acc
    return 1.0 + dz * acc


@njit
def exp_shift(dz):
    """``exp(dz)``; by its series when ``dz`` is small (as a one-out step makes it)."""
    if abs(dz) < _SMALL_DZ:
        return exp_small(dz)
    return math.exp(dz)


@njit
def row_terms(label, zref, eref, mref, dz, K, q):
    """One row's loss at logits ``zref + dz``; ``q`` receives its residuals ``p - onehot``.

    ``exp(z_c - mref) = eref_c * exp(dz_c)``, so a step that moves the logits a little needs no
    call to ``exp`` at all.
    """
    s = 0.0
    for c in range(K):
        t = eref[c] * exp_shift(dz[c])
        q[c] = t
        s += t
    for c in range(K):
        q[c] = q[c] / s
    q[label] -= 1.0
    return math.log(s) + mref - zref[label] - dz[label]


@njit
def reference_terms(Xa, y, zref, eref, mref, K, loss, resid):
    """Every row's loss and residuals at the reference (written into ``loss`` and ``resid``)."""
    dz = np.zeros(K)
    q = np.empty(K)
    for i in range(Xa.shape[0]):
        loss[i] = row_terms(y[i], zref[i], eref[i], mref[i], dz, K, q)
        for c in range(K):
            resid[i, c] = q[c]


@njit
def log1p_near_zero(u):
    """``log(1 + u)``: its series to degree 8 for ``|u| < 1/64``, else ``math.log1p``."""
    if abs(u) >= _SMALL_U:
        return math.log1p(u)
    acc = 1.0 / 7.0 - u / 8.0
    acc = 1.0 / 6.0 - u * acc
    acc = 0.2 - u * acc
    acc = 0.25 - u * acc
    acc = 1.0 / 3.0 - u * acc
    acc = 0.5 - u * acc
    return u * (1.0 - u * acc)


@njit
def objective_slow(Xa, y, zref, eref, mref, theta, pen, e, K, off, grad, DZ, R):
    """:func:`objective` for logits that moved far from the reference (``exp`` per entry)."""
    n = Xa.shape[0]
    q = np.empty(K)
    total = 0.0
    for i in range(n):
        if i == e:
            continue
        total += row_terms(y[i], zref[i], eref[i], mref[i], DZ[i], K, q)
        for c in range(K):
            R[c, i] = q[c]
    for c in range(K):
        R[c, e] = 0.0
    return total + finish_gradient(R, Xa, theta, pen, off, grad)


@njit
def finish_gradient(R, Xa, theta, pen, off, grad):
    """``grad = R^T Xa`` (parameter rows only) plus the penalty's; returns the penalty."""
    K, W = R.shape[0], Xa.shape[1]
    G = np.dot(R[off:], Xa)
    penalty = 0.0
    for r in range(K - off):
        for j in range(W):
            a = r * W + j
            grad[a] = G[r, j] + pen[a] * theta[a]
            penalty += 0.5 * pen[a] * theta[a] * theta[a]
    return penalty


@njit
def objective(Xa, XaT, y, ref_arrays, theta_ref, theta, pen, e, K, off, grad, work):
    """Sum-form objective of all rows but ``e`` at ``theta`` and its gradient (into ``grad``).

    Every subset's arithmetic has the same fixed shapes and order (the logit changes
    ``dz_c = Xa dtheta_c`` accumulated feature by feature, the gradient one ``(K, n) x (n, W)``
    product), so it does not depend on the batch. Near the reference no ``exp`` or ``log`` is
    called: ``exp(dz)`` and ``log(s / s_ref)`` are short series, in loops the compiler vectorises.
    Parameter row ``r`` holds class ``r + off``'s logit; with ``off = 1`` (binary) class 0's logit
    is fixed at 0.
    """
    zref, eref, mref, erefT, inv_sref, base = ref_arrays
    n, W = Xa.shape
    DZ, T, s, lterm = work
    for c in range(K):
        for i in range(n):
            DZ[c, i] = 0.0
    for j in range(W):
        for c in range(off, K):
            a = (c - off) * W + j
            w = theta[a] - theta_ref[a]
            for i in range(n):
                DZ[c, i] += w * XaT[j, i]
    far = 0
    for c in range(K):
        for i in range(n):
            dz = DZ[c, i]
            far += abs(dz) >= _SMALL_DZ
            T[c, i] = erefT[c, i] * exp_small(dz)
    if far:
        return objective_slow(
            Xa, y, zref, eref, mref, theta, pen, e, K, off, grad, np.ascontiguousarray(DZ.T), T
        )
    for i in range(n):
        s[i] = T[0, i]
    for c in range(1, K):
        for i in range(n):
            s[i] += T[c, i]
    for i in range(n):
        lterm[i] = log1p_near_zero(s[i] * inv_sref[i] - 1.0)
        s[i] = 1.0 / s[i]
    for c in range(K):
        for i in range(n):
            T[c, i] *= s[i]
    total = 0.0
    for i in range(n):
        if i != e:
            total += base[i] + lterm[i] - DZ[y[i], i]
        T[y[i], i] -= 1.0
    for c in range(K):
        T[c, e] = 0.0
    return total + finish_gradient(T, Xa, theta, pen, off, grad)


@njit
def solve_one_out(
    Xa,
    y,
    zref,
    eref,
    mref,
    theta_ref,
    loss,
    resid,
    loss_sum,
    grad_sum,
    proba,
    hinv,
    pen,
    excluded,
    tol,
    max_iter,
    params,
    n_iter,
    status,
):
    """Fit "all rows but ``excluded[s]``" for each ``s`` (see ``logreg_one_out``).

    Results go to ``params``, ``n_iter`` and ``status`` (``CONVERGED``, ``MAX_ITER`` or
    ``HAND_OVER``, in which case ``params`` holds the last accepted point). ``theta_ref`` has
    one row of ``W`` parameters per class, or one row only for a binary task (class 1's logit;
    class 0's is fixed at 0).
    """
    n, W = Xa.shape
    K = proba.shape[1]
    P = theta_ref.shape[0]
    R = P // W  # parameter rows: K, or K - 1 = 1 for a binary task
    off = K - R
    size = n - 1.0
    theta = np.empty(P)
    trial = np.empty(P)
    grad = np.empty(P)
    trial_grad = np.empty(P)
    direction = np.empty(P)
    XaT = np.ascontiguousarray(Xa.T)
    erefT = np.ascontiguousarray(eref.T)
    inv_sref = np.empty(n)
    for i in range(n):
        acc = 0.0
        for c in range(K):
            acc += eref[i, c]
        inv_sref[i] = 1.0 / acc
    ref_arrays = (zref, eref, mref, erefT, inv_sref, loss)
    work = (np.empty((K, n)), np.empty((K, n)), np.empty(n), np.empty(n))
    A = np.empty((P, R))
    eye = np.eye(R)
    for s in range(excluded.shape[0]):
        e = excluded[s]
        x = Xa[e]
        # Start: the reference's objective and gradient without row e (no pass over the rows).
        F = loss_sum - loss[e]
        for a in range(P):
            theta[a] = theta_ref[a]
            F += 0.5 * pen[a] * theta[a] * theta[a]
        for r in range(R):
            for j in range(W):
                a = r * W + j
                grad[a] = grad_sum[a] - resid[e, r + off] * x[j] + pen[a] * theta[a]
        # Woodbury: removing row e removes B M B^T from the Hessian, B = I_R (x) x (P x R),
        # M = diag(p) - p p^T over the parameter rows' classes (p (1 - p) for a binary task);
        # H_e^{-1} = H^{-1} + A M (I - S M)^{-1} A^T with A = H^{-1} B, S = B^T A (M may be
        # singular; this form never inverts it).
        for a in range(P):
            for r in range(R):
                acc = 0.0
                for j in range(W):
                    acc += hinv[a, r * W + j] * x[j]
                A[a, r] = acc
        M = np.empty((R, R))
        for r in range(R):
            for r2 in range(R):
                pc, pc2 = proba[e, r + off], proba[e, r2 + off]
                M[r, r2] = (pc if r == r2 else 0.0) - pc * pc2
        S = np.empty((R, R))
        for r in range(R):
            for r2 in range(R):
                acc = 0.0
                for j in range(W):
                    acc += x[j] * A[r * W + j, r2]
                S[r, r2] = acc
        core = M @ np.linalg.inv(eye - S @ M)
        steps = 0
        state = MAX_ITER
        while True:
            gmax = 0.0
            for a in range(P):
                gmax = max(gmax, abs(grad[a]))
            # At least one step: the reference may already meet the tolerance, and stopping
            # there would report an influence of exactly zero instead of its tiny true value.
            if gmax / size <= tol and (steps > 0 or gmax == 0.0):
                state = CONVERGED
                break
            if steps >= max_iter:
                break
            v = A.T @ grad
            w = core @ v
            slope = 0.0
            for a in range(P):
                acc = 0.0
                for b in range(P):
                    acc += hinv[a, b] * grad[b]
                for r in range(R):
                    acc += A[a, r] * w[r]
                direction[a] = -acc
                slope += grad[a] * direction[a]
            if not slope < 0.0:
                state = HAND_OVER
                break
            t = 1.0
            accepted = False
            while t >= _MIN_STEP:
                for a in range(P):
                    trial[a] = theta[a] + t * direction[a]
                Ft = objective(
                    Xa, XaT, y, ref_arrays, theta_ref, trial, pen, e, K, off, trial_grad, work
                )
                g_new = 0.0
                for a in range(P):
                    g_new = max(g_new, abs(trial_grad[a]))
                armijo = Ft <= F + _ARMIJO * t * slope
                quiet = (Ft - F <= _OBJECTIVE_NOISE * (abs(F) + 1.0)) and g_new < gmax
                if (armijo or quiet) and math.isfinite(Ft):
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                state = HAND_OVER
                break
            theta[:] = trial
            grad[:] = trial_grad
            F = Ft
            steps += 1
            # The Hessian of the reference point is kept while full steps contract the gradient
            # fast; otherwise the general solver (fresh Hessians) finishes this subset.
            if g_new / size > tol and not (t == 1.0 and g_new <= _CHORD_CONTRACTION * gmax):
                state = HAND_OVER
                break
        params[s] = theta
        n_iter[s] = steps
        status[s] = state
