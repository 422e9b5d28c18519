"""Compiled kernels of :mod:`dataworth.learners.logreg.chains` (imported only when Numba is).

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
# BFGS steps on one member before every further step recomputes the inverse Hessian (Newton's
# method with a line search): on an ill-conditioned problem (weak regularisation, nearly separable
# classes) BFGS alone can crawl, and Newton converges quadratically near the optimum.
_BFGS_PATIENCE = 20

njit = numba.njit(cache=True, nogil=True)


@njit
def sigmoid(z):
    """``(sigmoid(z), exp(-|z|))``, without overflow for any ``z``."""
    e = math.exp(-abs(z))
    return (1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)), e


@njit
def curvature(x, theta):
    """``p (1 - p)`` of one row at ``theta``: the row's weight in the Hessian."""
    z = 0.0
    for j in range(x.shape[0]):
        z += x[j] * theta[j]
    p, _ = sigmoid(z)
    return p * (1.0 - p)


@njit
def combine_rows(A, v, out, m):
    """``out[:m] = sum_b v[b] A[b, :m]``, i.e. ``A[:, :m]^T v``.

    Accumulating whole rows runs along contiguous memory with no reduction, which the compiler
    vectorises (a dot product is a serial chain of additions that it may not reorder).
    """
    for a in range(m):
        out[a] = 0.0
    for b in range(v.shape[0]):
        vb = v[b]
        for a in range(m):
            out[a] += A[b, a] * vb


@njit
def objective(X, XT, t, s, theta, pen, grad, z):
    """Sum-form objective over rows ``0..s-1`` and its gradient (written into ``grad``).

    ``XT`` is ``X`` transposed (C-contiguous), so that the logits ``z = X theta`` are a
    combination of its rows; the gradient accumulates one row of ``X`` at a time, likewise.
    Returns ``(objective, data part)``: the data part lets :func:`extend` add rows later.
    """
    P = X.shape[1]
    combine_rows(XT, theta, z, s)
    for j in range(P):
        grad[j] = pen[j] * theta[j]
    total = 0.0
    for i in range(s):
        zi = z[i]
        p, e = sigmoid(zi)
        total += max(zi, 0.0) + math.log1p(e) - t[i] * zi
        r = p - t[i]
        for j in range(P):
            grad[j] += r * X[i, j]
    return with_penalty(total, theta, pen), total


@njit
def with_penalty(data, theta, pen):
    """The objective from its data part: the penalty added last, term by term."""
    for j in range(theta.shape[0]):
        data += 0.5 * pen[j] * theta[j] * theta[j]
    return data


@njit
def extend(X, t, start, stop, theta, grad, data):
    """Add rows ``start..stop-1`` to an objective evaluated at ``theta``; returns its data part.

    ``grad`` and ``data`` are :func:`objective`'s over rows ``0..start-1`` at the same ``theta``.
    The new rows' terms are added in the order a full pass over ``0..stop-1`` adds them, with the
    same operations, so the result is bitwise that pass's at ``O((stop - start) d)`` cost: a
    chain's new member needs no pass over the rows it shares with its predecessor.
    """
    P = X.shape[1]
    for i in range(start, stop):
        zi = 0.0
        for j in range(P):
            zi += X[i, j] * theta[j]
        p, e = sigmoid(zi)
        data += max(zi, 0.0) + math.log1p(e) - t[i] * zi
        r = p - t[i]
        for j in range(P):
            grad[j] += r * X[i, j]
    return data


@njit
def spd_inverse(H, out):
    """Inverse of a symmetric positive definite matrix by Cholesky, into ``out``.

    Returns False (``out`` untouched) when a pivot is not positive, i.e. the Hessian is not
    numerically positive definite.
    """
    P = H.shape[0]
    L = np.zeros((P, P))
    for j in range(P):
        d = H[j, j]
        for k in range(j):
            d -= L[j, k] * L[j, k]
        if not d > 0.0:
            return False
        L[j, j] = math.sqrt(d)
        for i in range(j + 1, P):
            acc = H[i, j]
            for k in range(j):
                acc -= L[i, k] * L[j, k]
            L[i, j] = acc / L[j, j]
    M = np.zeros((P, P))  # L^{-1}, lower triangular
    for i in range(P):
        M[i, i] = 1.0 / L[i, i]
        for j in range(i):
            acc = 0.0
            for k in range(j, i):
                acc += L[i, k] * M[k, j]
            M[i, j] = -acc / L[i, i]
    for a in range(P):  # H^{-1} = M^T M
        for b in range(a, P):
            acc = 0.0
            for k in range(b, P):
                acc += M[k, a] * M[k, b]
            out[a, b] = acc
            out[b, a] = acc
    return np.all(np.isfinite(out))


@njit
def inverse_hessian(X, s, theta, pen, out):
    """Inverse Hessian of the objective over rows ``0..s-1`` at ``theta``, into ``out``.

    Returns False when the Hessian is not numerically positive definite; ``out`` is then a
    scaled identity, so the next step is a steepest-descent step.
    """
    P = X.shape[1]
    H = np.zeros((P, P))
    for i in range(s):
        c = curvature(X[i], theta)
        for a in range(P):
            ca = c * X[i, a]
            for b in range(a, P):
                H[a, b] += ca * X[i, b]
    scale = 0.0
    for a in range(P):
        H[a, a] += pen[a]
        scale = max(scale, H[a, a])
        for b in range(a):
            H[a, b] = H[b, a]
    if spd_inverse(H, out):
        return True
    out[:, :] = 0.0
    for a in range(P):
        out[a, a] = 1.0 / max(scale, 1.0)
    return False


