"""Compiled kernels of :mod:`dataworth.learners.logreg.one_out` (imported only when Numba is).

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
def log1p_series(u):
    """The series of :func:`log1p_near_zero` alone (branch-free, so loops over it vectorise);
    exact only for ``|u| < 1/64``."""
    acc = 1.0 / 7.0 - u / 8.0
    acc = 1.0 / 6.0 - u * acc
    acc = 0.2 - u * acc
    acc = 0.25 - u * acc
    acc = 1.0 / 3.0 - u * acc
    acc = 0.5 - u * acc
    return u * (1.0 - u * acc)


@njit
def batch_objective(Xa, y, eref, base, inv_sref, D, exc, m, R, off, tot, G, work):
    """The data part of the objective and gradient of ``m`` one-out subsets in one pass.

    Column ``col = r * m + b`` stands for parameter row ``r`` (class ``r + off``) of subset
    ``b``: ``D[:, col]`` is that row's change from the reference parameters, ``G[:, col]``
    receives its gradient and ``tot[b]`` the loss summed over every row but ``exc[b]``.

    One pass over the rows serves every subset of the batch, and each row's work is loops over
    the ``R m`` columns that the compiler vectorises: the logit changes (a row times ``D``),
    ``exp`` of them, the normalisers and residuals, and the gradient's rank-one update. Each
    column's arithmetic is its own and always in the same order (features in order for the
    logits, rows in order for the sums), so a subset's bits do not depend on its batch, its
    column or the thread that runs it. Near the reference no ``exp`` or ``log`` is called:
    ``exp(dz)`` and ``log(s / s_ref)`` are short series, exact to double precision there; the
    few entries that moved far are recomputed with ``exp`` and ``log``.
    """
    n, W = Xa.shape
    C = R * m
    Rs = work[2]  # (4, C): the residuals of up to four rows
    for j in range(W):
        for col in range(C):
            G[j, col] = 0.0
    for b in range(m):
        tot[b] = 0.0
    for i0 in range(0, n, 4):
        rows = min(4, n - i0)
        for t in range(rows):
            row_residuals(Xa, y, eref, base, inv_sref, D, exc, m, R, off, tot, i0 + t, Rs[t], work)
        # G += residuals x row, four rows per sweep over G (rows still added in order, so the
        # same bits as row by row, with a quarter of the loads and stores of G). A zero entry
        # of a row is skipped: its terms are +-0, and adding +-0 to a sum that started at +0
        # changes no bit (the sum is never -0), so one-hot columns cost only where they are 1.
        if rows == 4:
            for j in range(W):
                x0, x1, x2, x3 = Xa[i0, j], Xa[i0 + 1, j], Xa[i0 + 2, j], Xa[i0 + 3, j]
                if x0 != 0.0 and x1 != 0.0 and x2 != 0.0 and x3 != 0.0:
                    R0, R1, R2, R3 = Rs[0], Rs[1], Rs[2], Rs[3]
                    for col in range(C):
                        g = G[j, col]
                        g += R0[col] * x0
                        g += R1[col] * x1
                        g += R2[col] * x2
                        g += R3[col] * x3
                        G[j, col] = g
                else:
                    for t in range(4):
                        xv = Xa[i0 + t, j]
                        if xv != 0.0:
                            Rt = Rs[t]
                            for col in range(C):
                                G[j, col] += Rt[col] * xv
        else:
            for t in range(rows):
                for j in range(W):
                    xv = Xa[i0 + t, j]
                    if xv != 0.0:
                        Rt = Rs[t]
                        for col in range(C):
                            G[j, col] += Rt[col] * xv


@njit
def row_residuals(Xa, y, eref, base, inv_sref, D, exc, m, R, off, tot, i, Rrow, work):
    """Row ``i``'s logit changes, loss terms (added to ``tot``) and residuals (into ``Rrow``,
    zero for the subsets that leave the row out) for every column of the batch."""
    W = Xa.shape[1]
    C = R * m
    dz, E, _, s, lt = work
    for col in range(C):
        dz[col] = 0.0
    for j in range(W):
        xv = Xa[i, j]
        if xv != 0.0:  # a zero entry adds +-0 to a sum that is never -0: no bit changes
            for col in range(C):
                dz[col] += D[j, col] * xv
    far = 0
    for col in range(C):
        d = dz[col]
        far += abs(d) >= _SMALL_DZ
        E[col] = exp_small(d)
    if far:
        for col in range(C):
            if abs(dz[col]) >= _SMALL_DZ:
                E[col] = math.exp(dz[col])
    # E becomes exp(z_c - mref) = eref_c * exp(dz_c); s the normaliser. A binary task's
    # class 0 keeps its reference logit 0, so its term is eref_0 itself.
    e0 = eref[i, 0]
    if off == 1:
        for b in range(m):
            s[b] = e0
    else:
        for b in range(m):
            E[b] = e0 * E[b]
            s[b] = E[b]
    for r in range(1 - off, R):
        e = eref[i, r + off]
        for b in range(m):
            t = e * E[r * m + b]
            E[r * m + b] = t
            s[b] += t
    isr = inv_sref[i]
    far = 0
    for b in range(m):
        u = s[b] * isr - 1.0
        far += abs(u) >= _SMALL_U
        lt[b] = log1p_series(u)
    if far:
        for b in range(m):
            u = s[b] * isr - 1.0
            if abs(u) >= _SMALL_U:
                # log1p loses the ratio's digits when it is near -1 (the ratio near 0).
                lt[b] = math.log1p(u) if u > -0.5 else math.log(s[b] * isr)
    for b in range(m):
        s[b] = 1.0 / s[b]
    for r in range(R):
        for b in range(m):
            Rrow[r * m + b] = E[r * m + b] * s[b]
    label = y[i] - off  # the label's parameter row; -1 for class 0 of a binary task
    bi = base[i]
    if label >= 0:
        for b in range(m):
            term = bi + lt[b] - dz[label * m + b]
            tot[b] += term if exc[b] != i else 0.0
            Rrow[label * m + b] -= 1.0
    else:
        for b in range(m):
            term = bi + lt[b]
            tot[b] += term if exc[b] != i else 0.0
    for b in range(m):
        if exc[b] == i:
            for r in range(R):
                Rrow[r * m + b] = 0.0


@njit
def start_subset(b, e, Xa, theta_ref, loss, resid, loss_sum, grad_sum, proba, hinv, pen, st):
    """Slot ``b`` starts the subset without row ``e`` at the reference (no pass over the rows).

    Its objective and gradient are the reference's minus row ``e``'s terms. Woodbury: removing
    row ``e`` removes ``B M B^T`` from the Hessian, ``B = I_R (x) x`` (``P x R``), ``M = diag(p)
    - p p^T`` over the parameter rows' classes (``p (1 - p)`` for a binary task);
    ``H_e^{-1} = H^{-1} + A M (I - S M)^{-1} A^T`` with ``A = H^{-1} B``, ``S = B^T A`` (``M``
    may be singular; this form never inverts it).
    """
    theta, _, grad, _, _, A, core, F, _, _, _, steps = st
    W = Xa.shape[1]
    P = theta_ref.shape[0]
    R = A.shape[2]
    K = proba.shape[1]
    off = K - R
    x = Xa[e]
    f = loss_sum - loss[e]
    for a in range(P):
        theta[b, a] = theta_ref[a]
        f += 0.5 * pen[a] * theta_ref[a] * theta_ref[a]
    F[b] = f
    for r in range(R):
        for j in range(W):
            a = r * W + j
            grad[b, a] = grad_sum[a] - resid[e, r + off] * x[j] + pen[a] * theta_ref[a]
    for a in range(P):
        for r in range(R):
            acc = 0.0
            for j in range(W):
                acc += hinv[a, r * W + j] * x[j]
            A[b, a, r] = acc
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
                acc += x[j] * A[b, r * W + j, r2]
            S[r, r2] = acc
    core[b] = M @ np.linalg.inv(np.eye(R) - S @ M)
    steps[b] = 0


@njit
def next_trial(b, hinv, tol, max_iter, size, st):
    """Slot ``b`` at an accepted point: ``CONVERGED``, ``MAX_ITER`` or ``HAND_OVER`` when it
    stops there, else -1 with a full step's trial point in ``trial[b]``."""
    theta, trial, grad, _, direction, A, core, _, slope, tstep, gmax, steps = st
    P, R = A.shape[1], A.shape[2]
    g = 0.0
    for a in range(P):
        g = max(g, abs(grad[b, a]))
    gmax[b] = g
    # At least one step: the reference may already meet the tolerance, and stopping there
    # would report an influence of exactly zero instead of its tiny true value.
    if g / size <= tol and (steps[b] > 0 or g == 0.0):
        return CONVERGED
    if steps[b] >= max_iter:
        return MAX_ITER
    v = np.zeros(R)
    for r in range(R):
        acc = 0.0
        for a in range(P):
            acc += A[b, a, r] * grad[b, a]
        v[r] = acc
    w = np.zeros(R)
    for r in range(R):
        acc = 0.0
        for r2 in range(R):
            acc += core[b, r, r2] * v[r2]
        w[r] = acc
    sl = 0.0
    for a in range(P):
        acc = 0.0
        for c in range(P):
            acc += hinv[a, c] * grad[b, c]
        for r in range(R):
            acc += A[b, a, r] * w[r]
        direction[b, a] = -acc
        sl += grad[b, a] * direction[b, a]
    if not sl < 0.0:
        return HAND_OVER
    slope[b] = sl
    tstep[b] = 1.0
    for a in range(P):
        trial[b, a] = theta[b, a] + direction[b, a]
    return -1


