"""Data-OOB's compiled trees: exact CART against brute force, scikit-learn and the definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier

from dataworth import Task
from dataworth.methods.trees import bagged as bagged_trees
from dataworth.methods.trees.bagged import bootstrap_counts
from dataworth.methods.trees.oob import data_oob

kernels = pytest.importorskip("dataworth.methods.trees.kernels")

_MASK = (1 << 64) - 1


def _priority(seed: int, node: int, feature: int) -> int:
    """SplitMix64's finaliser of (seed, node, feature), in Python integers."""
    z = (seed ^ ((node * 0x9E3779B97F4A7C15 + feature) & _MASK)) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def reference_tree(X32, y, weight, n_classes, seed):
    """Greedy CART by brute force: every node, every feature, every threshold, breadth first.

    Splits are scored by the weighted Gini criterion (``sum_k L_k^2 / W_L + sum_k R_k^2 / W_R``,
    larger is better); a threshold lies halfway between two of the node's values more than
    1e-7 apart; the lowest such threshold wins within a feature, and the hash rank decides
    between features whose best scores are equal.
    """
    d = X32.shape[1]
    feature, threshold, left, right, label = [], [], [], [], []

    def new_node(rows):
        totals = np.bincount(y[rows], weights=weight[rows], minlength=n_classes)
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        label.append(int(np.argmax(totals)))
        return len(label) - 1, totals

    queue = [(*new_node(np.flatnonzero(weight > 0)), np.flatnonzero(weight > 0))]
    while queue:
        node, totals, rows = queue.pop(0)
        if len(rows) < 2 or (totals > 0).sum() < 2:
            continue
        best = None
        for f in range(d):
            ordered = rows[np.argsort(X32[rows, f], kind="stable")]
            v = X32[ordered, f].astype(np.float64)
            rank = _priority(seed, node, f)
            for p in range(1, len(ordered)):
                if not v[p] > v[p - 1] + 1e-7:
                    continue
                lc = np.bincount(y[ordered[:p]], weights=weight[ordered[:p]], minlength=n_classes)
                rc = totals - lc
                score = sum(c * c for c in lc) / lc.sum() + sum(c * c for c in rc) / rc.sum()
                if (
                    best is None
                    or score > best[0]
                    or (score == best[0] and f != best[2] and rank < best[1])
                ):
                    cut = v[p - 1] / 2.0 + v[p] / 2.0
                    if cut == v[p] or math.isinf(cut):
                        cut = v[p - 1]
                    best = (score, rank, f, cut)
        if best is None:
            continue
        _, _, f, cut = best
        feature[node], threshold[node] = f, cut
        goes_left = X32[rows, f].astype(np.float64) <= cut
        (left[node], lt), (right[node], rt) = new_node(rows[goes_left]), new_node(rows[~goes_left])
        queue += [(left[node], lt, rows[goes_left]), (right[node], rt, rows[~goes_left])]
    return tuple(np.array(a) for a in (feature, threshold, left, right, label))


def _grow(X, y, weight, n_classes, seed):
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    order = bagged_trees._sorted_features(X32)
    return X32, kernels.grow_tree(X32, order, np.asarray(y, np.int64), weight, n_classes, seed)


def _tied_table(rng):
    """Coarse values (many equal scores), a constant column, near-equal values, clashing rows."""
    X = np.round(rng.normal(size=(120, 4)), 1)
    X[:, 2] = 3.0
    X[:10, 3] = np.where(np.arange(10) % 2 == 0, 0.0, 5e-8)  # closer than 1e-7: never split
    y = rng.integers(0, 3, 120)
    X[110:] = X[100:110]  # the same rows again ...
    y[110:] = (y[100:110] + 1) % 3  # ... with other labels: leaves that cannot be split
    return X, y


@pytest.mark.parametrize("case", ["cancer", "wine", "ties"])
def test_kernel_tree_is_the_brute_force_tree(case, cancer_400, wine_small):
    rng = np.random.default_rng(3)
    if case == "ties":
        X, y = _tied_table(rng)
        k = 3
    else:
        task = cancer_400 if case == "cancer" else wine_small
        X, y, k = task.X_train, task.y_train, task.n_classes
    for bag in range(3):
        weight = bootstrap_counts(11, bag, len(y))[0].astype(np.float64)
        X32, tree = _grow(X, y, weight, k, seed=bag)
        expected = reference_tree(X32, y, weight, k, seed=bag)
        assert len(tree[0]) > 3
        for ours, theirs in zip(tree, expected, strict=True):
            np.testing.assert_array_equal(ours, theirs)
        leaves = tree[2] == -1
        if case != "ties":  # distinct rows: every in-bag row is predicted right
            inside = np.flatnonzero(weight > 0)
            hits = kernels.predict_rows(X32, inside, *tree) == y[inside]
            assert hits.all() and leaves.sum() == (len(tree[0]) + 1) // 2


