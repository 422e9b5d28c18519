"""The batched k-NN and the generic path agree with scikit-learn fitted on the same subset."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier

from dataworth.errors import DataworthError
from dataworth.learners import BatchedKNN, SklearnLearner, make_learner


def _random_masks(rng, n, k, low=0.3, high=0.9):
    return rng.random((k, n)) < rng.uniform(low, high, size=(k, 1))


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("fixture", ["cancer_small", "wine_small"])
def test_batched_knn_matches_sklearn(k, fixture, request, rng):
    task = request.getfixturevalue(fixture)
    masks = _random_masks(rng, task.n_train, 12)
    ours = BatchedKNN(n_neighbors=k).predict_proba_batch(task, masks)
    for mask, proba in zip(masks, ours, strict=True):
        model = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(
            task.X_train[mask], task.y_train[mask]
        )
        expected = np.zeros_like(proba)
        expected[:, model.classes_] = model.predict_proba(task.X_test)
        np.testing.assert_allclose(proba, expected, atol=1e-12)


def test_batched_knn_small_blocks_give_same_answer(wine_small, rng):
    masks = _random_masks(rng, wine_small.n_train, 9)
    whole = BatchedKNN(5).predict_proba_batch(wine_small, masks)
    tiny = BatchedKNN(5, max_block_bytes=1).predict_proba_batch(wine_small, masks)
    np.testing.assert_array_equal(whole, tiny)


def test_generic_learner_fills_missing_classes_with_zero(wine_small):
    mask = wine_small.y_train != 2
    learner = SklearnLearner(RandomForestClassifier(n_estimators=10))
    proba = learner.predict_proba_batch(wine_small, mask[None])[0]
    assert (proba[:, 2] == 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_generic_learner_pins_random_state_and_is_repeatable(cancer_small):
    learner = SklearnLearner(RandomForestClassifier(n_estimators=5))
    assert learner.estimator.get_params()["random_state"] == 0
    mask = np.ones((1, cancer_small.n_train), bool)
    np.testing.assert_array_equal(
        learner.predict_proba_batch(cancer_small, mask),
        learner.predict_proba_batch(cancer_small, mask),
    )


def test_fingerprint_tracks_parameters():
    a = SklearnLearner(RandomForestClassifier(n_estimators=5)).fingerprint()
    b = SklearnLearner(RandomForestClassifier(n_estimators=6)).fingerprint()
    assert a != b
    assert a == SklearnLearner(RandomForestClassifier(n_estimators=5)).fingerprint()


def test_make_learner_rejects_unknown_names():
    with pytest.raises(DataworthError, match="Unknown model 'forest'"):
        make_learner("forest")
    with pytest.raises(DataworthError, match="not a classifier"):
        make_learner(object())
