"""KNN-Shapley's closed form against exact enumeration of the same KNN game."""

from __future__ import annotations

import numpy as np
import pytest

from dataworth import Task
from dataworth.engine.game import Game
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.learners.knn import BatchedKNN
from dataworth.methods.knn.shapley import knn_shapley, knn_shapley_matrix
from dataworth.methods.shapley import exact_shapley


def _tiny_task(n_train: int = 9, n_test: int = 7, seed: int = 0, duplicates: bool = True) -> Task:
    rng = np.random.default_rng(seed)
    X_train = rng.normal(size=(n_train, 2)).round(1)
    if duplicates:
        X_train[3] = X_train[1]  # exact ties: ordered by training position
    y_train = rng.integers(0, 3, size=n_train)
    y_train[:3] = [0, 1, 2]
    X_test = rng.normal(size=(n_test, 2)).round(1)
    y_test = rng.integers(0, 3, size=n_test)
    return Task.from_arrays(X_train, y_train, X_test, y_test)


def _order(task: Task) -> np.ndarray:
    return BatchedKNN(1).neighbour_order(task)


def _knn_game(task: Task, k: int, rows=None) -> Game:
    """The paper's utility by brute force: (1/k) * matches among the min(k, |S|) nearest."""
    order = _order(task)
    rows = np.arange(task.n_test) if rows is None else np.asarray(rows)

    def fn(masks: np.ndarray) -> np.ndarray:
        out = np.zeros(len(masks))
        for s, mask in enumerate(masks):
            for t in rows:
                members = [i for i in order[t] if mask[i]][:k]  # empty set -> 0
                out[s] += sum(task.y_train[i] == task.y_test[t] for i in members) / k
        return out / len(rows)

    return Game(fn, n_players=task.n_train, name=f"knn{k}")


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_equals_exact_enumeration(k, seed):
    task = _tiny_task(n_train=9 if seed == 0 else 10, seed=seed)
    exact = exact_shapley(_knn_game(task, k)).values
    result = knn_shapley(task, k=k)
    np.testing.assert_allclose(result.values, exact, atol=1e-12)
    # Efficiency with u(empty) = 0.
    full = _knn_game(task, k).evaluate(np.ones((1, task.n_train), bool)).scores[0]
    assert result.values.sum() == pytest.approx(full)
    assert result.n_fitted == 0 and result.method == "knn_shapley"


@pytest.mark.parametrize("k", [1, 4])
def test_single_test_row_equals_enumeration_of_that_row(k):
    task = _tiny_task(seed=2)
    for row in (0, 4):
        exact = exact_shapley(_knn_game(task, k, rows=[row])).values
        np.testing.assert_allclose(knn_shapley(task, k=k, test_rows=row).values, exact, atol=1e-12)
    per_row = knn_shapley(task, k=k, test_rows=[0, 4])
    assert set(per_row) == {0, 4}
    np.testing.assert_allclose(
        per_row[4].values, knn_shapley(task, k=k, test_rows=4).values, atol=0
    )
    assert per_row[4].params["target"] == "test:4"


def test_game_is_the_knn_learners_vote_share_for_large_subsets():
    # Ties the test's game (and so the closed form) to BatchedKNN's neighbour order: for subsets
    # of at least k members and two classes the game is the mean predicted probability of the
    # true class.
    task, k = _tiny_task(seed=3), 3
    u = Utility(task, learner=BatchedKNN(k), metric="accuracy")
    rng = np.random.default_rng(0)
    masks = rng.random((40, task.n_train)) < 0.7
    masks = masks[masks.sum(axis=1) >= k]
    ev = u.evaluate(masks, per_prediction=True)
    fitted = ~ev.fallback
    game = _knn_game(task, k).evaluate(masks[fitted]).scores
    np.testing.assert_allclose(ev.per_prediction[fitted].mean(axis=1), game, atol=1e-12)


def test_blocks_do_not_change_values(cancer_small):
    whole = knn_shapley(cancer_small, k=5, block_rows=10_000).values
    blocked = knn_shapley(cancer_small, k=5, block_rows=7).values
    np.testing.assert_allclose(blocked, whole, atol=1e-14)
    matrix = knn_shapley_matrix(cancer_small, k=5, block_rows=3)
    np.testing.assert_allclose(matrix.mean(axis=0), whole, atol=1e-14)


