"""The randomized subset design: laws of p, their constants, and purity in (seed, index)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataworth.errors import DataworthError
from dataworth.methods.sampler import (
    Beta,
    Fixed,
    Grid,
    LogitUniform,
    SubsetSampler,
    Uniform,
    draw,
    make_law,
    subsets_for,
)

LAWS = [
    Grid(),
    Uniform(0.01),
    Beta(2.0, 3.0),
    Beta(4.0, 1.0, eps=0.01),
    Fixed(),
    LogitUniform(0.01),
]


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_design_is_a_pure_function_of_seed_and_index(law):
    sampler = SubsetSampler(37, law)
    p, masks = sampler.draw(seed=3, start=0, stop=50)
    # Any slicing of the index range gives the same rows: batching and extension are free.
    p_a, masks_a = sampler.draw(seed=3, start=0, stop=20)
    p_b, masks_b = sampler.draw(seed=3, start=20, stop=50)
    np.testing.assert_array_equal(np.concatenate([p_a, p_b]), p)
    np.testing.assert_array_equal(np.vstack([masks_a, masks_b]), masks)
    # A longer run keeps the same prefix.
    p_long, masks_long = sampler.draw(seed=3, start=0, stop=80)
    np.testing.assert_array_equal(p_long[:50], p)
    np.testing.assert_array_equal(masks_long[:50], masks)
    # Another seed gives another design.
    assert not np.array_equal(sampler.draw(seed=4, start=0, stop=50)[1], masks)
    assert masks.dtype == bool and masks.shape == (50, 37)


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_inclusion_frequency_follows_p(law):
    p, masks = SubsetSampler(400, law).draw(seed=0, start=0, stop=300)
    assert ((p > 0) & (p < 1)).all()
    # Each row's share of members is Bernoulli(p) over 400 players: within 5 standard errors.
    se = np.sqrt(p * (1 - p) / 400)
    assert np.all(np.abs(masks.mean(axis=1) - p) < 5 * se + 1e-12)


def test_grid_draws_only_grid_values_evenly():
    p, _ = SubsetSampler(5, Grid()).draw(seed=1, start=0, stop=4000)
    values, counts = np.unique(p, return_counts=True)
    np.testing.assert_allclose(values, [0.2, 0.4, 0.6, 0.8])
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.03)


@pytest.mark.parametrize(
    ("law", "expected"),
    [
        (Grid(), 5.208333333),  # (6.25 + 4.1667 + 4.1667 + 6.25) / 4
        (Fixed(), 4.0),
        (Uniform(0.01), 2 * math.log(99) / 0.98),
        (Beta(2.0, 2.0), 6.0),  # B(1,1)/B(2,2)
    ],
    ids=["grid", "fixed", "uniform", "beta22"],
)
def test_ipw_constant_closed_forms(law, expected):
    assert law.ipw_variance == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.name)
def test_ipw_constant_matches_monte_carlo(law):
    p = law.ppf(np.random.default_rng(0).random(400_000))
    assert np.mean(1 / (p * (1 - p))) == pytest.approx(law.ipw_variance, rel=0.02)


def test_logit_uniform_has_density_proportional_to_inverse_variance():
    law = LogitUniform(0.05)
    p = law.ppf(np.random.default_rng(1).random(200_000))
    assert p.min() >= 0.05 - 1e-12 and p.max() <= 0.95 + 1e-12
    # Under g(p) ~ 1/(p(1-p)), E_g[h(p) p(1-p)] / E_g[p(1-p)] is the plain mean of h on the
    # interval: the importance weighting AMESV relies on. Check with h(p) = p^2.
    w = p * (1 - p)
    target = (0.95**3 - 0.05**3) / 3 / 0.9
    assert np.sum(w * p**2) / np.sum(w) == pytest.approx(target, rel=0.01)
    assert np.mean(w) == pytest.approx(law.centred_variance, rel=0.01)


def test_knockoffs_use_each_rows_p_and_an_independent_stream():
    sampler = SubsetSampler(300, Grid())
    p, masks = sampler.draw(seed=0, start=0, stop=200)
    knock = sampler.knockoffs(0, p, 0)
    assert knock.shape == masks.shape
    assert not np.array_equal(knock, masks)
    se = np.sqrt(p * (1 - p) / 300)
    assert np.all(np.abs(knock.mean(axis=1) - p) < 5 * se)
    # Pure in the index too, and asking for knockoffs changes nothing in the design.
    np.testing.assert_array_equal(sampler.knockoffs(0, p[50:], 50), knock[50:])
    np.testing.assert_array_equal(sampler.draw(seed=0, start=0, stop=200)[1], masks)
    # Player and knockoff memberships are uncorrelated.
    corr = np.corrcoef(masks[:, 0] - p, knock[:, 0] - p)[0, 1]
    assert abs(corr) < 0.25


def test_make_law_and_shortcuts():
    assert isinstance(make_law("grid"), Grid)
    assert make_law("uniform", eps=0.1) == Uniform(0.1)
    assert make_law("banzhaf").values == (0.5,)
    assert make_law("beta:4,1").eps == 0.01  # truncated: E[1/(p(1-p))] is infinite otherwise
    assert make_law("beta:2,3") == Beta(2.0, 3.0)
    p, masks = draw(5, 0, 10, n_players=8)
    p2, masks2 = SubsetSampler(8, Grid()).draw(5, 0, 10)
    np.testing.assert_array_equal(p, p2)
    np.testing.assert_array_equal(masks, masks2)
    with pytest.raises(DataworthError, match="beta:A,B"):
        make_law("beta:4")
    with pytest.raises(DataworthError, match="Unknown law"):
        make_law("cauchy")
    with pytest.raises(DataworthError, match="eps > 0"):
        Beta(4.0, 1.0)
    with pytest.raises(DataworthError, match="strictly"):
        Grid((0.0, 0.5))


def test_sizing_rule():
    # The authors' CIFAR10-20 setting: k = 20, N = 49,970, factor 8 -> 2497 submodels.
    assert subsets_for(20, 49_970, 8) == math.ceil(8 * 20 * math.log2(49_970))
    assert abs(subsets_for(20, 49_970, 8) - 2497) <= 1
    with pytest.raises(DataworthError):
        subsets_for(0, 100)
