"""Chains of nested subsets: each member warm-started from the one before, solved exactly.

The references are independent fits: the batched solver started from the full-data solution, and
scikit-learn's Newton solver at a tight tolerance. A chain only changes where each fit starts, so
every member must equal them to the solver tolerance, and a member's result must depend on its
chain alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import dataworth as dw
import dataworth.learners.logreg.learner as logreg_module
from dataworth.engine.store import EvaluationStore
from dataworth.errors import DataworthError
from dataworth.learners.logreg.chains import chain_kernel, join_order
from dataworth.learners.logreg.learner import BatchedLogisticRegression

# Tests of the compiled path; the others run with or without Numba.
needs_numba = pytest.mark.skipif(chain_kernel() is None, reason="Numba is not installed")


def _prefix_chains(n, n_chains, length, seed, start=1):
    """Prefixes ``start .. start+length-1`` of random permutations, labelled by permutation."""
    rng = np.random.default_rng(seed)
    masks, labels = [], []
    for c in range(n_chains):
        order = rng.permutation(n)
        for j in range(start, start + length):
            mask = np.zeros(n, bool)
            mask[order[:j]] = True
            masks.append(mask)
            labels.append(c)
    return np.array(masks), np.array(labels)


def _two_classes(task, masks, labels):
    keep = np.array([len(np.unique(task.y_train[m])) == 2 for m in masks])
    return masks[keep], labels[keep]


def test_join_order_lists_rows_as_they_join():
    masks = np.array(
        [[0, 1, 0, 1, 0], [0, 1, 0, 1, 0], [1, 1, 0, 1, 1], [1, 1, 1, 1, 1]], dtype=bool
    )
    order, sizes = join_order(masks)
    assert order.tolist() == [1, 3, 0, 4, 2]
    assert sizes.tolist() == [2, 2, 4, 5]


@needs_numba
def test_chain_members_equal_independent_fits(cancer_400):
    task = cancer_400
    masks, labels = _two_classes(task, *_prefix_chains(task.n_train, 3, 60, seed=1))
    model = BatchedLogisticRegression()
    chained, n_iter, converged = model.fit_batch(
        task.X_train, task.y_train, 2, masks, chains=labels
    )
    alone, alone_iter, alone_converged = model.fit_batch(task.X_train, task.y_train, 2, masks)
    assert converged.all() and alone_converged.all()
    # Both meet the gradient tolerance 1e-10; their parameters agree to its scale.
    np.testing.assert_allclose(chained, alone, rtol=0, atol=1e-7)
    gradient = model.mean_gradient(chained, task.X_train, task.y_train, 2, masks)
    assert np.abs(gradient).max() <= model.tol
    # Warm starts are the point: most members need fewer steps than a start from the full data.
    assert n_iter.mean() < alone_iter.mean()


@needs_numba
def test_chain_members_equal_scikit_learn(cancer_small):
    task = cancer_small
    masks, labels = _two_classes(task, *_prefix_chains(task.n_train, 2, 40, seed=2, start=5))
    model = BatchedLogisticRegression()
    proba = model.predict_proba_batch(task, masks, chains=labels)
    for mask, p in zip(masks[::7], proba[::7], strict=True):
        sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=1000, solver="newton-cholesky")
        sk.fit(task.X_train[mask], task.y_train[mask])
        np.testing.assert_allclose(p, sk.predict_proba(task.X_test), rtol=0, atol=1e-8)


@needs_numba
def test_members_may_add_several_rows_or_none(cancer_small):
    task = cancer_small
    rng = np.random.default_rng(3)
    order = rng.permutation(task.n_train)
    sizes = [6, 6, 9, 10, 10, 25, 26, 60]  # repeats, one row, several rows, the full set
    masks = np.zeros((len(sizes), task.n_train), bool)
    for r, s in enumerate(sizes):
        masks[r, order[:s]] = True
    masks, _ = _two_classes(task, masks, np.zeros(len(masks), int))
    model = BatchedLogisticRegression()
    chained, _, converged = model.fit_batch(
        task.X_train, task.y_train, 2, masks, chains=np.zeros(len(masks), int)
    )
    alone, _, _ = model.fit_batch(task.X_train, task.y_train, 2, masks)
    assert converged.all()
    np.testing.assert_allclose(chained, alone, rtol=0, atol=1e-7)
    # A member equal to the one before keeps its solution exactly.
    same = np.flatnonzero((masks[1:] == masks[:-1]).all(axis=1))
    assert same.size and all(np.array_equal(chained[i], chained[i + 1]) for i in same)


@needs_numba
def test_a_chain_depends_on_itself_alone(cancer_400):
    task = cancer_400
    masks, labels = _two_classes(task, *_prefix_chains(task.n_train, 4, 30, seed=4))
    model = BatchedLogisticRegression()
    together, _, _ = model.fit_batch(task.X_train, task.y_train, 2, masks, chains=labels)
    for c in np.unique(labels):
        rows = labels == c
        alone, _, _ = model.fit_batch(
            task.X_train, task.y_train, 2, masks[rows], chains=np.full(rows.sum(), 7)
        )
        assert np.array_equal(alone, together[rows])
    # Interleaving the chains' rows changes nothing either.
    position = np.array([(labels[:i] == labels[i]).sum() for i in range(len(labels))])
    mixed = np.lexsort((labels, position))
    shuffled, _, _ = model.fit_batch(
        task.X_train, task.y_train, 2, masks[mixed], chains=labels[mixed]
    )
    assert np.array_equal(shuffled, together[mixed])


@needs_numba
def test_chain_members_must_be_nested(cancer_small):
    masks = np.ones((2, cancer_small.n_train), bool)
    masks[1, 0] = False
    model = BatchedLogisticRegression()
    with pytest.raises(DataworthError, match="nested"):
        model.fit_batch(cancer_small.X_train, cancer_small.y_train, 2, masks, chains=[0, 0])
    with pytest.raises(DataworthError, match="one label per subset"):
        model.fit_batch(cancer_small.X_train, cancer_small.y_train, 2, masks, chains=[0])


def test_without_numba_chains_are_ignored(cancer_small, monkeypatch):
    task = cancer_small
    masks, labels = _two_classes(task, *_prefix_chains(task.n_train, 2, 20, seed=5, start=10))
    model = BatchedLogisticRegression()
    alone, _, _ = model.fit_batch(task.X_train, task.y_train, 2, masks)
    monkeypatch.setattr(logreg_module, "chain_kernel", lambda: None)
    ignored, _, _ = model.fit_batch(task.X_train, task.y_train, 2, masks, chains=labels)
    assert np.array_equal(ignored, alone)


@needs_numba
def test_utility_recomputes_a_chain_from_its_start(cancer_small, tmp_path):
    """A chain with a member missing from the store is computed from its first member, so the
    values it adds do not depend on what the store held; stored values are never replaced."""
    task = cancer_small
    masks, labels = _two_classes(task, *_prefix_chains(task.n_train, 2, 25, seed=7, start=5))
    fresh = dw.Utility(task, metric="neg_log_loss").evaluate(masks, chains=labels)

    store = EvaluationStore(tmp_path / "store.sqlite")
    partial = dw.Utility(task, metric="neg_log_loss", store=store)
    held = np.zeros(len(masks), bool)
    held[[3, 4, 30]] = True
    independent = partial.evaluate(masks[held])  # fitted alone, not in a chain
    ev = partial.evaluate(masks, chains=labels)
    assert np.array_equal(ev.scores[held], independent.scores)
    assert np.array_equal(ev.scores[~held], fresh.scores[~held])
    assert ev.n_cached == held.sum()
    np.testing.assert_allclose(ev.scores, fresh.scores, rtol=0, atol=1e-9)


@needs_numba
def test_utility_never_splits_a_chain(cancer_small):
    task = cancer_small
    masks, labels = _two_classes(task, *_prefix_chains(task.n_train, 3, 20, seed=8, start=5))
    whole = dw.Utility(task, metric="neg_log_loss").evaluate(masks, chains=labels)
    small = dw.Utility(task, metric="neg_log_loss", chunk_size=3).evaluate(masks, chains=labels)
    assert np.array_equal(whole.scores, small.scores)


def test_utility_checks_chain_labels(cancer_small):
    u = dw.Utility(cancer_small)
    masks = np.ones((2, cancer_small.n_train), bool)
    with pytest.raises(DataworthError, match="one integer label per subset"):
        u.evaluate(masks, chains=[0.5, 1.5])


@needs_numba
def test_tmc_with_chains_equals_independent_fits(cancer_400, monkeypatch):
    u = dw.Utility(cancer_400, metric="neg_log_loss")
    chained = dw.tmc_shapley(u, permutations=2, seed=3)
    monkeypatch.setattr(logreg_module, "chain_kernel", lambda: None)
    alone = dw.tmc_shapley(dw.Utility(cancer_400, metric="neg_log_loss"), permutations=2, seed=3)
    assert chained.n_fitted == alone.n_fitted
    np.testing.assert_allclose(chained.values, alone.values, rtol=0, atol=1e-9)


@needs_numba
def test_tmc_with_chains_is_identical_across_chunks_processes_and_resumes(cancer_small, tmp_path):
    def run(**kwargs):
        with dw.Utility(cancer_small, metric="neg_log_loss", **kwargs) as u:
            return dw.tmc_shapley(u, permutations=4, seed=11).values

    serial = run()
    assert np.array_equal(run(chunk_size=5), serial)
    assert np.array_equal(run(backend="processes", n_jobs=2, chunk_size=20), serial)
    path = tmp_path / "store.sqlite"
    with dw.Utility(cancer_small, metric="neg_log_loss", store=path) as u:
        dw.tmc_shapley(u, permutations=2, seed=11)
    assert np.array_equal(run(store=path), serial)


@needs_numba
def test_ill_conditioned_chains_still_converge():
    """Weak regularisation on nearly separable digits: BFGS alone crawls there; after a few
    dozen steps the solver switches to Newton steps and every member meets the tolerance."""
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    digits = load_digits()
    X = StandardScaler().fit_transform(digits.data)[:600]
    y = (digits.target[:600] == 3).astype(int)
    masks, labels = _prefix_chains(len(y), 4, 150, seed=0, start=2)
    keep = np.array([len(np.unique(y[m])) == 2 for m in masks])
    masks, labels = masks[keep], labels[keep]
    model = BatchedLogisticRegression(C=1000.0)
    params, _, converged = model.fit_batch(X, y, 2, masks, chains=labels)
    assert converged.all()
    assert np.abs(model.mean_gradient(params, X, y, 2, masks)).max() <= model.tol


def test_tmc_on_groups_of_a_game_without_chains():
    """A user's game whose ``evaluate`` knows nothing of chains still serves TMC, by points or
    by groups (the group game passes chains on only to games that take them)."""

    class Additive:
        n_players = 4

        def evaluate(self, masks, per_prediction=False):
            return dw.Game(lambda m: m @ np.array([1.0, 2.0, 3.0, 4.0]), 4).evaluate(masks)

    groups = [[0, 1], [2], [3]]
    result = dw.tmc_shapley(Additive(), permutations=3, tol=0, groups=groups)
    np.testing.assert_allclose(result.values, [3.0, 3.0, 4.0])


@needs_numba
def test_tmc_with_chains_is_identical_on_dask(cancer_small):
    pytest.importorskip("distributed")

    def run(**kwargs):
        with dw.Utility(cancer_small, metric="neg_log_loss", **kwargs) as u:
            return dw.tmc_shapley(u, permutations=3, seed=12).values

    assert np.array_equal(run(backend="dask", n_jobs=2, chunk_size=15), run())
