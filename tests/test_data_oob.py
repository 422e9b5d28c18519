"""Data-OOB: reproducibility, the bootstrap's out-of-bag counts, and noisy-label detection."""

from __future__ import annotations

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from dataworth import Task
from dataworth.engine.game import Game
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.methods.trees.oob import bootstrap_counts, data_oob


def _flip(task: Task, share: float, seed: int) -> tuple[Task, np.ndarray]:
    rng = np.random.default_rng(seed)
    flipped = rng.choice(task.n_train, size=int(share * task.n_train), replace=False)
    y = task.y_train.copy()
    y[flipped] = 1 - y[flipped]
    noisy = Task.from_arrays(task.X_train, y, task.X_test, task.y_test)
    mask = np.zeros(task.n_train, bool)
    mask[flipped] = True
    return noisy, mask


def test_reproducible_with_a_fixed_seed_and_any_number_of_workers(cancer_small):
    first = data_oob(cancer_small, 40, seed=3)
    again = data_oob(cancer_small, 40, seed=3)
    # Threads keep the test fast (process pools take seconds to start); the bags reach the
    # workers in the same way under either joblib backend.
    with parallel_config(backend="threading"):
        parallel = data_oob(cancer_small, 40, seed=3, n_jobs=3)
    np.testing.assert_array_equal(first.values, again.values)
    np.testing.assert_array_equal(first.values, parallel.values)
    np.testing.assert_array_equal(first.counts, parallel.counts)
    other = data_oob(cancer_small, 40, seed=4)
    assert not np.array_equal(first.counts, other.counts)


def test_bags_are_a_pure_function_of_seed_and_index():
    counts, model_seed = bootstrap_counts(7, 5, 50)
    again, same_seed = bootstrap_counts(7, 5, 50)
    np.testing.assert_array_equal(counts, again)
    assert model_seed == same_seed and counts.sum() == 50
    assert not np.array_equal(counts, bootstrap_counts(7, 6, 50)[0])


def test_out_of_bag_counts_follow_the_bootstrap(cancer_400):
    B, n = 200, cancer_400.n_train
    result = data_oob(cancer_400, B, seed=0)
    expected = B * (1 - 1 / n) ** n  # 73.5: each bag leaves a point out with prob (1-1/n)^n
    # The mean over 400 points has a standard deviation of about 0.35 (per point about 6.8).
    assert abs(result.counts.mean() - expected) < 2.0
    assert result.counts.min() > expected - 6 * 6.8 and result.counts.max() < expected + 6 * 6.8
    np.testing.assert_array_equal(result.extra["n_oob"], result.counts)
    assert result.n_fitted == B and result.params["weights"] == "sample_weight"


def test_flipped_labels_get_low_values(cancer_400):
    noisy, flipped = _flip(cancer_400, 0.10, seed=0)
    result = data_oob(noisy, 100, seed=0)
    auc = roc_auc_score(flipped, -result.values)
    # Measured 0.990 with 100 trees here (0.96 to 0.99 over other flip draws, 200 or 400 rows,
    # 50 or 200 trees, trees or logistic regression). 0.85 keeps a wide margin over that spread
    # yet fails if values were unrelated to the labels (0.5) or their sign reversed.
    assert auc > 0.85
    assert result.values[flipped].mean() < 0.5 < result.values[~flipped].mean()
    assert np.all((result.values >= 0) & (result.values <= 1))


def test_sample_weights_and_repeated_rows_agree_for_logistic_regression(cancer_small):
    # Integer sample weights and repeated rows define the same objective; the fits agree to the
    # solver's tolerance, so the out-of-bag predictions do too.
    model = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000)
    weighted = data_oob(cancer_small, 20, seed=1, learner=model)
    repeated = data_oob(cancer_small, 20, seed=1, learner=model, use_sample_weight=False)
    assert weighted.params["weights"] == "sample_weight"
    assert repeated.params["weights"] == "repeated rows"
    np.testing.assert_array_equal(weighted.values, repeated.values)


def test_any_classifier_and_a_utility_work(wine_small):
    u = Utility(wine_small, learner="logreg")
    result = data_oob(u, 30, seed=0, learner=KNeighborsClassifier(3))
    assert result.params["weights"] == "repeated rows"  # KNN's fit takes no sample_weight
    np.testing.assert_array_equal(result.player_ids, wine_small.train_ids)
    assert np.isfinite(result.values).all()
    with pytest.raises(DataworthError, match="sample_weight"):
        data_oob(u, 5, learner=KNeighborsClassifier(3), use_sample_weight=True)


def test_points_never_out_of_bag_are_nan_with_a_warning(cancer_small):
    with pytest.warns(RuntimeWarning, match="every one of the 2 bags"):
        result = data_oob(cancer_small, 2, seed=0)
    assert np.isnan(result.values[result.counts == 0]).all()


