"""Multinomial leave-one-out fits by the compiled one-out path (Woodbury update, chord steps).

Each one-out subset must be the same optimum as an independent fit: the general batched solver
(itself checked against scikit-learn in test_logreg.py) and scikit-learn's Newton solver at a tight
tolerance; its gradient must meet the tolerance; and its bits must not depend on the batch.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import dataworth.learners.logreg.learner as logreg_module
import dataworth.learners.logreg.one_out as one_out_module
from dataworth.learners.logreg.learner import BatchedLogisticRegression

pytest.importorskip("numba")


def _standardised(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _one_out_masks(n, rows):
    masks = np.ones((len(rows), n), dtype=bool)
    masks[np.arange(len(rows)), rows] = False
    return masks


def _general_solver(model, X, y, K, masks):
    """The same fits by the general batched solver (the one-out path switched off)."""
    general = BatchedLogisticRegression(C=model.C, tol=model.tol)
    general.reference(X, y, K)
    for key, ref in general._references.items():
        general._references[key] = type(ref)(**{**ref.__dict__, "one_out": None})
    return general.fit_batch(X, y, K, masks)


@pytest.fixture
def small_tasks_take_the_path(monkeypatch):
    monkeypatch.setattr(logreg_module, "_ONE_OUT_MIN_ROWS", 0)


@pytest.mark.parametrize(
    ("loader", "C"), [(load_iris, 1.0), (load_wine, 0.1), (load_wine, 1.0), (load_wine, 100.0)]
)
def test_one_out_equals_independent_fits(loader, C, small_tasks_take_the_path):
    X, y = _standardised(loader)
    K = len(np.unique(y))
    masks = _one_out_masks(len(y), np.arange(len(y)))
    model = BatchedLogisticRegression(C=C)
    params, n_iter, converged = model.fit_batch(X, y, K, masks)
    ref = next(iter(model._references.values()))
    assert ref.one_out is not None  # the compiled path was taken
    assert converged.all() and (n_iter >= 1).all()
    gradient = model.mean_gradient(params, X, y, K, masks)
    assert np.abs(gradient).max() <= model.tol
    expected, _, ok = _general_solver(model, X, y, K, masks)
    assert ok.all()
    # Both meet a mean-gradient tolerance of 1e-10; their parameters then agree to the
    # conditioning of the problem (weakest regularisation: C = 100).
    scale = np.abs(expected).max()
    np.testing.assert_allclose(
        params, expected, rtol=0, atol=(1e-6 if C == 100.0 else 1e-7) * scale
    )


def test_one_out_matches_sklearn_tight_refits(small_tasks_take_the_path):
    X, y = _standardised(load_wine)
    K = 3
    rows = np.array([0, 7, 60, 100, 177])
    masks = _one_out_masks(len(y), rows)
    model = BatchedLogisticRegression(C=1.0)
    params, _, converged = model.fit_batch(X, y, K, masks)
    assert converged.all()
    proba = model.predict_proba(params, X)
    for mask, p in zip(masks, proba, strict=True):
        sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000, solver="newton-cholesky")
        sk.fit(X[mask], y[mask])
        np.testing.assert_allclose(p, sk.predict_proba(X), rtol=0, atol=1e-8)


def test_digits_above_the_size_threshold_take_the_path():
    # 1,797 rows, 10 classes, 64 features: the default threshold applies, no monkeypatching.
    X, y = _standardised(load_digits)
    X = X[:, np.abs(X).sum(axis=0) > 0]
    assert len(y) >= logreg_module._ONE_OUT_MIN_ROWS
    rows = np.array([0, 1, 500, 1796])
    masks = _one_out_masks(len(y), rows)
    model = BatchedLogisticRegression(C=0.1)
    params, _, converged = model.fit_batch(X, y, 10, masks)
    assert next(iter(model._references.values())).one_out is not None
    assert converged.all()
    assert np.abs(model.mean_gradient(params, X, y, 10, masks)).max() <= model.tol
    expected, _, _ = _general_solver(model, X, y, 10, masks)
    np.testing.assert_allclose(params, expected, rtol=0, atol=1e-7 * np.abs(expected).max())


def test_one_out_bits_do_not_depend_on_the_batch(small_tasks_take_the_path):
    X, y = _standardised(load_wine)
    rows = np.arange(0, 178, 5)
    masks = _one_out_masks(len(y), rows)
    whole = BatchedLogisticRegression().fit_batch(X, y, 3, masks)
    for size in (1, 4):
        parts = [
            BatchedLogisticRegression().fit_batch(X, y, 3, masks[i : i + size])
            for i in range(0, len(masks), size)
        ]
        for got, expected in zip(zip(*parts, strict=True), whole, strict=True):
            assert np.array_equal(np.concatenate(got), expected)


def test_mixed_batch_and_a_vanishing_class(small_tasks_take_the_path):
    # Class 2 has a single row: leaving it out changes the model's classes, so that subset goes
    # to the general solver; the other one-out subsets and a random subset share the batch.
    X, y = _standardised(load_iris)
    keep = np.r_[0:50, 50:100, 100]
    X, y = X[keep], y[keep]
    n = len(y)
    masks = np.vstack([_one_out_masks(n, np.array([3, 60, 100])), np.arange(n) % 3 != 0])
    model = BatchedLogisticRegression()
    params, _, converged = model.fit_batch(X, y, 3, masks)
    assert converged.all()
    assert np.abs(model.mean_gradient(params, X, y, 3, masks)).max() <= model.tol
    assert (params[2].reshape(3, -1)[2] == 0.0).all()  # the absent class's row
    expected, _, _ = _general_solver(model, X, y, 3, masks)
    np.testing.assert_allclose(params, expected, rtol=0, atol=1e-7 * np.abs(expected).max())


def test_small_binary_tasks_keep_the_sherman_morrison_path(small_tasks_take_the_path):
    # Below _ONE_OUT_MIN_ROWS_BINARY a binary task's LOO values stay bitwise those of the NumPy
    # Sherman-Morrison path.
    X, y = _standardised(load_breast_cancer)
    assert len(y) < logreg_module._ONE_OUT_MIN_ROWS_BINARY
    model = BatchedLogisticRegression()
    model.fit_batch(X, y, 2, _one_out_masks(len(y), np.arange(3)))
    assert next(iter(model._references.values())).one_out is None


@pytest.mark.parametrize("C", [0.1, 1.0, 100.0])
def test_binary_one_out_path_equals_independent_fits(C, monkeypatch):
    monkeypatch.setattr(logreg_module, "_ONE_OUT_MIN_ROWS_BINARY", 0)
    X, y = _standardised(load_breast_cancer)
    masks = _one_out_masks(len(y), np.arange(0, len(y), 3))
    model = BatchedLogisticRegression(C=C)
    params, n_iter, converged = model.fit_batch(X, y, 2, masks)
    assert next(iter(model._references.values())).one_out is not None
    assert converged.all() and (n_iter >= 1).all()
    assert np.abs(model.mean_gradient(params, X, y, 2, masks)).max() <= model.tol
    expected, _, _ = _general_solver(model, X, y, 2, masks)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(
        params, expected, rtol=0, atol=(1e-6 if C == 100.0 else 1e-7) * scale
    )
    sk = LogisticRegression(C=C, tol=1e-12, max_iter=10_000, solver="newton-cholesky")
    sk.fit(X[masks[1]], y[masks[1]])
    np.testing.assert_allclose(
        model.predict_proba(params[1:2], X)[0], sk.predict_proba(X), rtol=0, atol=1e-7
    )


@pytest.mark.parametrize(("loader", "K"), [(load_wine, 3), (load_breast_cancer, 2)])
def test_one_out_bits_do_not_depend_on_threads_or_batch_width(loader, K, monkeypatch):
    # Subsets are stepped side by side in batches, each batch on its own thread: one subset per
    # batch on three threads must give the same bits as one wide batch on one thread.
    monkeypatch.setattr(logreg_module, "_ONE_OUT_MIN_ROWS", 0)
    monkeypatch.setattr(logreg_module, "_ONE_OUT_MIN_ROWS_BINARY", 0)
    X, y = _standardised(loader)
    model = BatchedLogisticRegression()
    model.reference(X, y, K)
    prep = next(iter(model._references.values())).one_out
    problem = logreg_module._make_problem(X, y, K)
    excluded = np.arange(0, len(y), 2)
    wide = one_out_module.solve_one_out(prep, problem.Xa, problem.y, excluded, 1e-10, 100, 1)
    assert (wide[2] == 0).mean() > 0.9  # most converge on the one-out path (a few hand over)
    monkeypatch.setattr(one_out_module, "_BATCH_COLUMNS", 1)
    narrow = one_out_module.solve_one_out(prep, problem.Xa, problem.y, excluded, 1e-10, 100, 3)
    for got, expected in zip(narrow, wide, strict=True):
        assert np.array_equal(got, expected)


def _with_one_hot(loader):
    """Standardised features plus one-hot columns of two binned features (mostly zeros, as a
    table's categorical columns give): the kernels skip a row's zero entries."""
    X, y = _standardised(loader)
    blocks = [X]
    for column, levels in ((0, 4), (1, 3)):
        cuts = np.quantile(X[:, column], np.linspace(0, 1, levels + 1)[1:-1])
        blocks.append(np.eye(levels)[np.digitize(X[:, column], cuts)])
    return np.hstack(blocks), y


@pytest.mark.parametrize(("loader", "K"), [(load_wine, 3), (load_breast_cancer, 2)])
def test_one_out_with_one_hot_columns(loader, K, monkeypatch):
    monkeypatch.setattr(logreg_module, "_ONE_OUT_MIN_ROWS", 0)
    monkeypatch.setattr(logreg_module, "_ONE_OUT_MIN_ROWS_BINARY", 0)
    X, y = _with_one_hot(loader)
    assert (X == 0.0).mean() > 0.1
    rows = np.arange(0, len(y), 4)
    masks = _one_out_masks(len(y), rows)
    model = BatchedLogisticRegression()
    params, _, converged = model.fit_batch(X, y, K, masks)
    assert next(iter(model._references.values())).one_out is not None
    assert converged.all()
    assert np.abs(model.mean_gradient(params, X, y, K, masks)).max() <= model.tol
    expected, _, _ = _general_solver(model, X, y, K, masks)
    np.testing.assert_allclose(params, expected, rtol=0, atol=1e-7 * np.abs(expected).max())
    proba = model.predict_proba(params[:3], X)
    for mask, p in zip(masks[:3], proba, strict=True):
        sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000, solver="newton-cholesky")
        sk.fit(X[mask], y[mask])
        np.testing.assert_allclose(p, sk.predict_proba(X), rtol=0, atol=1e-8)
    # Neither the batch width nor the threads change a bit.
    prep = next(iter(model._references.values())).one_out
    problem = logreg_module._make_problem(X, y, K)
    wide = one_out_module.solve_one_out(prep, problem.Xa, problem.y, rows, 1e-10, 100, 1)
    monkeypatch.setattr(one_out_module, "_BATCH_COLUMNS", 1)
    narrow = one_out_module.solve_one_out(prep, problem.Xa, problem.y, rows, 1e-10, 100, 3)
    for got, exp in zip(narrow, wide, strict=True):
        assert np.array_equal(got, exp)
