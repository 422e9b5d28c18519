"""The batched metrics agree with scikit-learn's functions on real model predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    roc_auc_score,
)
from sklearn.neighbors import KNeighborsClassifier

from dataworth.errors import DataworthError
from dataworth.metrics import METRICS, get_metric, per_prediction_scores


def _reference(name, y, proba, labels):
    n_classes = proba.shape[1]
    if name == "accuracy":
        return accuracy_score(y, labels)
    if name == "balanced_accuracy":
        return balanced_accuracy_score(y, labels)
    if name == "roc_auc":
        if n_classes == 2:
            return roc_auc_score(y, proba[:, 1])
        return roc_auc_score(y, proba, multi_class="ovr", labels=list(range(n_classes)))
    if name == "f1":
        return f1_score(y, labels, average="binary" if n_classes == 2 else "macro")
    if name == "neg_log_loss":
        return -log_loss(y, proba, labels=list(range(n_classes)))
    if name == "neg_brier":
        return -brier_score_loss(
            y, proba[:, 1] if n_classes == 2 else proba, labels=list(range(n_classes))
        )
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(METRICS))
@pytest.mark.parametrize("fixture", ["cancer_small", "wine_small"])
@pytest.mark.parametrize("model", ["logreg", "knn"])
def test_metric_matches_sklearn(name, fixture, model, request):
    task = request.getfixturevalue(fixture)
    est = LogisticRegression(max_iter=1000) if model == "logreg" else KNeighborsClassifier(3)
    est.fit(task.X_train, task.y_train)
    proba = est.predict_proba(task.X_test)
    labels = est.predict(task.X_test)
    ours = get_metric(name)(proba[None], labels[None], task.y_test)
    assert ours.shape == (1,)
    assert ours[0] == pytest.approx(_reference(name, task.y_test, proba, labels), abs=1e-12)


def test_metrics_are_batched_row_by_row(wine_small, rng):
    proba = rng.dirichlet(np.ones(3), size=(5, wine_small.n_test))
    labels = proba.argmax(axis=2)
    for metric in METRICS.values():
        batch = metric(proba, labels, wine_small.y_test)
        single = [
            metric(proba[k : k + 1], labels[k : k + 1], wine_small.y_test)[0] for k in range(5)
        ]
        np.testing.assert_allclose(batch, single, rtol=0, atol=1e-15)


def test_macro_f1_counts_only_classes_seen(wine_small):
    # A model that never predicts class 2: scikit-learn still averages over the 3 classes
    # because class 2 occurs in y_true.
    labels = np.where(wine_small.y_test == 2, 0, wine_small.y_test)
    proba = np.eye(3)[labels]
    ours = get_metric("f1")(proba[None], labels[None], wine_small.y_test)[0]
    assert ours == pytest.approx(f1_score(wine_small.y_test, labels, average="macro"))


def test_log_loss_is_finite_for_zero_probability(cancer_small):
    proba = np.eye(2)[1 - cancer_small.y_test]  # confidently wrong everywhere
    value = get_metric("neg_log_loss")(proba[None], proba.argmax(1)[None], cancer_small.y_test)
    assert np.isfinite(value[0])
    assert value[0] == pytest.approx(-log_loss(cancer_small.y_test, proba))


def test_per_prediction_scores(cancer_small):
    proba = np.array([[[0.2, 0.8], [0.6, 0.4]]])
    y = np.array([1, 1])
    np.testing.assert_allclose(per_prediction_scores(proba, y), [[0.8, 0.4]])
    np.testing.assert_allclose(per_prediction_scores(proba, y, "margin"), [[0.6, -0.2]])


def test_unknown_metric_is_one_clear_line():
    with pytest.raises(DataworthError, match=r"Unknown metric 'acc'.*accuracy") as info:
        get_metric("acc")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", [m for m in METRICS if not METRICS[m].uses_labels])
def test_metrics_that_say_they_ignore_labels_do(name):
    """The engine passes no labels to these (it skips the argmax over every model's rows)."""
    rng = np.random.default_rng(4)
    for classes in (2, 4):
        proba = rng.dirichlet(np.ones(classes), size=(3, 40))
        y = rng.integers(0, classes, 40)
        y[:classes] = np.arange(classes)
        metric = METRICS[name]
        assert np.array_equal(metric(proba, None, y), metric(proba, proba.argmax(axis=2), y))
