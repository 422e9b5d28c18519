"""Chains of nested multiclass subsets: softmax fits warm-started along a permutation's prefixes.

The references are independent fits: the batched solver started from the full-data solution (a
different algorithm: stacked Newton and chord steps), and scikit-learn's Newton solver at a tight
tolerance. A chain only changes where each fit starts, so every member must equal them to the
solver tolerance, including members that lack some classes (fitted over the classes they hold, a
binary model when they hold two), and a member's result must depend on its chain alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import dataworth as dw
import dataworth.learners.logreg.learner as logreg_module
from dataworth import Task
from dataworth.learners.logreg.chains import chain_kernel, class_runs
from dataworth.learners.logreg.learner import BatchedLogisticRegression

needs_numba = pytest.mark.skipif(chain_kernel() is None, reason="Numba is not installed")

# Chained and independent fits both meet the gradient tolerance 1e-10; their parameters agree to
# this share of each member's largest parameter (observed: 2e-8 on wine, 3e-9 on iris).
PARAM_RTOL = 1e-7


@pytest.fixture(scope="module")
def digits5() -> Task:
    """Five digit classes, 21 of the 64 pixels: a chain's early prefixes lack some classes."""
    X, y = load_digits(n_class=5, return_X_y=True)
    X = X[:, 1::3]
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:120], order[120:180]
    scaler = StandardScaler().fit(X[train])
    return Task.from_arrays(
        scaler.transform(X[train]), y[train], scaler.transform(X[test]), y[test], name="digits5"
    )


def _prefix_chains(task, n_chains, length, seed, start=2):
    """Prefixes ``start .. start+length-1`` of random permutations with at least two classes."""
    rng = np.random.default_rng(seed)
    masks, labels = [], []
    for c in range(n_chains):
        order = rng.permutation(task.n_train)
        for j in range(start, start + length):
            mask = np.zeros(task.n_train, bool)
            mask[order[:j]] = True
            if len(np.unique(task.y_train[mask])) >= 2:
                masks.append(mask)
                labels.append(c)
    return np.array(masks), np.array(labels)


def _assert_close(chained, reference):
    scale = np.abs(reference).max(axis=1, keepdims=True)
    assert (np.abs(chained - reference) <= PARAM_RTOL * scale).all(), np.abs(
        chained - reference
    ).max()


@needs_numba
@pytest.mark.parametrize("fixture", ["iris_small", "wine_small", "digits5"])
def test_chain_members_equal_independent_fits(fixture, request):
    task = request.getfixturevalue(fixture)
    masks, labels = _prefix_chains(task, 3, task.n_train - 2, seed=1)
    present = np.stack([(masks & (task.y_train == c)).any(1) for c in range(task.n_classes)], 1)
    # Members with two classes (a binary model), some, and all of them.
    assert {2, task.n_classes} <= set(present.sum(axis=1).tolist())
    model = BatchedLogisticRegression()
    args = (task.X_train, task.y_train, task.n_classes, masks)
    chained, n_iter, converged = model.fit_batch(*args, chains=labels)
    alone, alone_iter, alone_converged = model.fit_batch(*args)
    assert converged.all() and alone_converged.all()
    _assert_close(chained, alone)
    assert np.abs(model.mean_gradient(chained, *args)).max() <= model.tol
    # Absent classes stay at zero, and multinomial intercepts sum to zero, as in the general path.
    coef, intercept = model.unpack(chained, task.n_features, task.n_classes)
    assert (coef[~present] == 0).all() and (intercept[~present] == 0).all()
    many = present.sum(axis=1) >= 3
    np.testing.assert_allclose(intercept[many].sum(axis=1), 0.0, atol=1e-12)
    assert (n_iter >= 0).all() and (alone_iter >= 1).all()


@needs_numba
@pytest.mark.parametrize("fixture", ["wine_small", "digits5"])
def test_chain_members_equal_scikit_learn(fixture, request):
    task = request.getfixturevalue(fixture)
    masks, labels = _prefix_chains(task, 2, 50, seed=2, start=3)
    model = BatchedLogisticRegression()
    proba = model.predict_proba_batch(task, masks, chains=labels)
    params, _, _ = model.fit_batch(task.X_train, task.y_train, task.n_classes, masks, chains=labels)
    for mask, p, theta in zip(masks[::6], proba[::6], params[::6], strict=True):
        sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000, solver="newton-cholesky")
        sk.fit(task.X_train[mask], task.y_train[mask])
        expected = np.zeros_like(p)
        expected[:, sk.classes_] = sk.predict_proba(task.X_test)
        np.testing.assert_allclose(p, expected, rtol=0, atol=1e-8)
        coef, intercept = model.unpack(theta[None], task.n_features, task.n_classes)
        rows = sk.classes_[1:] if len(sk.classes_) == 2 else sk.classes_
        scale = np.abs(sk.coef_).max()
        np.testing.assert_allclose(coef[0, rows], sk.coef_, rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(intercept[0, rows], sk.intercept_, rtol=0, atol=1e-6 * scale)


@needs_numba
def test_members_may_add_several_rows_or_none(wine_small):
    task = wine_small
    order = np.random.default_rng(3).permutation(task.n_train)
    sizes = [5, 5, 9, 10, 10, 25, 26, 60]  # repeats, one row, several rows, the full set
    masks = np.zeros((len(sizes), task.n_train), bool)
    for r, s in enumerate(sizes):
        masks[r, order[:s]] = True
    model = BatchedLogisticRegression()
    args = (task.X_train, task.y_train, 3, masks)
    chained, _, converged = model.fit_batch(*args, chains=np.zeros(len(masks), int))
    alone, _, _ = model.fit_batch(*args)
    assert converged.all()
    _assert_close(chained, alone)
    same = np.flatnonzero((masks[1:] == masks[:-1]).all(axis=1))
    assert same.size and all(np.array_equal(chained[i], chained[i + 1]) for i in same)


def test_class_runs_split_a_chain_where_a_class_joins():
    present = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1]], dtype=bool)
    assert class_runs(present) == [(0, 2), (2, 4)]
    assert class_runs(present[2:]) == [(0, 2)]


