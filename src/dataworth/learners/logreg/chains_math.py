"""A vectorisable exponential for the compiled softmax chain kernels (imported only with Numba).

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

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from dataworth.learners.logreg.chains_kernels import njit

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
