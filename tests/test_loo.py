"""Exact LOO and leave-group-out against direct refits, group builders, results on disk."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from dataworth.engine.game import Game
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.methods.groups import (
    build_groups,
    groups_by_cluster,
    groups_by_feature,
    groups_by_label,
    random_groups,
)
from dataworth.methods.loo import leave_group_out, loo
from dataworth.methods.result import ValuationResult


def _ref_score(task, mask):
    model = LogisticRegression(tol=1e-10, max_iter=10_000).fit(
        task.X_train[mask], task.y_train[mask]
    )
    return -log_loss(task.y_test, model.predict_proba(task.X_test), labels=[0, 1])


def test_loo_equals_difference_of_two_direct_refits(cancer_small):
    u = Utility(cancer_small, learner=LogisticRegression(tol=1e-10, max_iter=10_000))
    result = loo(u, n_random=6, seed=3)
    full = np.ones(cancer_small.n_train, bool)
    for position, value in zip(result.extra["position"], result.values, strict=True):
        without = full.copy()
        without[position] = False
        expected = _ref_score(cancer_small, full) - _ref_score(cancer_small, without)
        assert value == pytest.approx(expected, abs=1e-12)
    assert result.n_evaluations == 7 and result.n_fallback == 0
    np.testing.assert_array_equal(
        result.player_ids, cancer_small.train_ids[result.extra["position"]]
    )


def test_loo_random_points_follow_the_seed(cancer_small):
    u = Utility(cancer_small, learner="knn")
    a, b = loo(u, n_random=5, seed=1), loo(u, n_random=5, seed=1)
    np.testing.assert_array_equal(a.player_ids, b.player_ids)
    assert not np.array_equal(a.player_ids, loo(u, n_random=5, seed=2).player_ids)


def test_loo_by_ids_and_bad_ids(cancer_small):
    u = Utility(cancer_small, learner="knn")
    ids = cancer_small.train_ids[[4, 9]]
    result = loo(u, points=ids)
    np.testing.assert_array_equal(result.extra["position"], [4, 9])
    with pytest.raises(DataworthError, match="not training rows"):
        loo(u, points=[10_000_000])


def test_loo_of_an_additive_game_is_each_weight():
    weights = np.array([0.5, -1.0, 2.0, 0.0])
    g = Game(lambda m: m @ weights, n_players=4)
    np.testing.assert_allclose(loo(g).values, weights)


def test_leave_group_out_and_size(cancer_small):
    u = Utility(cancer_small, learner="knn", metric="accuracy")
    groups = random_groups(cancer_small.n_train, [0.1, 0.5, 1.0], seed=0)
    result = leave_group_out(u, groups)
    full = u.evaluate(np.ones((1, cancer_small.n_train), bool)).scores[0]
    for (name, members), value in zip(groups.items(), result.values, strict=True):
        mask = np.ones(cancer_small.n_train, bool)
        mask[members] = False
        assert value == pytest.approx(full - u.evaluate(mask[None]).scores[0])
        assert name in result.player_ids
    np.testing.assert_array_equal(result.extra["size"], [6, 30, 60])
    assert result.n_fallback == 1  # removing everything leaves the empty set


def test_group_errors(cancer_small):
    u = Utility(cancer_small, learner="knn")
    with pytest.raises(DataworthError, match="empty"):
        leave_group_out(u, [np.array([], int)])
    with pytest.raises(DataworthError, match="outside"):
        leave_group_out(u, [np.array([cancer_small.n_train])])
    with pytest.raises(DataworthError, match=r"\(0, 1\]"):
        random_groups(10, [0.0, 0.5])
    with pytest.raises(DataworthError, match="Unknown grouping"):
        build_groups(cancer_small, "colour")


def test_group_builders_partition_or_size_correctly(cancer_small):
    by_label = groups_by_label(cancer_small)
    assert sum(len(g) for g in by_label.values()) == cancer_small.n_train
    for c, members in enumerate(by_label.values()):
        assert (cancer_small.y_train[members] == c).all()
    bins = groups_by_feature(cancer_small, cancer_small.feature_names[0], bins=4)
    assert sorted(np.concatenate(list(bins.values()))) == list(range(cancer_small.n_train))
    clusters = groups_by_cluster(cancer_small, 3, seed=0)
    assert len(clusters) == 3
    assert sum(len(g) for g in clusters.values()) == cancer_small.n_train
    sizes = [len(g) for g in random_groups(200, seed=0).values()]
    assert sizes == [20 * k for k in range(1, 11)]


def test_result_roundtrip(cancer_small, tmp_path):
    u = Utility(cancer_small, learner="knn")
    result = loo(u, n_random=4, seed=0)
    result.save(tmp_path / "loo")
    back = ValuationResult.load(tmp_path / "loo.parquet")
    np.testing.assert_array_equal(back.values, result.values)
    np.testing.assert_array_equal(back.player_ids, result.player_ids)
    assert back.manifest["utility_fingerprint"] == u.fingerprint
    assert (tmp_path / "loo.csv").exists()
    frame = back.to_frame()
    assert list(frame.columns[:4]) == ["player_id", "value", "stderr", "count"]


def test_batched_logreg_loo_equals_tightly_converged_sklearn(cancer_small):
    """Exact means exact: LOO from the batched solver is the difference of two optimal fits."""

    def score(mask):
        model = LogisticRegression(solver="newton-cholesky", tol=1e-14, max_iter=1000)
        model.fit(cancer_small.X_train[mask], cancer_small.y_train[mask])
        return -log_loss(cancer_small.y_test, model.predict_proba(cancer_small.X_test))

    result = loo(Utility(cancer_small, learner="logreg"))
    full = np.ones(cancer_small.n_train, bool)
    reference = []
    for position in result.extra["position"]:
        without = full.copy()
        without[position] = False
        reference.append(score(full) - score(without))
    reference = np.array(reference)
    # Influences here are 1e-6 to 1e-2; solver differences must be orders of magnitude smaller
    # (the default tolerance 1e-10 gives about 1.5e-10 here).
    np.testing.assert_allclose(result.values, reference, rtol=0, atol=1e-9)
    assert np.abs(reference).max() > 1e-4


def test_loo_stops_by_the_clock_and_keeps_the_exact_values_it_has(monkeypatch):
    from types import SimpleNamespace

    from dataworth.methods import loo as loo_module

    n = 3000
    weights = np.linspace(-1.0, 1.0, n)
    clock = SimpleNamespace(now=0.0)

    def score(masks):
        clock.now += 1.0  # one second per block of one-out subsets
        return masks @ weights

    monkeypatch.setattr(loo_module, "perf_counter", lambda: clock.now)
    game = Game(score, n_players=n)
    # The full set (1 s), then blocks of 1,024 points at 1 s each: the one that ends at 2 s
    # passes the budget of 1.5 s, so the first 1,024 points are valued and the rest are not.
    partial = loo_module.loo(game, time_budget=1.5)
    assert len(partial) == 1024 and partial.params["stopped_by"] == "time budget 1.5 s"
    np.testing.assert_allclose(partial.values, weights[:1024], atol=1e-12)
    assert len(loo_module.loo(game, time_budget=100.0)) == n


@pytest.mark.parametrize("metric", ["neg_log_loss", "accuracy", "roc_auc"])
def test_scoring_on_threads_has_the_same_bits(cancer_small, metric, monkeypatch):
    import dataworth.engine.utility as utility_module

    one = loo(Utility(cancer_small, learner="logreg", metric=metric)).values
    monkeypatch.setattr(utility_module, "_SCORE_THREAD_ENTRIES", 1)
    monkeypatch.setattr(utility_module, "usable_threads", lambda: 3)
    assert np.array_equal(loo(Utility(cancer_small, learner="logreg", metric=metric)).values, one)