def test_flipped_labels_get_low_values(cancer_400):
    rng = np.random.default_rng(0)
    flipped = rng.choice(cancer_400.n_train, size=40, replace=False)
    y = cancer_400.y_train.copy()
    y[flipped] = 1 - y[flipped]
    noisy = Task.from_arrays(cancer_400.X_train, y, cancer_400.X_test, cancer_400.y_test)
    values = knn_shapley(noisy, k=10).values
    is_flipped = np.zeros(noisy.n_train, bool)
    is_flipped[flipped] = True
    # Mean rank of the flipped points among the lowest values (ROC AUC by Mann-Whitney).
    ranks = np.argsort(np.argsort(-values)) + 1
    n_pos, n_neg = is_flipped.sum(), (~is_flipped).sum()
    auc = (ranks[is_flipped].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    # Measured 0.996 (k=10; 0.995 for k=5): flipped labels disagree with their nearest
    # neighbours, so they get negative values. 0.9 leaves a wide margin and still fails if the
    # sign or the ordering of the recursion were wrong (those give an AUC near 0 or 0.5).
    assert auc > 0.9


def test_accepts_a_utility_and_reports_ids(cancer_small):
    u = Utility(cancer_small, learner="knn")
    result = knn_shapley(u, k=3)
    np.testing.assert_array_equal(result.player_ids, cancer_small.train_ids)
    assert result.params["k"] == 3


def test_errors():
    task = _tiny_task()
    with pytest.raises(DataworthError, match="k must be"):
        knn_shapley(task, k=0)
    with pytest.raises(DataworthError, match="does not exist"):
        knn_shapley(task, test_rows=99)
    with pytest.raises(DataworthError, match="needs a Task"):
        knn_shapley(Game(lambda m: m.sum(axis=1), 3))


def test_compiled_recursion_is_bitwise_the_numpy_one(cancer_small, monkeypatch):
    pytest.importorskip("numba")
    import dataworth.methods.knn.shapley as module

    # Duplicated training rows give exactly tied distances: the stable re-sort must order them
    # by position as before.
    X = np.vstack([cancer_small.X_train, cancer_small.X_train[:15]])
    y = np.concatenate([cancer_small.y_train, 1 - cancer_small.y_train[:15]])
    task = Task.from_arrays(X, y, cancer_small.X_test, cancer_small.y_test)
    sq = (
        (task.X_test**2).sum(axis=1)[:, None]
        - 2.0 * task.X_test @ task.X_train.T
        + (task.X_train**2).sum(axis=1)[None, :]
    )
    order = module._neighbour_order(task.X_train, task.X_test)
    np.testing.assert_array_equal(order, np.argsort(sq, axis=1, kind="stable"))
    compiled = knn_shapley_matrix(task, k=5)
    monkeypatch.setattr(module, "_rank_values_kernel", lambda: None)
    assert np.array_equal(knn_shapley_matrix(task, k=5), compiled)


def test_threads_give_the_same_values(cancer_small):
    one = knn_shapley(cancer_small, k=5, block_rows=3)
    two = knn_shapley(cancer_small, k=5, block_rows=3, n_jobs=2)
    assert np.array_equal(one.values, two.values)
    with pytest.raises(DataworthError, match="n_jobs"):
        knn_shapley(cancer_small, k=5, n_jobs=0)


def test_compiled_order_is_numpys_stable_argsort_with_ties_and_zeros(cancer_small):
    pytest.importorskip("numba")
    import dataworth.methods.knn.shapley as module

    # Training rows that copy test rows (distances 0 or a rounding below it) and each other
    # (exact ties): the radix sort must give NumPy's stable order, ties by position.
    rng = np.random.default_rng(0)
    X_test = cancer_small.X_test
    X = np.vstack([cancer_small.X_train, X_test[:6], cancer_small.X_train[:9], X_test[:3]])
    X = X[rng.permutation(len(X))]
    sq = (X_test**2).sum(axis=1)[:, None] - 2.0 * X_test @ X.T + (X**2).sum(axis=1)[None, :]
    assert (sq <= 0).any()
    order = module._neighbour_order(X, X_test)
    np.testing.assert_array_equal(order, np.argsort(sq, axis=1, kind="stable"))
    fallback = module._order_kernels
    try:
        module._order_kernels = lambda: None  # the NumPy path orders them the same way
        np.testing.assert_array_equal(module._neighbour_order(X, X_test), order)
    finally:
        module._order_kernels = fallback
