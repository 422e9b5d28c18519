"""The utility: real fits, degenerate policy, deduplication, store, per-prediction scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss

from dataworth.engine.game import Game
from dataworth.engine.store import EvaluationStore
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError


def _sklearn_logreg():
    return LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000)


def test_generic_utility_equals_direct_fit(cancer_small, rng):
    u = Utility(cancer_small, learner=_sklearn_logreg(), metric="neg_log_loss")
    masks = rng.random((4, cancer_small.n_train)) < 0.7
    ev = u.evaluate(masks, per_prediction=True)
    for mask, score, pp in zip(masks, ev.scores, ev.per_prediction, strict=True):
        model = _sklearn_logreg().fit(cancer_small.X_train[mask], cancer_small.y_train[mask])
        proba = model.predict_proba(cancer_small.X_test)
        assert score == pytest.approx(-log_loss(cancer_small.y_test, proba), abs=1e-12)
        np.testing.assert_allclose(pp, proba[np.arange(cancer_small.n_test), cancer_small.y_test])
    assert ev.n_fitted == 4 and ev.n_fallback == 0


def test_degenerate_subsets_use_the_prior_and_are_counted(cancer_small):
    u = Utility(cancer_small, learner="knn", metric="accuracy")
    y = cancer_small.y_train
    masks = np.zeros((3, cancer_small.n_train), bool)
    masks[1, np.flatnonzero(y == 0)[:3]] = True  # one class only
    masks[2] = True
    ev = u.evaluate(masks)
    np.testing.assert_array_equal(ev.fallback, [True, True, False])
    assert ev.n_fallback == 2
    majority = np.bincount(y).argmax()
    assert ev.scores[0] == pytest.approx(
        accuracy_score(cancer_small.y_test, np.full(cancer_small.n_test, majority))
    )
    assert ev.scores[1] == pytest.approx(np.mean(cancer_small.y_test == 0))


def test_duplicates_fitted_once_and_store_answers_repeats(cancer_small, rng):
    u = Utility(cancer_small, learner=_sklearn_logreg(), metric="accuracy")
    mask = rng.random(cancer_small.n_train) < 0.5
    first = u.evaluate(np.stack([mask, mask, ~mask, mask]))
    assert first.n_fitted == 2
    assert first.scores[0] == first.scores[1] == first.scores[3]
    again = u.evaluate(np.stack([~mask, mask]))
    assert again.n_fitted == 0 and again.n_cached == 2
    np.testing.assert_array_equal(again.scores, first.scores[[2, 0]])


def test_store_file_survives_a_new_utility(cancer_small, tmp_path, rng):
    path = tmp_path / "store.sqlite"
    masks = rng.random((5, cancer_small.n_train)) < 0.6
    with Utility(cancer_small, learner="knn", metric="neg_log_loss", store=path) as u:
        first = u.evaluate(masks)
    with Utility(cancer_small, learner="knn", metric="neg_log_loss", store=path) as u:
        second = u.evaluate(masks)
    assert second.n_fitted == 0
    np.testing.assert_array_equal(first.scores, second.scores)
    # A different metric is a different utility: nothing is reused.
    with Utility(cancer_small, learner="knn", metric="accuracy", store=path) as u:
        assert u.evaluate(masks).n_fitted == 5
    assert EvaluationStore(path).count(u.fingerprint) == 5


def test_per_prediction_request_refits_rows_stored_without_them(cancer_small, rng):
    u = Utility(cancer_small, learner="knn")
    masks = rng.random((3, cancer_small.n_train)) < 0.6
    u.evaluate(masks)
    ev = u.evaluate(masks, per_prediction=True)
    assert ev.n_fitted == 3 and ev.per_prediction.shape == (3, cancer_small.n_test)


def test_game_is_a_plain_function_of_the_mask():
    g = Game(lambda m: m[:, 0] * 2.0 + m[:, 1], n_players=3)
    ev = g.evaluate(np.array([[1, 1, 0], [0, 1, 1]]))
    np.testing.assert_array_equal(ev.scores, [3.0, 1.0])
    with pytest.raises(DataworthError, match="3 columns"):
        g.evaluate(np.ones((2, 4), bool))


def test_bad_masks_and_options(cancer_small):
    u = Utility(cancer_small, learner="knn")
    with pytest.raises(DataworthError, match="0/1"):
        u.evaluate(np.full((1, cancer_small.n_train), 2))
    with pytest.raises(DataworthError, match="per-prediction"):
        Utility(cancer_small, per_prediction="logit")