@pytest.mark.parametrize("column", [0, 7, 21])
def test_kernel_tree_on_one_feature_is_scikit_learns(column, cancer_small):
    # One feature leaves no tie between features to break: the trees must be the same.
    X = cancer_small.X_train[:, [column]]
    y = cancer_small.y_train
    for bag in range(3):
        weight = bootstrap_counts(5, bag, len(y))[0].astype(np.float64)
        X32, tree = _grow(X, y, weight, 2, seed=bag)
        ref = DecisionTreeClassifier(random_state=0).fit(X32, y, sample_weight=weight)
        internal = ref.tree_.children_left != -1
        assert ref.tree_.node_count == len(tree[0])
        np.testing.assert_array_equal(
            np.sort(ref.tree_.threshold[internal]), np.sort(tree[1][tree[2] != -1])
        )
        grid = np.linspace(X32.min() - 1, X32.max() + 1, 5001, dtype=np.float32)[:, None]
        every = np.concatenate([X32, grid]).astype(np.float32)
        ours = kernels.predict_rows(every, np.arange(len(every)), *tree)
        np.testing.assert_array_equal(ours, ref.predict(every))


@pytest.fixture
def tree_path(monkeypatch):
    import dataworth.methods.trees.oob as data_oob_module

    monkeypatch.setattr(data_oob_module, "TREES_MIN_ROWS", 0)


def test_tree_path_is_the_definition_with_brute_force_trees(cancer_small, tree_path):
    B = 12
    result = data_oob(cancer_small, B, seed=4)
    assert result.params["path"] == "compiled trees"
    X, y, n = cancer_small.X_train, cancer_small.y_train, cancer_small.n_train
    X32 = X.astype(np.float32)
    correct, n_oob = np.zeros(n), np.zeros(n)
    for b in range(B):
        counts, model_seed = bootstrap_counts(4, b, n)
        tree = reference_tree(X32, y, counts.astype(np.float64), 2, model_seed)
        oob = np.flatnonzero(counts == 0)
        correct[oob] += kernels.predict_rows(X32, oob, *tree) == y[oob]
        n_oob[oob] += 1
    np.testing.assert_array_equal(result.counts, n_oob)
    seen = n_oob > 0
    np.testing.assert_array_equal(result.values[seen], correct[seen] / n_oob[seen])


def test_tree_path_is_reproducible_with_any_threads(wine_small, tree_path):
    one = data_oob(wine_small, 30, seed=2, n_jobs=1)
    two = data_oob(wine_small, 30, seed=2, n_jobs=2)
    np.testing.assert_array_equal(one.values, two.values)
    np.testing.assert_array_equal(one.counts, two.counts)


def test_tree_path_finds_flipped_labels(cancer_400, tree_path):
    rng = np.random.default_rng(0)
    flipped = rng.choice(cancer_400.n_train, size=40, replace=False)
    y = cancer_400.y_train.copy()
    y[flipped] = 1 - y[flipped]
    noisy = Task.from_arrays(cancer_400.X_train, y, cancer_400.X_test, cancer_400.y_test)
    result = data_oob(noisy, 100, seed=0)
    assert result.params["path"] == "compiled trees"
    mask = np.zeros(noisy.n_train, bool)
    mask[flipped] = True
    assert roc_auc_score(mask, -result.values) > 0.8


def test_one_class_bags_use_the_prior_and_bad_features_the_forest(tree_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = np.zeros(40, dtype=np.int64)
    y[0] = 1  # most bags hold only class 0
    task = Task.from_arrays(X, y, X[:5], y[:5])
    result = data_oob(task, 20, seed=0)
    assert result.params["path"] == "compiled trees" and result.n_fallback > 0
    # The prior-only model of a class-0 bag predicts class 0: right everywhere but row 0.
    assert result.values[0] < 0.5 and np.nanmin(result.values[1:]) > 0.5
    X = X.copy()
    X[3, 1] = np.inf
    with np.errstate(all="ignore"):
        assert bagged_trees.tree_oob_bags(X, y, 2, 5, 0, 1) is None


def test_tree_path_is_close_to_scikit_learns_trees_on_the_same_bags(cancer_400, monkeypatch):
    # Same bags (the seed's bootstrap samples), so only the breaking of equal splits differs.
    per_bag = data_oob(cancer_400, 100, seed=0)
    import dataworth.methods.trees.oob as data_oob_module

    monkeypatch.setattr(data_oob_module, "TREES_MIN_ROWS", 0)
    trees = data_oob(cancer_400, 100, seed=0)
    assert (per_bag.params["path"], trees.params["path"]) == ("per-bag fits", "compiled trees")
    np.testing.assert_array_equal(per_bag.counts, trees.counts)
    assert np.corrcoef(per_bag.values, trees.values)[0, 1] > 0.97
    assert np.mean(np.abs(per_bag.values - trees.values)) < np.mean(per_bag.stderr)


def test_threads_shrink_to_the_memory_available(monkeypatch):
    from dataworth.learners.memory import MEMORY_LIMIT_ENV

    n, d = 50_000, 20
    one_tree = bagged_trees.tree_bytes(n, d)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(8 * one_tree))  # a quarter holds two trees
    assert bagged_trees._threads_for_memory(4, n, d) == 2
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(one_tree))  # not even one: still one thread
    assert bagged_trees._threads_for_memory(4, n, d) == 1