def test_errors(cancer_small):
    with pytest.raises(DataworthError, match="n_estimators"):
        data_oob(cancer_small, 0)
    with pytest.raises(DataworthError, match="needs a Task"):
        data_oob(Game(lambda m: m.sum(axis=1), 3))


# ---------------------------------------------------------------- the random forest path


def test_forest_bootstrap_counts_are_what_each_tree_was_trained_on(cancer_small):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    from dataworth.methods.trees.forest_bags import bootstrap_counts_of

    X, y = cancer_small.X_train, cancer_small.y_train
    forest = RandomForestClassifier(n_estimators=5, max_features=None, random_state=0).fit(X, y)
    for tree in forest.estimators_:
        counts = bootstrap_counts_of(tree, len(y))
        assert counts.sum() == len(y) and (counts == 0).any()
        refit = DecisionTreeClassifier(random_state=tree.random_state).fit(
            X, y, sample_weight=counts.astype(np.float64)
        )
        assert refit.tree_.node_count == tree.tree_.node_count
        np.testing.assert_array_equal(refit.tree_.threshold, tree.tree_.threshold)
        np.testing.assert_array_equal(refit.predict(X), tree.predict(X))
        # A different sample would not do: the same tree on the next tree's counts differs.
    wrong = bootstrap_counts_of(forest.estimators_[1], len(y))
    assert not np.array_equal(wrong, bootstrap_counts_of(forest.estimators_[0], len(y)))


@pytest.fixture
def forest_path(monkeypatch):
    """The path without Numba: scikit-learn's forests grow the bagged trees."""
    import dataworth.methods.trees.oob as data_oob_module
    from dataworth.methods.trees import bagged as bagged_trees

    monkeypatch.setattr(data_oob_module, "TREES_MIN_ROWS", 0)
    monkeypatch.setattr(bagged_trees, "compiled_trees", lambda: None)


def test_forest_path_equals_bagging_by_hand(cancer_small, forest_path):
    from sklearn.tree import DecisionTreeClassifier

    from dataworth.methods.trees import forest_bags

    B = 30  # two forests: 25 trees, then 5
    result = data_oob(cancer_small, B, seed=5)
    assert result.params["path"] == "random forest"
    # Independent reference: the definition, with each bag's tree refitted on its bootstrap
    # counts (drawn as scikit-learn draws them from the seeds the forests gave their trees).
    X, y, n = cancer_small.X_train, cancer_small.y_train, cancer_small.n_train
    correct, n_oob = np.zeros(n), np.zeros(n)
    for chunk, size in enumerate((25, 5)):
        state = int(np.random.SeedSequence(5, spawn_key=(chunk,)).generate_state(1)[0])
        seeds = np.random.RandomState(state).randint(np.iinfo(np.int32).max, size=size)
        for tree_seed in seeds:
            rng = np.random.RandomState(tree_seed)
            counts = np.bincount(rng.randint(0, n, n), minlength=n)
            tree = DecisionTreeClassifier(random_state=tree_seed)
            tree.fit(X, y, sample_weight=counts.astype(np.float64))
            oob = counts == 0
            correct[oob] += tree.predict(X[oob]) == y[oob]
            n_oob[oob] += 1
    np.testing.assert_array_equal(result.counts, n_oob)
    seen = n_oob > 0
    np.testing.assert_array_equal(result.values[seen], correct[seen] / n_oob[seen])
    assert forest_bags._TREES_PER_FOREST == 25


def test_forest_path_is_reproducible_with_any_threads(cancer_small, forest_path):
    one = data_oob(cancer_small, 30, seed=2)
    two = data_oob(cancer_small, 30, seed=2, n_jobs=2)
    np.testing.assert_array_equal(one.values, two.values)
    np.testing.assert_array_equal(one.counts, two.counts)


def test_forest_path_finds_flipped_labels(cancer_400, forest_path):
    noisy, flipped = _flip(cancer_400, 0.1, seed=0)
    result = data_oob(noisy, 100, seed=0)
    assert result.params["path"] == "random forest"
    assert roc_auc_score(flipped, -result.values) > 0.8


def test_small_tasks_keep_the_per_bag_path(cancer_small):
    assert data_oob(cancer_small, 10, seed=0).params["path"] == "per-bag fits"


def test_forest_path_falls_back_when_samples_cannot_be_recovered(
    cancer_small, forest_path, monkeypatch
):
    from dataworth.methods.trees import forest_bags

    monkeypatch.setattr(forest_bags, "_sample_indices", lambda: None)
    with pytest.warns(RuntimeWarning, match="bootstrap samples"):
        result = data_oob(cancer_small, 10, seed=0)
    assert result.params["path"] == "per-bag fits"
    monkeypatch.undo()
    import dataworth.methods.trees.oob as data_oob_module

    assert data_oob_module.TREES_MIN_ROWS > cancer_small.n_train
    np.testing.assert_array_equal(result.values, data_oob(cancer_small, 10, seed=0).values)