@njit
def add_rows(X, start, stop, theta, hinv, u):
    """Sherman-Morrison: the inverse gains each new row's curvature at ``theta``."""
    P = X.shape[1]
    for i in range(start, stop):
        c = curvature(X[i], theta)
        combine_rows(hinv, X[i], u, P)  # hinv is symmetric: this is hinv @ x
        xu = 0.0
        for a in range(P):
            xu += X[i, a] * u[a]
        f = c / (1.0 + c * xu)
        for a in range(P):
            fa = f * u[a]
            for b in range(P):
                hinv[a, b] -= fa * u[b]


@njit
def fit_chain(X, t, sizes, theta0, pen, tol, max_iter, params, n_iter, converged):
    """Solve every member of one chain in order; see :mod:`dataworth.learners.logreg.chains`.

    ``X`` holds the chain's rows in the order they join it (member ``r`` is ``X[:sizes[r]]``),
    ``t`` their 0/1 targets; results go to ``params``, ``n_iter`` and ``converged``.
    """
    L = sizes.shape[0]
    P = X.shape[1]
    XT = np.ascontiguousarray(X.T)
    z = np.empty(X.shape[0])
    theta = theta0.copy()
    grad = np.empty(P)
    trial_grad = np.empty(P)
    direction = np.empty(P)
    trial = np.empty(P)
    dgrad = np.empty(P)
    hy = np.empty(P)
    hinv = np.empty((P, P))
    s = sizes[0]
    F, data = objective(X, XT, t, s, theta, pen, grad, z)
    # A start worse than the all-zero model (objective s log 2) is discarded, as in the
    # batched solver: far from the optimum the loss saturates and progress is slow.
    if F > s * math.log(2.0):
        theta[:] = 0.0
        F, data = objective(X, XT, t, s, theta, pen, grad, z)
    inverse_hessian(X, s, theta, pen, hinv)
    fresh = True
    have = s  # rows already accounted for in F, grad and hinv
    for r in range(L):
        s = sizes[r]
        if s > have:
            add_rows(X, have, s, theta, hinv, hy)
            data = extend(X, t, have, s, theta, grad, data)
            F = with_penalty(data, theta, pen)
            have = s
        step = 1.0
        steps = 0
        while True:
            gmax = 0.0
            for j in range(P):
                gmax = max(gmax, abs(grad[j]))
            if gmax <= tol * s:
                converged[r] = True
                break
            if steps >= max_iter or step < _MIN_STEP:
                break
            combine_rows(hinv, grad, direction, P)
            slope = 0.0
            for a in range(P):
                direction[a] *= -step
                slope += direction[a] * grad[a]
            if not slope < 0.0:
                if not fresh:
                    fresh = True
                    inverse_hessian(X, s, theta, pen, hinv)
                    continue
                slope = 0.0
                for a in range(P):
                    direction[a] = -step * grad[a]
                    slope -= step * grad[a] * grad[a]
            for j in range(P):
                trial[j] = theta[j] + direction[j]
            Ft, data_t = objective(X, XT, t, s, trial, pen, trial_grad, z)
            gnew = 0.0
            for j in range(P):
                gnew = max(gnew, abs(trial_grad[j]))
            noise = _OBJECTIVE_NOISE * (abs(F) + 1.0)
            accept = math.isfinite(Ft) and (
                Ft <= F + _ARMIJO * slope or (Ft - F <= noise and gnew < gmax)
            )
            if accept:
                sy = 0.0
                for j in range(P):
                    dgrad[j] = trial_grad[j] - grad[j]
                    sy += direction[j] * dgrad[j]
                    theta[j] = trial[j]
                    grad[j] = trial_grad[j]
                F, data = Ft, data_t
                steps += 1
                step = 1.0
                fresh = False
                if steps >= _BFGS_PATIENCE:
                    fresh = True
                    inverse_hessian(X, s, theta, pen, hinv)
                elif sy > 0.0:
                    # BFGS update of the inverse Hessian with the step s and the change in
                    # gradient y: H <- H - rho (s hy^T + hy s^T) + (rho^2 y.hy + rho) s s^T.
                    rho = 1.0 / sy
                    combine_rows(hinv, dgrad, hy, P)
                    yhy = 0.0
                    for a in range(P):
                        yhy += dgrad[a] * hy[a]
                    both = rho * rho * yhy + rho
                    for a in range(P):
                        da = direction[a]
                        ha = hy[a]
                        for b in range(P):
                            hinv[a, b] += both * da * direction[b] - rho * (
                                da * hy[b] + ha * direction[b]
                            )
            elif not fresh:
                # A failed step with an updated inverse: recompute it before backtracking.
                fresh = True
                inverse_hessian(X, s, theta, pen, hinv)
            else:
                step *= 0.5
        for j in range(P):
            params[r, j] = theta[j]
        n_iter[r] = steps
