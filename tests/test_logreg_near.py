"""Test-set probabilities by the compiled path near the full-data model (large test sets).

They must equal NumPy's probabilities to rounding (one-out models, models far from the
reference, binary and multiclass), hand models that lack a class to NumPy's path, give the same
bits whatever the batch, and leave small test sets on NumPy's path bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import dataworth.learners.logreg.near as near_module
from dataworth.learners.logreg.learner import BatchedLogisticRegression
from dataworth.learners.logreg.problem import _class_presence

pytest.importorskip("numba")


def _masks(task, rng):
    n = task.n_train
    one_out = np.ones((12, n), dtype=bool)
    one_out[np.arange(12), np.arange(12) * 3] = False
    far = rng.random((6, n)) < 0.3  # small subsets: far from the full-data model
    if task.n_classes == 2:
        return np.vstack([one_out, far])
    lacking = np.ones((1, n), dtype=bool)
    lacking[0, task.y_train == task.n_classes - 1] = False  # one class left out
    return np.vstack([one_out, far, lacking])


def _numpy_proba(model, task, masks):
    params, _, _ = model.fit_batch(task.X_train, task.y_train, task.n_classes, masks)
    present = _class_presence(task.y_train, masks, task.n_classes)
    return model.predict_proba(params, task.X_test, present, n_classes=task.n_classes)


@pytest.mark.parametrize("fixture", ["cancer_400", "wine_small"])
def test_near_path_equals_numpy_to_rounding(fixture, request, rng, monkeypatch):
    task = request.getfixturevalue(fixture)
    masks = _masks(task, rng)
    model = BatchedLogisticRegression()
    expected = _numpy_proba(model, task, masks)
    monkeypatch.setattr(near_module, "_NEAR_MIN_TEST_ROWS", 1)
    got = model.predict_proba_batch(task, masks)
    if task.n_classes > 2:  # the model lacking a class took NumPy's path: the same bits
        assert np.array_equal(got[-1], expected[-1])
    # Differences come from the logits' rounding alone (|z| of a few tens: ~1e-14 relative).
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.sum(axis=2), 1.0, rtol=0, atol=1e-14)
    # A model's bits depend on nothing but the model: one at a time, or in a narrow batch.
    monkeypatch.setattr(near_module, "_BATCH_COLUMNS", 1)
    parts = [model.predict_proba_batch(task, masks[i : i + 5]) for i in range(0, len(masks), 5)]
    assert np.array_equal(np.concatenate(parts), got)


def test_small_test_sets_keep_numpy_bits(cancer_400, rng):
    assert cancer_400.n_test < near_module._NEAR_MIN_TEST_ROWS
    masks = _masks(cancer_400, rng)
    model = BatchedLogisticRegression()
    expected = _numpy_proba(model, cancer_400, masks)
    assert np.array_equal(model.predict_proba_batch(cancer_400, masks), expected)