@needs_numba
def test_a_chain_depends_on_itself_alone(digits5):
    task = digits5
    masks, labels = _prefix_chains(task, 4, 40, seed=4)
    model = BatchedLogisticRegression()
    args = (task.X_train, task.y_train, task.n_classes)
    together, _, _ = model.fit_batch(*args, masks, chains=labels)
    for c in np.unique(labels):
        rows = labels == c
        alone, _, _ = model.fit_batch(*args, masks[rows], chains=np.full(rows.sum(), 7))
        assert np.array_equal(alone, together[rows])
    position = np.array([(labels[:i] == labels[i]).sum() for i in range(len(labels))])
    mixed = np.lexsort((labels, position))
    shuffled, _, _ = model.fit_batch(*args, masks[mixed], chains=labels[mixed])
    assert np.array_equal(shuffled, together[mixed])


def test_without_numba_multiclass_chains_are_ignored(wine_small, monkeypatch):
    task = wine_small
    masks, labels = _prefix_chains(task, 2, 10, seed=6, start=30)
    model = BatchedLogisticRegression()
    alone, _, _ = model.fit_batch(task.X_train, task.y_train, 3, masks)
    monkeypatch.setattr(logreg_module, "chain_kernel", lambda: None)
    ignored, _, _ = model.fit_batch(task.X_train, task.y_train, 3, masks, chains=labels)
    assert np.array_equal(ignored, alone)


@needs_numba
def test_tmc_with_multiclass_chains_equals_independent_fits(wine_small, monkeypatch):
    chained = dw.tmc_shapley(dw.Utility(wine_small, metric="neg_log_loss"), permutations=2, seed=3)
    monkeypatch.setattr(logreg_module, "chain_kernel", lambda: None)
    alone = dw.tmc_shapley(dw.Utility(wine_small, metric="neg_log_loss"), permutations=2, seed=3)
    assert chained.n_fitted == alone.n_fitted
    np.testing.assert_allclose(chained.values, alone.values, rtol=0, atol=1e-9)


@needs_numba
def test_tmc_with_multiclass_chains_is_identical_across_chunks_and_processes(iris_small):
    def run(**kwargs):
        with dw.Utility(iris_small, metric="neg_log_loss", **kwargs) as u:
            return dw.tmc_shapley(u, permutations=3, seed=11).values

    serial = run()
    assert np.array_equal(run(chunk_size=5), serial)
    assert np.array_equal(run(backend="processes", n_jobs=2, chunk_size=20), serial)


@needs_numba
def test_tmc_with_multiclass_chains_is_identical_on_any_number_of_threads(iris_small, monkeypatch):
    """The serial backend fits chunks of chains side by side on threads; a chunk's numbers do not
    depend on its thread, nor on how many run at once."""
    import dataworth.engine.utility as utility_module
    from dataworth.machine import thread_share

    monkeypatch.setattr(utility_module, "_CHAIN_THREAD_MIN_ROWS", 0)  # threads even here

    def run(threads, chunk_size=None):
        monkeypatch.setattr(utility_module, "usable_threads", lambda: threads)
        u = dw.Utility(iris_small, metric="neg_log_loss", chunk_size=chunk_size)
        masks = np.ones((12, iris_small.n_train), bool)
        assert u._chain_threads(np.arange(12).reshape(4, 3), masks) == min(threads, 4)
        return dw.tmc_shapley(u, permutations=4, seed=5).values

    with thread_share(1):
        one = run(1)
    assert np.array_equal(run(3, chunk_size=5), one)
    assert np.array_equal(run(2), one)


@needs_numba
def test_ill_conditioned_multiclass_chains_still_converge():
    """Weak regularisation (C = 1000) on four digit classes, nearly separable: every member meets
    the gradient tolerance (BFGS, then Newton steps after a few dozen)."""
    X, y = load_digits(n_class=4, return_X_y=True)
    X = StandardScaler().fit_transform(X[:, 1::3])[:300]
    task = Task.from_arrays(X, y[:300], X[:10], y[:10], name="digits4_300")
    masks, labels = _prefix_chains(task, 3, 118, seed=0)
    model = BatchedLogisticRegression(C=1000.0)
    params, _, converged = model.fit_batch(X, task.y_train, 4, masks, chains=labels)
    assert converged.all()
    assert np.abs(model.mean_gradient(params, X, task.y_train, 4, masks)).max() <= model.tol
