"""The compiled chain solver of :mod:`dataworth.learners.logreg.chains`, and the binary model's
pieces (imported only when Numba is).

:func:`fit_chain` is the one solver of binary and multiclass chains; the binary model's
objective, its extension by new rows, its inverse Hessian and its Sherman-Morrison updates are
here, the softmax model's in :mod:`~dataworth.learners.logreg.chains_softmax`, and what both
use in :mod:`~dataworth.learners.logreg.chains_math`. Module-level functions, so that Numba's
on-disk cache (``cache=True``) serves every later process instead of compiling again.
"""

from __future__ import annotations

import math

import numpy as np

from dataworth.learners.logreg.chains_math import (
    _ARMIJO,
    _BFGS_PATIENCE,
    _MIN_STEP,
    _OBJECTIVE_NOISE,
    combine_rows,
    njit,
    spd_inverse,
    with_penalty,
)
from dataworth.learners.logreg.chains_softmax import add_rows as softmax_add_rows
from dataworth.learners.logreg.chains_softmax import centre_step
from dataworth.learners.logreg.chains_softmax import extend as softmax_extend
from dataworth.learners.logreg.chains_softmax import inverse_hessian as softmax_inverse_hessian
from dataworth.learners.logreg.chains_softmax import objective as softmax_objective


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
def fit_chain(X, t, y, sizes, theta0, present, free, pen, tol, max_iter, params, n_iter, converged):
    """Solve every member of one chain in order; see :mod:`dataworth.learners.logreg.chains`.

    One solver for both models, which differ only in shape: a binary chain has one parameter row
    (``present`` of length 1; targets ``t`` in 0/1, ``y`` unused), a multiclass chain ``R =
    n_classes`` rows, all its members with the class structure ``present``/``free`` (labels
    ``y``, ``t`` unused; ``theta0`` already in the structure's parametrisation). The model's
    objective, its extension by new rows, its inverse Hessian and the Sherman-Morrison updates
    come from this module (binary) or :mod:`~dataworth.learners.logreg.chains_softmax`; the
    BFGS iteration, the line search and the refresh rules are the same code for both.

    ``X`` holds the chain's rows in the order they join it (member ``r`` is ``X[:sizes[r]]``);
    results go to ``params``, ``n_iter`` and ``converged``.
    """
    L = sizes.shape[0]
    R = present.shape[0]
    softmax = R > 1
    W = X.shape[1]
    P = R * W
    n = X.shape[0]
    XT = np.ascontiguousarray(X.T)
    # Scratch of the binary model (the logits) and of the softmax one (logits and residuals per
    # class, row-wise work, one row's probabilities, a rank-one update's vector).
    z = np.empty(0 if softmax else n)
    Z = np.zeros((R if softmax else 0, n))
    work = np.empty((3, n if softmax else 0))
    p = np.empty(R)
    v = np.empty(P)
    theta = theta0.copy()
    grad = np.empty(P)
    trial_grad = np.empty(P)
    direction = np.empty(P)
    trial = np.empty(P)
    dgrad = np.empty(P)
    hy = np.empty(P)
    hinv = np.empty((P, P))
    n_present = 0
    for c in range(R):
        if present[c]:
            n_present += 1
    if not softmax:
        n_present = 2
    s = sizes[0]
    if softmax:
        F, data = softmax_objective(X, XT, y, s, theta, present, free, pen, grad, Z, work)
    else:
        F, data = objective(X, XT, t, s, theta, pen, grad, z)
    # A start worse than the all-zero model (objective s log #classes) is discarded, as in the
    # batched solver: far from the optimum the loss saturates and progress is slow.
    if F > s * math.log(n_present):
        theta[:] = 0.0
        if softmax:
            F, data = softmax_objective(X, XT, y, s, theta, present, free, pen, grad, Z, work)
        else:
            F, data = objective(X, XT, t, s, theta, pen, grad, z)
    if softmax:
        softmax_inverse_hessian(X, XT, y, s, theta, present, free, pen, Z, work, hinv)
    else:
        inverse_hessian(X, s, theta, pen, hinv)
    fresh = True
    have = s  # rows already accounted for in F, grad and hinv
    for r in range(L):
        s = sizes[r]
        if s > have:
            if softmax:
                if not softmax_add_rows(X, have, s, theta, present, free, hinv, v, hy):
                    fresh = True
                    softmax_inverse_hessian(X, XT, y, s, theta, present, free, pen, Z, work, hinv)
                data = softmax_extend(X, y, have, s, theta, present, free, grad, data, p)
            else:
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
            combine_rows(hinv, grad, direction, P)  # hinv is symmetric: this is hinv @ grad
            for a in range(P):
                direction[a] *= -step
            if softmax:
                centre_step(direction, present, W)
            slope = 0.0
            for a in range(P):
                slope += direction[a] * grad[a]
            if not slope < 0.0:
                if not fresh:
                    fresh = True
                    if softmax:
                        softmax_inverse_hessian(
                            X, XT, y, s, theta, present, free, pen, Z, work, hinv
                        )
                    else:
                        inverse_hessian(X, s, theta, pen, hinv)
                    continue
                # Steepest descent. (The binary solver once wrote ``slope -= step g g``: the same
                # bits, since -(step g) g is exactly the negated product.)
                for a in range(P):
                    direction[a] = -step * grad[a]
                if softmax:
                    centre_step(direction, present, W)
                slope = 0.0
                for a in range(P):
                    slope += direction[a] * grad[a]
            for j in range(P):
                trial[j] = theta[j] + direction[j]
            if softmax:
                Ft, data_t = softmax_objective(
                    X, XT, y, s, trial, present, free, pen, trial_grad, Z, work
                )
            else:
                Ft, data_t = objective(X, XT, t, s, trial, pen, trial_grad, z)
            gnew = 0.0
            for j in range(P):
                gnew = max(gnew, abs(trial_grad[j]))
            noise = _OBJECTIVE_NOISE * (abs(F) + 1.0)
            accept = math.isfinite(Ft) and (
                Ft <= F + _ARMIJO * slope or (Ft - F <= noise and gnew < gmax)
            )
            refresh = False
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
                    refresh = True
                elif sy > 0.0:
                    bfgs_update(hinv, direction, dgrad, hy, sy, P)
            elif not fresh:
                # A failed step with an updated inverse: recompute it before backtracking.
                refresh = True
            else:
                step *= 0.5
            if refresh:
                fresh = True
                if softmax:
                    softmax_inverse_hessian(X, XT, y, s, theta, present, free, pen, Z, work, hinv)
                else:
                    inverse_hessian(X, s, theta, pen, hinv)
        for j in range(P):
            params[r, j] = theta[j]
        n_iter[r] = steps


@njit
def bfgs_update(hinv, direction, dgrad, hy, sy, P):
    """BFGS update of the inverse Hessian with the step s and the change in gradient y:
    ``H <- H - rho (s hy^T + hy s^T) + (rho^2 y.hy + rho) s s^T``, ``rho = 1 / s.y``."""
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
            hinv[a, b] += both * da * direction[b] - rho * (da * hy[b] + ha * direction[b])
