"""TMC-Shapley and exact Shapley against games with known answers and against each other."""

from __future__ import annotations

import numpy as np
import pytest

from dataworth.engine.game import Game
from dataworth.engine.store import EvaluationStore
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.methods.compare import compare_values
from dataworth.methods.loo import loo
from dataworth.methods.shapley import exact_shapley, group_sums, tmc_shapley

WEIGHTS = np.array([0.5, -1.0, 2.0, 0.0, 0.25, 1.5])


def additive():
    return Game(lambda m: m @ WEIGHTS, n_players=len(WEIGHTS))


def threshold(n=1000, key=(3, 500, 999)):
    key = np.array(key)
    return Game(lambda m: (m[:, key].sum(axis=1) >= 2).astype(float), n_players=n)


def test_additive_game_is_recovered_exactly_by_both():
    np.testing.assert_allclose(exact_shapley(additive()).values, WEIGHTS, atol=1e-12)
    np.testing.assert_allclose(tmc_shapley(additive(), permutations=3, tol=0).values, WEIGHTS)


def test_exact_shapley_of_a_glove_game():
    # Player 0 owns a left glove, players 1 and 2 a right glove each; a pair is worth 1.
    g = Game(lambda m: np.minimum(m[:, 0], m[:, 1] | m[:, 2]).astype(float), n_players=3)
    np.testing.assert_allclose(exact_shapley(g).values, [2 / 3, 1 / 6, 1 / 6])


def test_threshold_game_three_of_a_thousand():
    result = tmc_shapley(threshold(), permutations=300, seed=1)
    key = [3, 500, 999]
    assert np.all(np.abs(result.values[key] - 1 / 3) < 4 * result.stderr[key] + 1e-9)
    others = np.delete(result.values, key)
    assert np.all(others == 0)
    assert result.values.sum() == pytest.approx(1.0)  # efficiency: U(D) - U(empty) = 1


def test_truncation_follows_the_papers_rule():
    # U(S) = |S| / 10: with tol 0.5 a walk stops once a prefix exceeds 0.5, i.e. after 6
    # players, so every permutation hands out exactly 0.6 and then nothing.
    g = Game(lambda m: m.sum(axis=1) / 10.0, n_players=10)
    result = tmc_shapley(g, permutations=20, tol=0.5, seed=0)
    assert result.values.sum() == pytest.approx(0.6)
    assert set(np.round(result.values * 20 / 0.1).astype(int)) <= set(range(21))
    assert result.params["truncated_share"] == pytest.approx(0.4)


def test_every_untruncated_permutation_is_efficient(cancer_small):
    u = Utility(cancer_small, learner="knn", metric="neg_log_loss")
    full = u.evaluate(np.ones((1, cancer_small.n_train), bool)).scores[0]
    empty = u.evaluate(np.zeros((1, cancer_small.n_train), bool)).scores[0]
    for seed in range(3):
        result = tmc_shapley(u, permutations=1, tol=0, seed=seed)
        assert result.values.sum() == pytest.approx(full - empty, abs=1e-12)


def test_tmc_agrees_with_exact_on_ten_real_points(cancer_small):
    task = cancer_small
    import dataclasses

    small = dataclasses.replace(
        task,
        X_train=task.X_train[:10],
        y_train=task.y_train[:10],
        train_ids=task.train_ids[:10],
        metadata={},
    )
    u = Utility(small, learner="knn", metric="neg_log_loss")
    exact = exact_shapley(u)
    assert exact.values.sum() == pytest.approx(
        exact.manifest["full_value"] - exact.manifest["empty_value"]
    )
    tmc = tmc_shapley(u, permutations=400, tol=0, seed=0)
    assert np.all(np.abs(tmc.values - exact.values) <= 4 * tmc.stderr + 1e-9)


def test_singleton_groups_give_point_values_and_partitions_are_efficient(cancer_small):
    u = Utility(cancer_small, learner="knn", metric="accuracy")
    n = cancer_small.n_train
    points = tmc_shapley(u, permutations=3, seed=5)
    singletons = tmc_shapley(u, permutations=3, seed=5, groups=[[i] for i in range(n)])
    np.testing.assert_array_equal(points.values, singletons.values)
    partition = {f"part{k}": np.arange(k, n, 6) for k in range(6)}
    exact = exact_shapley(u, groups=partition)
    full_minus_empty = exact.manifest["full_value"] - exact.manifest["empty_value"]
    assert exact.values.sum() == pytest.approx(full_minus_empty)
    np.testing.assert_array_equal(exact.extra["size"], [10] * 6)
    assert len(group_sums(points, partition)) == 6


