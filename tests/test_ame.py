"""AME, AME-based Shapley and Banzhaf against games with known answers, and on a real utility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dataworth.engine.game import Game
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.methods.ame import (
    HierarchicalResult,
    PlayerGame,
    ame,
    ame_hierarchical,
    ame_shapley,
    banzhaf,
)
from dataworth.methods.result import ValuationResult
from dataworth.methods.sampler import Grid, Uniform


def _linear_game(n: int, seed: int = 0, noise: float = 0.1):
    """``U(S) = sum of w_i over S`` plus noise: the AME of every law is exactly ``w``."""
    rng = np.random.default_rng(seed)
    w = np.zeros(n)
    w[:8] = rng.uniform(0.5, 2.0, 8) * rng.choice([-1.0, 1.0], 8)
    noise_rng = np.random.default_rng(seed + 1)
    return Game(lambda m: m @ w + noise * noise_rng.standard_normal(len(m)), n, "linear"), w


def _exact_semivalue(fn, n: int, weight) -> np.ndarray:
    """``sum over S in D \\ {i} of weight(|S|) (U(S + i) - U(S))`` by enumeration."""
    values = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        rows, sizes = [], []
        for size in range(n):
            for subset in itertools.combinations(others, size):
                mask = np.zeros(n, bool)
                mask[list(subset)] = True
                rows.append(mask)
                sizes.append(size)
        without = np.array(rows)
        with_i = without.copy()
        with_i[:, i] = True
        marginal = fn(with_i) - fn(without)
        values[i] = np.sum(np.array([weight(s) for s in sizes]) * marginal)
    return values


def _grid_weight(n: int, grid=(0.2, 0.4, 0.6, 0.8)):
    # P(S) for a fixed S of size s among the n - 1 others, averaged over the grid of p.
    return lambda s: np.mean([p**s * (1 - p) ** (n - 1 - s) for p in grid])


# -- the scaling: c * beta is the AME in the metric's units -----------------------------------


@pytest.mark.parametrize("estimator", ["lasso", "ols"])
@pytest.mark.parametrize(
    ("law", "tol"),
    [(Grid(), 0.12), (Uniform(0.1), 0.15)],
    ids=["grid", "uniform0.1"],
)
def test_linear_game_recovers_weights(law, tol, estimator):
    game, w = _linear_game(50)
    result = ame(game, n_subsets=3000, law=law, estimator=estimator, seed=0, cv=5, n_alphas=50)
    assert result.params["scale_c"] == pytest.approx(law.ipw_variance)
    err = np.abs(result.values - w)
    assert err.max() < tol, err.max()
    # The authors' released scaling (beta / c) would be off by c^2, about 27 for the grid.
    beta = result.values / law.ipw_variance
    assert np.abs(beta / law.ipw_variance - w).max() > 0.4
    # Ranking of the eight real players is exact.
    assert set(np.argsort(-np.abs(result.values))[:8]) == set(range(8))


def test_grid_constant_is_the_papers():
    game, _ = _linear_game(10)
    assert ame(game, n_subsets=50, estimator="moment").params["scale_c"] == pytest.approx(
        5.2083, abs=1e-4
    )


def test_moment_and_ols_match_enumeration_on_average():
    """A non-additive game on 9 players: mean over seeds of the estimate -> exact AME."""
    n = 9
    w = np.linspace(-1.0, 1.5, n)

    def fn(masks):
        masks = np.asarray(masks, dtype=float)
        # Additive part, a pairwise interaction, and a saturating size effect.
        return masks @ w + 2.0 * masks[:, 0] * masks[:, 1] + np.sqrt(masks.sum(axis=1))

    exact = _exact_semivalue(fn, n, _grid_weight(n))
    game = Game(fn, n)
    moment = np.array(
        [ame(game, n_subsets=100, estimator="moment", seed=s).values for s in range(150)]
    )
    ols = np.array([ame(game, n_subsets=100, estimator="ols", seed=s).values for s in range(150)])
    se = moment.std(axis=0) / np.sqrt(len(moment))
    assert np.all(np.abs(moment.mean(axis=0) - exact) < 4 * se + 1e-3)
    se_ols = ols.std(axis=0) / np.sqrt(len(ols))
    assert np.all(np.abs(ols.mean(axis=0) - exact) < 4 * se_ols + 0.02)
    # The interaction shows: players 0 and 1 gain half of the pair's 2.0 each (weighted by p).
    assert exact[0] - w[0] > 0.5


def test_ame_shapley_on_the_threshold_game():
    """3 of 1,000 players matter, U = 1 if at least 2 of them are in S: SV = 1/3 each."""
    eps = 0.01
    game = Game(lambda m: (m[:, :3].sum(axis=1) >= 2).astype(float), 1000, "threshold")
    result = ame_shapley(game, n_subsets=8000, eps=eps, seed=0, cv=5, n_alphas=50)
    # The eps-truncated target is 0.3399 (within 4 eps of 1/3); LASSO shrinkage adds a little.
    assert result.params["bias_bound"] == pytest.approx(4 * eps * 1.0)
    assert np.all(np.abs(result.values[:3] - 1 / 3) < result.params["bias_bound"] + 0.01)
    assert np.abs(result.values[3:]).max() < 0.05
    assert np.linalg.norm(result.values - np.r_[[1 / 3] * 3, np.zeros(997)]) < 0.08


def test_ame_shapley_matches_exact_shapley_small_game():
    n = 8
    w = np.linspace(0.0, 1.4, n)

    def fn(masks):
        masks = np.asarray(masks, dtype=float)
        return masks @ w + 1.5 * masks[:, 2] * masks[:, 5]

    from math import factorial

    shapley = _exact_semivalue(fn, n, lambda s: factorial(s) * factorial(n - s - 1) / factorial(n))
    result = ame_shapley(Game(fn, n), n_subsets=6000, eps=0.01, estimator="ols", seed=1)
    assert np.abs(result.values - shapley).max() < 0.06
    assert result.values.sum() == pytest.approx(shapley.sum(), abs=0.15)


# -- Banzhaf -----------------------------------------------------------------------------------


def test_banzhaf_on_an_additive_game_gives_the_weights():
    w = np.array([1.0, -0.5, 0.0, 2.0, 0.25, 0.0])
    game = Game(lambda m: m @ w, len(w))
    msr = banzhaf(game, n_subsets=4000, seed=0)
    assert msr.method == "banzhaf" and msr.params["estimator"] == "msr"
    assert np.all(np.abs(msr.values - w) < 4 * msr.stderr + 1e-9)
    assert np.abs(msr.values - w).max() < 0.12
    ols = banzhaf(game, n_subsets=400, estimator="ols", seed=0)
    np.testing.assert_allclose(ols.values, w, atol=1e-9)  # noiseless and additive: exact
    assert ols.params["scale_c"] == pytest.approx(4.0)


def test_banzhaf_msr_matches_enumeration():
    n = 7
    w = np.linspace(-1, 1, n)

    def fn(masks):
        masks = np.asarray(masks, dtype=float)
        return masks @ w + masks[:, 0] * masks[:, 1] * masks[:, 2]

    exact = _exact_semivalue(fn, n, lambda s: 0.5 ** (n - 1))
    result = banzhaf(Game(fn, n), n_subsets=20_000, seed=2)
    assert np.all(np.abs(result.values - exact) < 4 * result.stderr)


# -- groups and the hierarchy ------------------------------------------------------------------


def test_groups_are_in_or_out_as_a_whole():
    w = np.zeros(30)
    w[[0, 1]] = 1.0
    w[12] = -0.5
    game = Game(lambda m: m @ w, 30)
    groups = {"a": range(0, 10), "b": range(10, 20), "c": range(20, 30)}
    # With one p the additive game is exactly linear in the encoding, so OLS is exact.
    result = ame(game, groups=groups, n_subsets=200, law="banzhaf", estimator="ols", seed=0)
    np.testing.assert_allclose(result.values, [2.0, -0.5, 0.0], atol=1e-9)
    assert list(result.player_ids) == ["a", "b", "c"]
    np.testing.assert_array_equal(result.extra["size"], [10, 10, 10])
    # The expansion from group masks to point masks, with overlapping groups.
    pg = PlayerGame(game, [[0, 1], [1, 2]], ["x", "y"])
    np.testing.assert_array_equal(
        pg.point_masks(np.array([[True, False], [False, True], [False, False]]))[:, :3],
        [[True, True, False], [False, True, True], [False, False, False]],
    )


def test_hierarchical_finds_groups_then_points():
    n, size = 200, 10
    w = np.zeros(n)
    signal_groups = [2, 9, 15]
    for g in signal_groups:
        w[[g * size + 1, g * size + 6]] = 1.0
    noise = np.random.default_rng(5)
    game = Game(lambda m: m @ w + 0.2 * noise.standard_normal(len(m)), n)
    groups = {f"g{g}": np.arange(g * size, (g + 1) * size) for g in range(n // size)}
    out = ame_hierarchical(
        game, groups, n_subsets_groups=300, n_subsets_points=600, fdr=None, cv=5, n_alphas=50
    )
    assert isinstance(out, HierarchicalResult)
    assert set(out.selected_groups) >= {f"g{g}" for g in signal_groups}
    np.testing.assert_allclose(out.groups.values[signal_groups], 2.0, atol=0.3)
    points = out.points
    assert points is not None and set(points.extra["group"]) == set(out.selected_groups)
    top = set(points.extra["position"][np.argsort(-points.values)[:6]])
    assert top == set(np.flatnonzero(w))
    assert (
        np.abs(points.values[np.isin(points.extra["position"], np.flatnonzero(w))] - 1).max() < 0.2
    )
    assert points.seed != out.groups.seed


# -- a real utility ----------------------------------------------------------------------------


def test_real_utility_metric_and_rows_reproducible_and_resumable(cancer_small):
    u = Utility(cancer_small, learner="knn", metric="accuracy")
    n = cancer_small.n_train
    first = ame(u, n_subsets=120, seed=7, cv=5, n_alphas=30)
    assert isinstance(first, ValuationResult) and first.method == "ame"
    assert first.values.shape == (n,) and np.isfinite(first.values).all()
    assert first.params["target"] == "metric" and first.params["n_subsets"] == 120
    assert first.n_fitted > 0
    np.testing.assert_array_equal(first.player_ids, cancer_small.train_ids)

    # Same seed again: identical values, and every utility comes from the store.
    again = ame(u, n_subsets=120, seed=7, cv=5, n_alphas=30)
    np.testing.assert_array_equal(again.values, first.values)
    assert again.n_fitted == 0 and again.params["resumed_subsets"] == 120

    # Two test rows: one shared set of fits, one result per row.
    rows = ame(u, n_subsets=120, target=[0, 5], seed=7, cv=5, n_alphas=30)
    assert set(rows) == {0, 5}
    assert rows[0].params["target"] == "test:0" and rows[5].params["target"] == "test:5"
    assert not np.array_equal(rows[0].values, rows[5].values)
    rows_again = ame(u, n_subsets=120, target=[0, 5], seed=7, cv=5, n_alphas=30)
    np.testing.assert_array_equal(rows_again[5].values, rows[5].values)
    # One row alone: the same numbers up to BLAS rounding (one column instead of two).
    single = ame(u, n_subsets=120, target=5, seed=7, cv=5, n_alphas=30)
    np.testing.assert_allclose(single.values, rows[5].values, rtol=1e-9, atol=1e-12)

    # Extending the run reuses the prefix: only the new subsets are fitted.
    longer = ame(u, n_subsets=160, seed=7, estimator="moment")
    assert 0 < longer.n_fitted <= 40
    items = u.store.journal_items(_only_design_key(u))
    assert [(i["start"], i["stop"]) for i in items][:1] == [(0, 120)]


def _only_design_key(u) -> str:
    from dataworth.methods.ame import _run_key
    from dataworth.methods.sampler import SubsetSampler

    return _run_key("ame", u, SubsetSampler(u.n_players, Grid()), 7)


def test_all_test_target_and_sizing(cancer_small):
    u = Utility(cancer_small, learner="knn", metric="accuracy")
    out = ame(u, k=2, size_factor=1.0, target="all-test", estimator="moment", seed=0)
    assert set(out) == set(range(cancer_small.n_test))
    m = out[0].params["n_subsets"]
    assert m == int(np.ceil(1.0 * 2 * np.log2(cancer_small.n_train)))
    assert out[0].params["k"] == 2 and out[0].params["size_factor"] == 1.0


def test_errors_are_one_line_and_helpful():
    game, _ = _linear_game(10)
    with pytest.raises(DataworthError, match="n_subsets"):
        ame(game)
    with pytest.raises(DataworthError, match="not both"):
        ame(game, n_subsets=10, k=2)
    with pytest.raises(DataworthError, match="Utility"):
        ame(game, n_subsets=10, target=[0])
    with pytest.raises(DataworthError, match="estimator"):
        ame(game, n_subsets=10, estimator="ridge")
    with pytest.raises(DataworthError, match="more subsets than players"):
        ame(game, n_subsets=8, estimator="ols")
    with pytest.raises(DataworthError, match="ame_shapley"):
        ame(game, n_subsets=10, law="logit_uniform")


def test_design_built_ahead_changes_no_number(cancer_small, monkeypatch):
    """AME builds its design and Gram matrices on a second thread while the subsets are fitted;
    the values are those of the design built afterwards, and a design built from other subsets
    is not used."""
    from types import SimpleNamespace

    from dataworth.methods.ame import design_ahead as ame_design_ahead
    from dataworth.methods.ame import estimate as ame_estimate
    from dataworth.methods.sampler import SubsetSampler

    used = []

    class Recorded(ame_design_ahead.DesignAhead):
        def result(self, p, masks):
            built = super().result(p, masks)
            used.append(built is not None)
            return built

    class NotAhead(ame_design_ahead.DesignAhead):
        def result(self, p, masks):
            return None

    u = Utility(cancer_small, learner="logreg", metric="neg_log_loss")
    monkeypatch.setattr(ame_estimate, "DesignAhead", Recorded)
    ahead = ame(u, n_subsets=150, seed=3, cv=5, n_alphas=30, fdr=0.2)
    assert ahead.n_fitted > 0 and used == [True]
    monkeypatch.setattr(ame_estimate, "DesignAhead", NotAhead)
    after = ame(u, n_subsets=150, seed=3, cv=5, n_alphas=30, fdr=0.2)
    np.testing.assert_array_equal(ahead.values, after.values)
    np.testing.assert_array_equal(ahead.extra["selected"], after.extra["selected"])
    assert ahead.params["alpha_min"] == after.params["alpha_min"]

    sampler = SubsetSampler(u.n_players, Grid())
    config = SimpleNamespace(law=Grid(), p_bins=None, fdr=None, encoding="ipw", cv=5)
    p, masks = sampler.draw(3, 0, 150)
    other = ame_design_ahead.DesignAhead(sampler, 4, 150, config, 64)
    assert other.result(p, masks) is None  # seed 4's subsets are not seed 3's
    built = ame_design_ahead.DesignAhead(sampler, 3, 150, config, 64).result(p, masks)
    assert built is not None and built.x.shape == (150, u.n_players)
    assert len(built.prepared.fold_grams) == 5
