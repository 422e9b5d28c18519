"""What the compiled chain kernels share (imported only with Numba): the line search's constants,
the ``njit`` they are compiled with, row combinations, the penalty, a Cholesky inverse, and a
vectorisable exponential for the softmax.

The exponential:

``math.exp`` is a call into libm that the compiler cannot vectorise; in the softmax pass over a
member's rows it cost two thirds of the pass (one exponential per row and class). :func:`fexp`
is the textbook alternative, written so that a loop over an array vectorises: ``x = n ln 2 + r``
with ``n`` rounded to the nearest integer by adding ``1.5 * 2^52`` (Cody-Waite reduction in two
parts, so ``r`` is exact), ``e^r`` by its Taylor polynomial of degree 13 on ``|r| <= ln(2) / 2``
(truncation error below ``4e-18``), and ``2^n`` built from its bits. It is within about one unit
in the last place of ``math.exp`` (tests check it), exactly 1 at 0, and meant for the softmax's
``x <= 0``: arguments below ``-708`` give ``exp(-708)`` instead of a subnormal or 0, which changes
a probability by less than ``1e-307``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

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
def with_penalty(data, theta, pen):
    """The objective from its data part: the penalty added last, term by term."""
    for j in range(theta.shape[0]):
        data += 0.5 * pen[j] * theta[j] * theta[j]
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


_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # ln 2 rounded to 32 bits, so that n * _LN2_HI is exact
_LN2_LO = 1.9082149292705877e-10  # the rest of ln 2
_ROUND = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer, kept in the low bits
_LOWEST = -708.0  # exp(-708) is still a normal number


@intrinsic
def _bits(typingctx, x):
    """The bits of a float64 as an int64 (a no-op for the machine)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _float(typingctx, x):
    """The float64 with the bits of an int64."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit
def fexp(x):
    """``exp(x)`` for ``x <= 0`` (see the module's docstring), vectorisable in a loop."""
    x = max(x, _LOWEST)
    t = x * _LOG2E + _ROUND
    n = t - _ROUND  # the integer nearest x / ln 2
    r = x - n * _LN2_HI
    r = r - n * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    # The low bits of t hold n; shifted into the exponent field, with the bias, they make 2^n.
    return p * _float((_bits(t) << 52) + (1023 << 52))
