"""The compiled chain kernels' building blocks, checked against their plain definitions.

A chain's new member starts from its predecessor's objective and gradient extended by the rows
it adds (no pass over the shared rows); that must give bitwise the full pass's numbers, so that a
member's result does not depend on how its objective was reached.
"""

from __future__ import annotations

import numpy as np
import pytest

from dataworth.learners.logreg.chains import chain_kernel

pytestmark = pytest.mark.skipif(chain_kernel() is None, reason="Numba is not installed")


def _rows(n, d, seed):
    rng = np.random.default_rng(seed)
    X = np.hstack([rng.normal(size=(n, d)), np.ones((n, 1))])
    return np.ascontiguousarray(X), rng.normal(size=X.shape[1]) * 0.3, rng


def test_binary_extension_is_bitwise_a_full_pass():
    from dataworth.learners.logreg.chains_kernels import extend, objective, with_penalty

    X, theta, rng = _rows(300, 7, 0)
    t = (rng.random(300) < 0.4).astype(np.float64)
    pen = np.full(X.shape[1], 0.5)
    pen[-1] = 0.0
    XT = np.ascontiguousarray(X.T)
    z = np.empty(300)
    for start, stop in [(1, 2), (137, 138), (250, 300)]:
        grad = np.empty(X.shape[1])
        _, data = objective(X, XT, t, start, theta, pen, grad, z)
        data = extend(X, t, start, stop, theta, grad, data)
        full_grad = np.empty(X.shape[1])
        F, full_data = objective(X, XT, t, stop, theta, pen, full_grad, z)
        assert data == full_data and with_penalty(data, theta, pen) == F
        assert np.array_equal(grad, full_grad)


@pytest.mark.parametrize(
    "present, free",
    [
        ([True] * 4, [True] * 4),
        ([True, False, True, True], [True, False, True, True]),
        ([False, True, False, True], [False, False, False, True]),  # two classes: binary model
    ],
)
def test_softmax_extension_is_bitwise_a_full_pass(present, free):
    from dataworth.learners.logreg.chains_kernels import with_penalty
    from dataworth.learners.logreg.chains_softmax import extend, objective

    present, free = np.array(present), np.array(free)
    R, n = len(present), 300
    X, _, rng = _rows(n, 6, 1)
    W = X.shape[1]
    y = rng.choice(np.flatnonzero(present), size=n)
    theta = rng.normal(size=R * W) * 0.3 * np.repeat(free, W)
    pen = np.tile(np.r_[np.full(W - 1, 0.5), 0.0], R) * np.repeat(free, W)
    XT = np.ascontiguousarray(X.T)
    Z, work = np.zeros((R, n)), np.empty((3, n))
    for start, stop in [(1, 2), (137, 138), (250, 300)]:
        grad = np.empty(R * W)
        _, data = objective(X, XT, y, start, theta, present, free, pen, grad, Z, work)
        data = extend(X, y, start, stop, theta, present, free, grad, data, np.empty(R))
        full_grad = np.empty(R * W)
        F, full_data = objective(X, XT, y, stop, theta, present, free, pen, full_grad, Z, work)
        assert data == full_data and with_penalty(data, theta, pen) == F
        assert np.array_equal(grad, full_grad)


def test_fast_exponential_is_within_an_ulp_of_math_exp():
    from dataworth.learners.logreg.chains_math import fexp

    rng = np.random.default_rng(2)
    x = np.concatenate([-rng.exponential(3.0, 20_000), -rng.random(2_000) * 708.0, [0.0, -1e-300]])
    got = np.array([fexp(v) for v in x])
    rel = np.abs(got - np.exp(x)) / np.exp(x)
    assert rel.max() <= 2.5e-16
    assert fexp(0.0) == 1.0
    # Below -708 the result stays at exp(-708), a normal number, instead of underflowing.
    assert fexp(-800.0) == fexp(-708.0) > 0.0
    assert fexp(-np.inf) == fexp(-708.0)


def test_compiled_probabilities_equal_numpy_softmax():
    import dataworth.learners.logreg.learner as logreg_module
    from dataworth.learners.logreg.learner import BatchedLogisticRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 6))
    params = rng.normal(size=(9, 4 * 7)) * 2.0
    present = rng.random((9, 4)) < 0.7
    present[:, 1] = True
    model = BatchedLogisticRegression()
    compiled = model.predict_proba(params, X, present)
    kernel = logreg_module.proba_kernel
    try:
        logreg_module.proba_kernel = lambda: None
        plain = model.predict_proba(params, X, present)
    finally:
        logreg_module.proba_kernel = kernel
    np.testing.assert_allclose(compiled, plain, rtol=1e-14, atol=1e-300)
    assert np.array_equal(compiled == 0.0, ~present[:, None, :].repeat(200, axis=1))
    # A model's probabilities do not depend on the batch it is predicted in.
    assert np.array_equal(model.predict_proba(params[4:5], X, present[4:5])[0], compiled[4])