@njit
def after_trial(b, Ft, hinv, tol, max_iter, size, st):
    """Slot ``b``'s trial point was evaluated (objective ``Ft``, gradient in ``tgrad[b]``):
    accept it or halve the step (Armijo). Returns as :func:`next_trial`."""
    theta, trial, grad, tgrad, direction, _, _, F, slope, tstep, gmax, steps = st
    P = theta.shape[1]
    t = tstep[b]
    g_new = 0.0
    for a in range(P):
        g_new = max(g_new, abs(tgrad[b, a]))
    armijo = Ft <= F[b] + _ARMIJO * t * slope[b]
    quiet = (Ft - F[b] <= _OBJECTIVE_NOISE * (abs(F[b]) + 1.0)) and g_new < gmax[b]
    if (armijo or quiet) and math.isfinite(Ft):
        for a in range(P):
            theta[b, a] = trial[b, a]
            grad[b, a] = tgrad[b, a]
        F[b] = Ft
        steps[b] += 1
        # The Hessian of the reference point is kept while full steps contract the gradient
        # fast; otherwise the general solver (fresh Hessians) finishes this subset.
        if g_new / size > tol and not (t == 1.0 and g_new <= _CHORD_CONTRACTION * gmax[b]):
            return HAND_OVER
        return next_trial(b, hinv, tol, max_iter, size, st)
    t *= 0.5
    if t < _MIN_STEP:
        return HAND_OVER
    tstep[b] = t
    for a in range(P):
        trial[b, a] = theta[b, a] + t * direction[b, a]
    return -1


