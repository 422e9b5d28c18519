"""Baseline study: metrics agree with scikit-learn, the metric choice states its numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from dataworth import DataworthError, Task
from dataworth.learners.registry import make_estimator
from dataworth.report.figures import baseline_figures
from dataworth.study.baseline import choose_primary_metric, run_baseline
from dataworth.study.runfolder import to_jsonable


def _task(loader, name: str) -> Task:
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=0.7, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    return Task.from_arrays(
        scaler.transform(X_train), y_train, scaler.transform(X_test), y_test, name=name
    )


@pytest.fixture(scope="module")
def task() -> Task:
    return _task(load_breast_cancer, "breast_cancer")


@pytest.fixture(scope="module")
def result(task):
    return run_baseline(task, models=["logreg", "knn"], primary_model="logreg", seed=0)


@pytest.mark.parametrize("model", ["logreg", "knn"])
def test_metric_table_matches_sklearn(task, result, model):
    fitted = make_estimator(model, 0).fit(task.X_train, task.y_train)
    proba = fitted.predict_proba(task.X_test)
    labels = fitted.predict(task.X_test)
    y = task.y_test
    row = result.metrics.loc[model]
    assert row["accuracy"] == pytest.approx(accuracy_score(y, labels))
    assert row["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, labels))
    assert row["roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]))
    assert row["f1"] == pytest.approx(f1_score(y, labels))
    assert row["neg_log_loss"] == pytest.approx(-log_loss(y, proba), rel=1e-6)
    assert row["neg_brier"] == pytest.approx(-brier_score_loss(y, proba[:, 1]))
    assert row["fit_seconds"] > 0


def test_confusion_matrix_matches_sklearn(task, result):
    fitted = make_estimator("logreg", 0).fit(task.X_train, task.y_train)
    expected = confusion_matrix(task.y_test, fitted.predict(task.X_test))
    np.testing.assert_array_equal(result.confusion.to_numpy(), expected)
    assert list(result.confusion.index) == list(task.class_names)
    assert list(result.confusion.columns) == list(task.class_names)
    assert result.confusion.to_numpy().sum() == task.n_test


def test_binary_curves_have_one_curve_with_sklearn_auc(task, result):
    assert len(result.curves["roc"]) == 1 and len(result.curves["pr"]) == 1
    assert result.curves["roc"][0]["auc"] == pytest.approx(result.metrics.loc["logreg", "roc_auc"])
    frame = result.curves_frame()
    assert set(frame["kind"]) == {"roc", "pr"}


def test_default_metric_justification_states_the_numbers(task, result):
    choice = result.metric
    assert choice.name == "neg_log_loss" and choice.chosen_by == "default"
    text = choice.justification
    assert f"n_test = {task.n_test}" in text
    assert f"1/{task.n_test} = {1 / task.n_test:.4f}" in text
    for c, name in enumerate(task.class_names):
        share = np.mean(task.y_train == c)
        assert f"{name} {100 * share:.1f}%" in text
    assert choice.facts["n_test"] == task.n_test


def test_user_metric_is_reported_as_the_users_choice_with_caveats(task):
    choice = choose_primary_metric(task, "accuracy")
    assert choice.name == "accuracy" and choice.chosen_by == "user"
    assert "chosen by the user" in choice.justification
    assert "steps" in choice.justification
    assert str(task.n_test) in choice.justification


def test_unknown_names_raise_one_line_errors(task):
    with pytest.raises(DataworthError, match="Unknown metric"):
        run_baseline(task, models=["logreg"], metric="acuracy")
    with pytest.raises(DataworthError, match="Unknown model"):
        run_baseline(task, models=["logreg", "svm_magic"])


def test_multiclass_has_one_vs_rest_curves():
    task = _task(load_wine, "wine")
    result = run_baseline(task, models=["logreg"], seed=0)
    assert len(result.curves["roc"]) == task.n_classes
    assert result.confusion.shape == (3, 3)
    fitted = make_estimator("logreg", 0).fit(task.X_train, task.y_train)
    proba = fitted.predict_proba(task.X_test)
    expected = roc_auc_score(task.y_test, proba, multi_class="ovr")
    assert result.metrics.loc["logreg", "roc_auc"] == pytest.approx(expected)


def test_result_is_json_able_and_figures_are_written(result, tmp_path):
    json.dumps(to_jsonable(result.to_dict()))
    saved = baseline_figures(result, tmp_path / "figures")
    assert set(saved) == {"confusion_matrix", "roc_curve", "pr_curve"}
    for paths in saved.values():
        assert [p.suffix for p in paths] == [".png", ".svg"]
        assert all(p.stat().st_size > 1000 for p in paths)
        assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