def test_resumed_run_gives_identical_values(cancer_small, tmp_path):
    path = tmp_path / "store.sqlite"
    with Utility(cancer_small, learner="knn", store=path) as u:
        tmc_shapley(u, permutations=3, tol=0.01, seed=7)
    with EvaluationStore(path) as store:
        assert len(store.journal_items(next(iter(_journal_keys(path))))) == 3
    with Utility(cancer_small, learner="knn", store=path) as u:
        resumed = tmc_shapley(u, permutations=6, tol=0.01, seed=7)
    with Utility(cancer_small, learner="knn") as u:
        fresh = tmc_shapley(u, permutations=6, tol=0.01, seed=7)
    np.testing.assert_array_equal(resumed.values, fresh.values)
    assert resumed.n_fitted < fresh.n_fitted


def _journal_keys(path):
    import sqlite3

    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT run_key FROM journal_items")}


def test_stopping_options_and_errors():
    g = additive()
    with pytest.raises(DataworthError, match="permutations"):
        tmc_shapley(g, permutations=0)
    with pytest.raises(DataworthError, match="convergence level or a time budget"):
        tmc_shapley(g, permutations=None)
    converged = tmc_shapley(g, permutations=None, convergence=0.05, tol=0)
    # Additive: the mean never changes, so the rule stops at the first check past 100.
    assert 101 <= converged.params["permutations"] <= 108
    timed = tmc_shapley(g, permutations=None, time_budget=0.0, tol=0)
    assert timed.params["permutations"] >= 1
    with pytest.raises(DataworthError, match="too many"):
        exact_shapley(Game(lambda m: m.sum(axis=1), n_players=21))


def test_compare_with_loo(cancer_small):
    u = Utility(cancer_small, learner="knn", metric="neg_log_loss")
    shapley = tmc_shapley(u, permutations=5, seed=0)
    same = compare_values(shapley, shapley)
    assert same["spearman"] == pytest.approx(1.0) and same["top_overlap"] == 1.0
    report = compare_values(shapley, loo(u))
    assert report["n_common"] == cancer_small.n_train and -1 <= report["kendall"] <= 1


class _Clock:
    """A fake clock for TMC's time budget: evaluation number ``call`` of the game costs
    ``cost(call)`` seconds per subset it holds."""

    def __init__(self, cost):
        self.now, self.calls, self.cost = 0.0, 0, cost

    def perf_counter(self) -> float:
        return self.now

    def install(self, monkeypatch) -> None:
        """Make TMC and its stopping rules read this clock."""
        from types import SimpleNamespace

        from dataworth.methods.shapley import stopping
        from dataworth.methods.shapley import tmc as shapley

        for module in (shapley, stopping):
            monkeypatch.setattr(module, "time", SimpleNamespace(perf_counter=self.perf_counter))

    def game(self, n: int) -> Game:
        weights = np.linspace(-1.0, 2.0, n)

        def fn(masks):
            self.calls += 1
            self.now += self.cost(self.calls) * len(masks)
            return masks @ weights

        return Game(fn, n_players=n)


def test_time_budget_stops_mid_batch_and_keeps_the_first_permutations(monkeypatch):
    # 100 players without truncation: a permutation is 100 prefixes, asked in 4 rounds (16, 24,
    # 36 and 24 prefixes per walk). The first permutation (alone, to measure) costs 1/32 s a
    # prefix, 3.1 s in all; then a prefix costs 1/8 s, so the two permutations the measured
    # rate affords are still in flight at the deadline of 10 s and are dropped.
    clock = _Clock(lambda call: 1 / 32 if call <= 5 else 1 / 8)
    clock.install(monkeypatch)
    timed = tmc_shapley(clock.game(100), permutations=None, time_budget=10.0, tol=0, seed=3)
    assert timed.params["permutations"] == 1
    assert timed.params["stopped_by"] == "time budget 10 s"
    assert clock.now <= 10.0 + 2 * 24 / 8  # at most one round (two walks' blocks) past it
    fixed = tmc_shapley(_Clock(lambda call: 0.0).game(100), permutations=1, tol=0, seed=3)
    np.testing.assert_array_equal(timed.values, fixed.values)


def test_time_budget_starts_no_permutation_it_cannot_pay_for(monkeypatch):
    # 1/32 s a prefix, 40 prefixes (1.25 s) a permutation, the two ends 1/16 s. After the first
    # permutation (t = 1.3125) the time left pays for 6 more (t = 8.8125); the 1.19 s then left
    # cannot pay for another, so none starts.
    clock = _Clock(lambda call: 1 / 32)
    clock.install(monkeypatch)
    timed = tmc_shapley(clock.game(40), permutations=10, time_budget=10.0, tol=0, seed=5)
    assert timed.params["permutations"] == 7 and clock.now == 8.8125
    fixed = tmc_shapley(_Clock(lambda call: 0.0).game(40), permutations=7, tol=0, seed=5)
    np.testing.assert_array_equal(timed.values, fixed.values)