@njit
def finish_slot(b, state, sub, theta, steps, params, n_iter, status):
    """Slot ``b``'s subset stops in ``state``: its results are written and the slot is free."""
    s = sub[b]
    params[s] = theta[b]
    n_iter[s] = steps[b]
    status[s] = state
    sub[b] = -1


@njit
def solve_one_out(
    Xa,
    y,
    eref,
    inv_sref,
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
    slots,
    params,
    n_iter,
    status,
):
    """Fit "all rows but ``excluded[s]``" for each ``s`` (see ``logreg_one_out``).

    Up to ``slots`` subsets are in flight at once: each round evaluates every pending trial
    point in one pass over the rows (:func:`batch_objective`), then each subset accepts its
    point or backtracks on its own, and a finished subset's slot takes the next one. Results
    go to ``params``, ``n_iter`` and ``status`` (``CONVERGED``, ``MAX_ITER`` or ``HAND_OVER``,
    in which case ``params`` holds the last accepted point). ``theta_ref`` has one row of
    ``W`` parameters per class, or one row only for a binary task (class 1's logit; class 0's
    is fixed at 0).
    """
    n, W = Xa.shape
    K = proba.shape[1]
    P = theta_ref.shape[0]
    R = P // W  # parameter rows: K, or K - 1 = 1 for a binary task
    off = K - R
    size = n - 1.0
    k = excluded.shape[0]
    B = max(1, min(slots, k))
    st = (
        np.empty((B, P)),  # theta
        np.empty((B, P)),  # trial
        np.empty((B, P)),  # grad
        np.empty((B, P)),  # tgrad
        np.empty((B, P)),  # direction
        np.empty((B, P, R)),  # A
        np.empty((B, R, R)),  # core
        np.empty(B),  # F
        np.empty(B),  # slope
        np.empty(B),  # tstep
        np.empty(B),  # gmax
        np.zeros(B, dtype=np.int64),  # steps
    )
    theta, trial, tgrad, steps = st[0], st[1], st[3], st[11]
    sub = np.full(B, -1, dtype=np.int64)
    C = B * R
    D = np.empty((W, C))
    G = np.empty((W, C))
    work = (np.empty(C), np.empty(C), np.empty((4, C)), np.empty(B), np.empty(B))
    act = np.empty(B, dtype=np.int64)
    exc = np.empty(B, dtype=np.int64)
    tot = np.empty(B)
    nxt = 0
    while True:
        for b in range(B):
            while sub[b] < 0 and nxt < k:
                e = excluded[nxt]
                start_subset(
                    b, e, Xa, theta_ref, loss, resid, loss_sum, grad_sum, proba, hinv, pen, st
                )
                sub[b] = nxt
                nxt += 1
                state = next_trial(b, hinv, tol, max_iter, size, st)
                if state >= 0:
                    finish_slot(b, state, sub, theta, steps, params, n_iter, status)
        m = 0
        for b in range(B):
            if sub[b] >= 0:
                act[m] = b
                exc[m] = excluded[sub[b]]
                m += 1
        if m == 0:
            break
        for j in range(W):
            for r in range(R):
                a = r * W + j
                for q in range(m):
                    D[j, r * m + q] = trial[act[q], a] - theta_ref[a]
        batch_objective(Xa, y, eref, loss, inv_sref, D, exc, m, R, off, tot, G, work)
        for q in range(m):
            b = act[q]
            penalty = 0.0
            for r in range(R):
                for j in range(W):
                    a = r * W + j
                    tgrad[b, a] = G[j, r * m + q] + pen[a] * trial[b, a]
                    penalty += 0.5 * pen[a] * trial[b, a] * trial[b, a]
            state = after_trial(b, tot[q] + penalty, hinv, tol, max_iter, size, st)
            if state >= 0:
                finish_slot(b, state, sub, theta, steps, params, n_iter, status)
