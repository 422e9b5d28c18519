"""The multinomial (softmax) model's pieces of the one compiled chain solver (imported only with
Numba).

:func:`dataworth.learners.logreg.chains_kernels.fit_chain` solves a multiclass chain's members in
order, each warm-started from its predecessor's solution and inverse Hessian, by BFGS steps to
the batched solver's gradient tolerance, with the objective, extension, inverse Hessian and
rank-one updates of this module. The parametrisation is the batched solver's
(:mod:`dataworth.learners.logreg.learner`): ``R = n_classes`` parameter rows
``[w_1 .. w_d, b]``; rows of classes absent from a member are zero, and a member with exactly two
classes keeps its first class's row frozen at zero (scikit-learn's binary model). A kernel call
serves members that share one class structure (which classes are present and which rows are free);
the caller starts a new call, from the projected solution, where a row of a new class joins the
chain.

Adding a row ``x`` with class probabilities ``p`` adds ``(diag(p) - p p^T) kron x x^T`` to the
Hessian: the inverse is updated by one Sherman-Morrison step per free class (``+p_c``) and one for
the ``-p p^T`` term, ``R + 1`` updates of ``O(P^2)`` work per row (``P = R (d + 1)``) instead of
a new ``O(|S| P^2 + P^3)`` inverse. With three or more classes the objective is flat
along "every present intercept + t"; as in the batched solver the Hessian carries ``a u u^T`` on
that direction (``u`` the normalised ones on those intercepts), and each step is projected
orthogonally to ``u``, so the intercepts keep summing to zero.
"""

from __future__ import annotations

import math

import numpy as np

from dataworth.learners.logreg.chains_math import fexp, njit, spd_inverse, with_penalty


@njit
def residuals(XT, y, s, theta, present, Z, work):
    """Sum of the losses of rows ``0..s-1``; ``Z[c, i]`` becomes ``p_ic - [y_i = c]``.

    Only present classes' rows of ``Z`` are written; ``work`` (3 rows of ``Z``'s length) is
    scratch. Every loop runs along contiguous memory, one class at a time, so that it vectorises,
    exponentials (:func:`fexp`) included; :func:`extend` repeats these operations for one row.
    """
    R = present.shape[0]
    W = XT.shape[0]
    top = work[0]
    acc = work[1]
    picked = work[2]
    for c in range(R):
        if not present[c]:
            continue
        for i in range(s):
            Z[c, i] = 0.0
        for j in range(W):
            tj = theta[c * W + j]
            for i in range(s):
                Z[c, i] += XT[j, i] * tj
    for i in range(s):
        top[i] = -np.inf
        acc[i] = 0.0
        picked[i] = Z[y[i], i]
    for c in range(R):
        if present[c]:
            for i in range(s):
                top[i] = max(top[i], Z[c, i])
    for c in range(R):
        if present[c]:
            for i in range(s):
                e = fexp(Z[c, i] - top[i])
                Z[c, i] = e
                acc[i] += e
    total = 0.0
    for i in range(s):
        total += math.log(acc[i]) + top[i] - picked[i]
    for c in range(R):
        if present[c]:
            for i in range(s):
                Z[c, i] = Z[c, i] / acc[i] - (1.0 if y[i] == c else 0.0)
    return total


@njit
def objective(X, XT, y, s, theta, present, free, pen, grad, Z, work):
    """Sum-form objective over rows ``0..s-1`` and its gradient (zero on frozen rows).

    Returns ``(objective, data part)``: the data part lets :func:`extend` add rows later.
    """
    W = X.shape[1]
    data = residuals(XT, y, s, theta, present, Z, work)
    rows = np.flatnonzero(free)
    # The free rows' gradient in a compact array, each entry summed over the rows in order.
    G = np.empty((rows.shape[0], W))
    for k in range(rows.shape[0]):
        for j in range(W):
            G[k, j] = pen[rows[k] * W + j] * theta[rows[k] * W + j]
    for i in range(s):
        for k in range(rows.shape[0]):
            r = Z[rows[k], i]
            for j in range(W):
                G[k, j] += r * X[i, j]
    grad[:] = 0.0
    for k in range(rows.shape[0]):
        for j in range(W):
            grad[rows[k] * W + j] = G[k, j]
    return with_penalty(data, theta, pen), data


@njit
def extend(X, y, start, stop, theta, present, free, grad, data, p):
    """Add rows ``start..stop-1`` to an objective evaluated at ``theta``; returns its data part.

    ``grad`` and ``data`` are :func:`objective`'s over rows ``0..start-1`` at the same ``theta``;
    the new rows' terms are added with the operations, in the order, of a full pass over
    ``0..stop-1``, so the result is bitwise that pass's at ``O((stop - start) P)`` cost.
    ``p`` (length ``R``) is scratch.
    """
    R = present.shape[0]
    W = X.shape[1]
    for i in range(start, stop):
        top = -np.inf
        for c in range(R):
            if present[c]:
                z = 0.0
                for j in range(W):
                    z += X[i, j] * theta[c * W + j]
                p[c] = z
                top = max(top, z)
        picked = p[y[i]]
        acc = 0.0
        for c in range(R):
            if present[c]:
                e = fexp(p[c] - top)
                p[c] = e
                acc += e
        data += math.log(acc) + top - picked
        for c in range(R):
            if free[c]:
                r = p[c] / acc - (1.0 if y[i] == c else 0.0)
                base = c * W
                for j in range(W):
                    grad[base + j] += r * X[i, j]
    return data


