"""Knockoff(+) thresholds, W statistics, and false discovery control in the AME design."""

from __future__ import annotations

import numpy as np
import pytest

from dataworth.engine.game import Game
from dataworth.errors import DataworthError
from dataworth.methods.ame import ame
from dataworth.methods.ame.knockoffs import knockoff_select, knockoff_threshold, w_statistics


def test_w_statistics_are_one_sided():
    beta = np.array([2.0, -1.0, 0.5, 0.0])
    knock = np.array([1.0, 0.5, -3.0, 0.2])
    np.testing.assert_allclose(w_statistics(beta, knock), [1.0, -0.5, 0.5, -0.2])
    # The other side looks for players that lower the target.
    np.testing.assert_allclose(w_statistics(beta, knock, side="negative"), [0.0, 1.0, -3.0, 0.0])
    with pytest.raises(DataworthError):
        w_statistics(beta, knock[:2])


def test_threshold_by_hand():
    w = np.array([6.0, 5.0, 4.0, 3.0, -2.5, 2.0, 1.0, -1.0, 0.0])
    # t = 1: #neg(<= -1) = 2, #pos(>= 1) = 6  -> 2/6 ; with +1: 3/6
    # t = 2: #neg(<= -2) = 1, #pos(>= 2) = 5  -> 1/5 = 0.2 ; with +1: 2/5
    # t = 3: #neg = 0, #pos = 4 -> 0 ; with +1: 1/4 = 0.25
    assert knockoff_threshold(w, 0.2, plus=False) == 2.0
    assert knockoff_threshold(w, 0.0, plus=False) == 3.0
    assert knockoff_threshold(w, 0.25, plus=True) == 3.0
    assert knockoff_threshold(w, 0.2, plus=True) == np.inf
    np.testing.assert_array_equal(knockoff_select(w, 0.25, plus=True), [1, 1, 1, 1, 0, 0, 0, 0, 0])
    # Knockoff+ at q = 0 selects nothing; all-zero W selects nothing.
    assert not knockoff_select(w, 0.0, plus=True).any()
    assert not knockoff_select(np.zeros(5), 0.5).any()
    with pytest.raises(DataworthError):
        knockoff_threshold(w, 1.5)


def test_knockoff_plus_controls_fdr_for_sign_symmetric_nulls():
    """With W of nulls sign-symmetric (what the knockoff swap gives), FDR <= q."""
    rng = np.random.default_rng(0)
    q, n_null, n_signal = 0.2, 90, 10
    fdp = []
    for _ in range(2000):
        w = np.concatenate(
            [
                rng.exponential(1.0, n_null) * rng.choice([-1.0, 1.0], n_null),
                rng.exponential(1.0, n_signal) + rng.uniform(0, 3, n_signal),
            ]
        )
        sel = knockoff_select(w, q, plus=True)
        fdp.append(sel[:n_null].sum() / max(sel.sum(), 1))
    fdr = np.mean(fdp)
    se = np.std(fdp) / np.sqrt(len(fdp))
    assert fdr <= q + 2 * se


def _sparse_game(seed: int, n: int, k: int, noise: float):
    """First k players raise U by 1, a few lower it, the rest are null; noisy but unbiased."""
    w = np.zeros(n)
    w[:k] = 1.0
    w[k : k + 3] = -1.0
    rng = np.random.default_rng(seed + 1000)
    return Game(lambda masks: masks @ w + noise * rng.standard_normal(len(masks)), n), w


def test_ame_knockoffs_fdr_on_sparse_games():
    """Over many seeds the share of null players among the selected stays below q."""
    q, n, k = 0.2, 60, 8
    fdp, power = [], []
    for seed in range(24):
        game, w = _sparse_game(seed, n, k, noise=1.5)
        result = ame(game, n_subsets=300, fdr=q, seed=seed, cv=5, n_alphas=40, n_jobs=1)
        sel = result.extra["selected"]
        fdp.append(sel[w <= 0].sum() / max(sel.sum(), 1))
        power.append(sel[:k].mean())
        assert result.params["fdr"] == q and result.params["knockoff_plus"] is True
        assert np.array_equal(sel, result.extra["w"] >= result.params["knockoff_threshold"])
    assert np.mean(fdp) <= q + 0.05
    assert np.mean(power) > 0.5  # a test of a selection that is never empty


def test_ame_knockoffs_on_the_null_game_select_rarely():
    """A null game (no player matters): every selection is false, so FDR = P(any) <= q."""
    q, n, trials = 0.2, 40, 20
    any_selected = 0
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        game = Game(lambda masks, rng=rng: rng.standard_normal(len(masks)), n)
        result = ame(game, n_subsets=300, fdr=q, seed=seed, cv=5, n_alphas=40, n_jobs=1)
        any_selected += bool(result.extra["selected"].any())
    assert any_selected / trials <= q


def test_plain_knockoff_is_more_liberal_than_knockoff_plus():
    # The same noisy game twice (its noise stream restarts), so both runs see the same scores.
    plus = ame(_sparse_game(0, 60, 3, noise=0.5)[0], n_subsets=200, fdr=0.1, cv=5, n_alphas=40)
    plain = ame(
        _sparse_game(0, 60, 3, noise=0.5)[0],
        n_subsets=200,
        fdr=0.1,
        knockoff_plus=False,
        cv=5,
        n_alphas=40,
    )
    # Three true players cannot pass Knockoff+ at q = 0.1 (it needs 10 selections).
    assert not plus.extra["selected"].any()
    assert plain.extra["selected"][:3].all()
    np.testing.assert_array_equal(plus.extra["w"], plain.extra["w"])
