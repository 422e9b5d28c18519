"""Beta Shapley: Beta(1, 1) is Shapley; the sampling estimator agrees with enumeration."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from dataworth.engine.game import Game
from dataworth.methods.shapley import exact_shapley
from dataworth.methods.shapley.beta import beta_shapley, beta_weights, exact_beta_shapley


def _game(n=8, seed=0):
    """A non-additive game: a weighted sum plus a pairwise synergy and a saturation."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=n)

    def fn(masks):
        m = masks.astype(float)
        return m @ w + 1.5 * m[:, 0] * m[:, 1] - 0.3 * np.maximum(m.sum(axis=1) - 4, 0)

    return Game(fn, n_players=n)


def test_weights_sum_to_one_over_coalitions():
    for alpha, beta in [(1, 1), (4, 1), (16, 1), (2, 3)]:
        n = 9
        w = beta_weights(n, alpha, beta)
        counts = np.array([comb(n - 1, s) for s in range(n)])
        assert (w * counts).sum() == pytest.approx(1.0)


def test_beta_one_one_is_the_shapley_value():
    g = _game()
    np.testing.assert_allclose(exact_beta_shapley(g, 1, 1).values, exact_shapley(g).values)


def test_beta_four_one_favours_small_coalitions():
    # The total weight of all coalitions of each size decreases with the size.
    n = 10
    by_size = beta_weights(n, 4, 1) * np.array([comb(n - 1, s) for s in range(n)])
    assert np.all(np.diff(by_size) < 0)


def test_sampling_estimator_matches_enumeration_on_average():
    g = _game()
    exact = exact_beta_shapley(g, 4, 1, eps=0.01).values
    estimates = np.array(
        [
            beta_shapley(g, 4, 1, n_subsets=400, eps=0.01, estimator="moment", seed=s).values
            for s in range(60)
        ]
    )
    mean, se = estimates.mean(axis=0), estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    assert np.all(np.abs(mean - exact) <= 4 * se + 1e-3)
    # The truncation changes the estimand by little here.
    untruncated = exact_beta_shapley(g, 4, 1).values
    assert np.abs(exact - untruncated).max() < 0.1


def test_result_records_the_parameters():
    result = beta_shapley(_game(), 4, 1, n_subsets=200, eps=0.01, estimator="ols", seed=0)
    assert result.method == "beta_shapley"
    assert result.params["alpha"] == 4 and result.params["beta"] == 1
    assert 0 < result.params["mass_outside"] < 0.05


def test_permutation_estimator_matches_enumeration():
    g = _game()
    exact = exact_beta_shapley(g, 4, 1).values
    result = beta_shapley(g, 4, 1, estimator="permutation", permutations=3000, seed=0)
    assert np.all(np.abs(result.values - exact) <= 4 * result.stderr + 1e-9)
    assert result.params["semivalue"] == "beta(4,1)"
    # With alpha = beta = 1 the weights are all 1: exactly the Shapley permutation estimator.
    shapley_like = beta_shapley(g, 1, 1, estimator="permutation", permutations=50, seed=3)
    from dataworth.methods.shapley import tmc_shapley

    np.testing.assert_allclose(
        shapley_like.values, tmc_shapley(g, permutations=50, tol=0, seed=3).values, atol=1e-12
    )