@njit
def lift_scale(H, present, free):
    """Weight of the ``u u^T`` term: the mean free diagonal entry over the present classes."""
    R = present.shape[0]
    W = H.shape[0] // R
    total = 0.0
    count = 0
    n_present = 0
    for c in range(R):
        if present[c]:
            n_present += 1
        if free[c]:
            for a in range(W):
                total += H[c * W + a, c * W + a]
                count += 1
    return total / count / n_present


@njit
def inverse_hessian(X, XT, y, s, theta, present, free, pen, Z, work, out):
    """Inverse Hessian over rows ``0..s-1`` at ``theta``, into ``out``; frozen rows get identity.

    Returns False when the Hessian is not numerically positive definite; ``out`` is then a
    scaled identity, so the next step is a steepest-descent step.
    """
    R = present.shape[0]
    W = X.shape[1]
    P = R * W
    residuals(XT, y, s, theta, present, Z, work)
    H = np.zeros((P, P))
    p = np.zeros(R)
    for i in range(s):
        for c in range(R):
            if present[c]:
                p[c] = Z[c, i] + (1.0 if y[i] == c else 0.0)
        for c in range(R):
            if not free[c]:
                continue
            for c2 in range(c, R):
                if not free[c2]:
                    continue
                w = p[c] * ((1.0 if c == c2 else 0.0) - p[c2])
                for a in range(W):
                    wa = w * X[i, a]
                    row = c * W + a
                    for b in range(W):
                        H[row, c2 * W + b] += wa * X[i, b]
    for c in range(R):
        for c2 in range(c + 1, R):
            for a in range(W):
                for b in range(W):
                    H[c2 * W + b, c * W + a] = H[c * W + a, c2 * W + b]
    for j in range(P):
        H[j, j] += pen[j]
    n_present = 0
    for c in range(R):
        if present[c]:
            n_present += 1
        if not free[c]:
            for a in range(W):
                H[c * W + a, c * W + a] = 1.0
    if n_present >= 3:
        scale = lift_scale(H, present, free)
        for c in range(R):
            for c2 in range(R):
                if present[c] and present[c2]:
                    H[c * W + W - 1, c2 * W + W - 1] += scale
    if spd_inverse(H, out):
        return True
    top = 0.0
    for j in range(P):
        top = max(top, H[j, j])
    out[:, :] = 0.0
    for j in range(P):
        out[j, j] = 1.0 / max(top, 1.0)
    return False


@njit
def rank_one(hinv, v, weight, u):
    """Sherman-Morrison: ``hinv`` becomes the inverse of ``hinv^{-1} + weight v v^T``.

    Returns False (``hinv`` untouched) when the result would not be positive definite.
    """
    P = v.shape[0]
    for a in range(P):
        u[a] = 0.0
    for b in range(P):  # hinv is symmetric: u = hinv @ v, accumulated row by row
        vb = v[b]
        if vb != 0.0:
            for a in range(P):
                u[a] += hinv[b, a] * vb
    q = 0.0
    for a in range(P):
        q += v[a] * u[a]
    denom = 1.0 + weight * q
    if not (denom > 0.0 and math.isfinite(denom)):
        return False
    f = weight / denom
    for a in range(P):
        fa = f * u[a]
        for b in range(P):
            hinv[a, b] -= fa * u[b]
    return True


@njit
def add_rows(X, start, stop, theta, present, free, hinv, v, u):
    """The inverse gains rows ``start..stop-1``'s curvature at ``theta``; False on failure."""
    R = present.shape[0]
    W = X.shape[1]
    p = np.zeros(R)
    n_free = 0
    for c in range(R):
        if free[c]:
            n_free += 1
    for i in range(start, stop):
        top = -np.inf
        for c in range(R):
            if present[c]:
                z = 0.0
                for j in range(W):
                    z += X[i, j] * theta[c * W + j]
                p[c] = z
                top = max(top, z)
        acc = 0.0
        for c in range(R):
            if present[c]:
                p[c] = math.exp(p[c] - top)
                acc += p[c]
        for c in range(R):
            p[c] = p[c] / acc if present[c] else 0.0
        for c in range(R):
            if not free[c]:
                continue
            v[:] = 0.0
            for j in range(W):
                v[c * W + j] = X[i, j]
            # One free row (two classes present): its curvature p (1 - p) in one update.
            weight = p[c] * (1.0 - p[c]) if n_free == 1 else p[c]
            if not rank_one(hinv, v, weight, u):
                return False
        if n_free > 1:
            for c in range(R):
                for j in range(W):
                    v[c * W + j] = p[c] * X[i, j] if free[c] else 0.0
            if not rank_one(hinv, v, -1.0, u):
                return False
    return True


@njit
def centre_step(direction, present, W):
    """Remove the step's component along "every present intercept + t" (three or more classes)."""
    R = present.shape[0]
    n_present = 0
    mean = 0.0
    for c in range(R):
        if present[c]:
            n_present += 1
            mean += direction[c * W + W - 1]
    if n_present < 3:
        return
    mean /= n_present
    for c in range(R):
        if present[c]:
            direction[c * W + W - 1] -= mean
