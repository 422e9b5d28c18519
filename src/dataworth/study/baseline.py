"""The baseline study: fit the baseline models, report their performance, choose the metric.

This is Part 1 of the course assignment the product grew from: train a few classifiers on the
full training set, report accuracy and the other metrics, the primary model's confusion matrix
and its ROC and precision-recall curves, and choose (and justify from the data) the *primary
metric* that valuation will use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    auc,
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_curve,
)

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.learners.registry import BASELINE_DESCRIPTIONS, available_models, make_estimator
from dataworth.metrics import METRICS, get_metric
from dataworth.study.cost.timing import time_fit

ProgressFn = Callable[[str, int, int], None]

DEFAULT_METRIC = "neg_log_loss"
_LABEL_METRICS = {"accuracy", "balanced_accuracy", "f1"}


@dataclass
class MetricChoice:
    """The primary metric and why it was chosen.

    Attributes
    ----------
    name : str
        A key of :data:`dataworth.metrics.METRICS`.
    chosen_by : {"default", "user"}
    justification : str
        A few sentences with the numbers they rest on.
    facts : dict
        Those numbers: ``n_test``, ``accuracy_step``, class shares, and so on.
    """

    name: str
    chosen_by: str
    justification: str
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "chosen_by": self.chosen_by,
            "justification": self.justification,
            "facts": self.facts,
        }


@dataclass
class BaselineResult:
    """Everything the baseline study found.

    Attributes
    ----------
    task_summary : dict
        Sizes, classes and class shares of the task.
    metrics : DataFrame
        One row per model: every metric of :data:`~dataworth.metrics.METRICS` on the test set,
        ``fit_seconds`` (median over repeats) and ``n_timed``.
    primary_model : str
    confusion : DataFrame
        The primary model's confusion matrix; rows are true classes, columns predictions.
    curves : dict
        ``{"roc": [...], "pr": [...]}``, one entry per curve (binary: one curve for the positive
        class; multiclass: one-vs-rest per class) with its points and area.
    metric : MetricChoice
        The primary metric and its justification.
    proba : ndarray of shape (n_test, n_classes)
        The primary model's test-set probabilities.
    seed : int
    """

    task_summary: dict[str, Any]
    metrics: pd.DataFrame
    primary_model: str
    confusion: pd.DataFrame
    curves: dict[str, list[dict[str, Any]]]
    metric: MetricChoice
    proba: np.ndarray
    seed: int = 0
    descriptions: dict[str, str] = field(default_factory=dict)

    def curves_frame(self) -> pd.DataFrame:
        """The curve points in long form: ``kind, curve, x, y`` (x = FPR or recall)."""
        frames = []
        for entry in self.curves["roc"]:
            frames.append(
                pd.DataFrame(
                    {"kind": "roc", "curve": entry["label"], "x": entry["fpr"], "y": entry["tpr"]}
                )
            )
        for entry in self.curves["pr"]:
            frames.append(
                pd.DataFrame(
                    {
                        "kind": "pr",
                        "curve": entry["label"],
                        "x": entry["recall"],
                        "y": entry["precision"],
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (curve points are left to :meth:`curves_frame`)."""
        areas = {
            kind: [{k: v for k, v in e.items() if not isinstance(v, np.ndarray)} for e in entries]
            for kind, entries in self.curves.items()
        }
        return {
            "task": self.task_summary,
            "primary_model": self.primary_model,
            "seed": self.seed,
            "models": {m: self.descriptions.get(m, m) for m in self.metrics.index},
            "metrics": {
                m: {k: _plain(v) for k, v in row.items()}
                for m, row in self.metrics.to_dict(orient="index").items()
            },
            "confusion_matrix": {
                "labels": list(self.confusion.columns),
                "matrix": self.confusion.to_numpy().tolist(),
            },
            "curves": areas,
            "primary_metric": self.metric.to_dict(),
        }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _class_shares(y: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    counts = np.bincount(y, minlength=len(class_names))
    return {name: float(c / max(len(y), 1)) for name, c in zip(class_names, counts, strict=True)}


def summarize_task(task: Task) -> dict[str, Any]:
    """Sizes, classes and class shares of a task, as plain JSON-able values."""
    return {
        "name": task.name,
        "n_train": task.n_train,
        "n_test": task.n_test,
        "n_features": task.n_features,
        "n_classes": task.n_classes,
        "class_names": list(task.class_names),
        "class_shares_train": _class_shares(task.y_train, task.class_names),
        "class_shares_test": _class_shares(task.y_test, task.class_names),
        "fingerprint": task.fingerprint,
    }


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def choose_primary_metric(
    task: Task, metric: str | None = None, proba: np.ndarray | None = None
) -> MetricChoice:
    """Choose the metric valuation will use, and say why, with numbers from this task.

    By default the choice is ``neg_log_loss``: accuracy and other label-based metrics move in
    steps of ``1/n_test`` (or coarser), so removing one training point usually changes none of
    them, and single-point influence on them is often exactly zero. A probability metric responds
    to every point. Class balance decides what else the justification recommends.

    Parameters
    ----------
    task : Task
    metric : str, optional
        Force this metric (the justification then says the user chose it and lists caveats).
    proba : ndarray of shape (n_test, n_classes), optional
        The primary model's test probabilities; used to count the test rows near the decision
        boundary, the only ones a small change to the training set can flip.

    Returns
    -------
    MetricChoice
    """
    if metric is not None:
        get_metric(metric)  # a one-line error for a misspelled name
    n_test = task.n_test
    step = 1.0 / n_test
    train_shares = _class_shares(task.y_train, task.class_names)
    test_shares = _class_shares(task.y_test, task.class_names)
    minority_share = min(train_shares.values())
    majority = max(train_shares, key=train_shares.get)
    even = 1.0 / task.n_classes
    # Below half of an even share is clearly imbalanced; below 80% of it, moderately.
    if minority_share < 0.5 * even:
        balance = "imbalanced"
    elif minority_share < 0.8 * even:
        balance = "moderately imbalanced"
    else:
        balance = "balanced"
    facts: dict[str, Any] = {
        "n_test": n_test,
        "accuracy_step": step,
        "class_shares_train": train_shares,
        "class_shares_test": test_shares,
        "minority_share": minority_share,
        "majority_class": majority,
        "majority_accuracy_test": test_shares[majority],
        "balance": balance,
    }
    sentences = []
    shares_text = ", ".join(f"{k} {_percent(v)}" for k, v in train_shares.items())
    test_text = ", ".join(f"{k} {_percent(v)}" for k, v in test_shares.items())
    sentences.append(
        f"Class shares are {shares_text} in training ({test_text} in the {n_test} test rows), "
        f"so the classes are {balance}; always predicting {majority!r} would score "
        f"{_percent(test_shares[majority])} accuracy."
    )
    sentences.append(
        f"With n_test = {n_test}, accuracy moves in steps of 1/{n_test} = {step:.4f} "
        f"({100 * step:.2f} percentage points): removing one training point changes it only if "
        "it flips a test prediction, so single-point influence on accuracy is often exactly zero."
    )
    if proba is not None and len(proba):
        top2 = np.sort(proba, axis=1)[:, -2:]
        near = int((top2[:, 1] - top2[:, 0] < 0.2).sum())
        facts["test_rows_near_boundary"] = near
        sentences.append(
            f"Only {near} of {n_test} test predictions of the primary model are near the "
            "decision boundary (top two class probabilities within 0.2), the only ones a small "
            "change to the training set could flip."
        )

    # The choice comes first, then the facts it rests on, then what follows from them.
    if metric is None:
        name, chosen_by = DEFAULT_METRIC, "default"
        head = "Primary metric: neg_log_loss (negative log-loss), chosen from the data."
        tail = [
            "Log-loss instead scores the predicted probability of every test row's own class, so "
            "it responds continuously to each training point rather than in steps, and it is a "
            "proper scoring rule, the quantity logistic regression itself minimises."
        ]
        if balance != "balanced":
            tail.append(
                f"Because the classes are {balance}, accuracy mostly rewards the majority class; "
                "log-loss counts every test row's own class. If the minority class matters most, "
                "balanced_accuracy or roc_auc keep the classes on an equal footing (at the price "
                "of steps)."
            )
        tail.append(
            "Caveat: log-loss is unbounded, so a few confidently wrong test predictions can "
            "dominate it; accuracy, balanced accuracy and AUROC are reported alongside."
        )
    else:
        name, chosen_by = metric, "user"
        head = f"Primary metric: {name} ({METRICS[name].description}), chosen by the user."
        tail = _caveats(name, task, balance, step)
    sentences = [head, *sentences, *tail]
    facts["metric"] = name
    return MetricChoice(
        name=name, chosen_by=chosen_by, justification=" ".join(sentences), facts=facts
    )


def _caveats(name: str, task: Task, balance: str, step: float) -> list[str]:
    """Caveats of a user-chosen metric for this task."""
    out = []
    if name in _LABEL_METRICS:
        out.append(
            f"Caveat: {name} depends only on predicted labels, so it moves in steps "
            f"(accuracy: {step:.4f}) and many single-point influences will be exactly zero; "
            "neg_log_loss avoids this."
        )
    if name == "accuracy" and balance != "balanced":
        out.append(
            "Caveat: with imbalanced classes accuracy mostly rewards the majority class; "
            "balanced_accuracy weighs the classes equally."
        )
    if name == "roc_auc":
        if task.n_classes == 2:
            n_pos = int((task.y_test == 1).sum())
            n_neg = task.n_test - n_pos
            out.append(
                f"Caveat: AUROC depends only on the ranking of test rows, moving in steps of "
                f"1/(n_pos*n_neg) = 1/({n_pos}*{n_neg}), and ignores calibration."
            )
        else:
            out.append(
                "Caveat: AUROC depends only on rankings (one-vs-rest) and ignores calibration."
            )
    if name == "neg_log_loss":
        out.append(
            "Caveat: log-loss is unbounded, so a few confidently wrong test predictions can "
            "dominate it."
        )
    if name == "neg_brier":
        out.append(
            "Caveat: the Brier score is bounded, so it reacts less than log-loss to confident "
            "mistakes; values are small numbers in squared-probability units."
        )
    return out


def _full_proba(estimator, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over all the task's classes, whatever subset the estimator saw."""
    proba = np.zeros((len(X), n_classes))
    proba[:, np.asarray(estimator.classes_, dtype=int)] = estimator.predict_proba(X)
    return proba


def _curves(y: np.ndarray, proba: np.ndarray, class_names: Sequence[str]) -> dict[str, list]:
    """ROC and precision-recall curves: positive class for binary, one-vs-rest otherwise."""
    targets = [1] if len(class_names) == 2 else range(len(class_names))
    roc, pr = [], []
    for c in targets:
        positive = y == c
        if positive.all() or not positive.any():
            continue  # a curve needs both positives and negatives in the test set
        label = (
            f"{class_names[c]} (positive)" if len(class_names) == 2 else f"{class_names[c]} vs rest"
        )
        fpr, tpr, _ = roc_curve(positive, proba[:, c])
        precision, recall, _ = precision_recall_curve(positive, proba[:, c])
        roc.append(
            {
                "label": label,
                "class": class_names[c],
                "fpr": fpr,
                "tpr": tpr,
                "auc": float(auc(fpr, tpr)),
            }
        )
        pr.append(
            {
                "label": label,
                "class": class_names[c],
                "precision": precision,
                "recall": recall,
                "average_precision": float(average_precision_score(positive, proba[:, c])),
                "prevalence": float(positive.mean()),
            }
        )
    return {"roc": roc, "pr": pr}


def run_baseline(
    task: Task,
    models: Sequence[str] | None = None,
    primary_model: str = "logreg",
    seed: int = 0,
    *,
    metric: str | None = None,
    repeats: int = 3,
    progress: ProgressFn | None = None,
    device: str | None = None,
) -> BaselineResult:
    """Fit each baseline model on the full training set and evaluate it on the test set.

    Parameters
    ----------
    task : Task
    models : sequence of str, optional
        Baseline models (names from :func:`~dataworth.learners.registry.available_models`);
        default all available. The primary model is always included.
    primary_model : str, default="logreg"
        The model whose confusion matrix and curves are reported, and that valuation refits.
    seed : int, default=0
        Random state of the models that use one.
    metric : str, optional
        Force the primary metric; by default it is chosen from the data (see
        :func:`choose_primary_metric`).
    repeats : int, default=3
        Fits timed per model (median); slow models are timed once.
    progress : callable, optional
        ``progress(description, done, total)``.
    device : {"auto", "cpu", "cuda"}, optional
        Where the networks (``mlp``, ``cnn``) train.

    Returns
    -------
    BaselineResult

    Examples
    --------
    >>> from dataworth.data import load_dataset  # doctest: +SKIP
    >>> result = run_baseline(load_dataset("breast_cancer"))  # doctest: +SKIP
    >>> result.metrics.loc["logreg", "accuracy"]  # doctest: +SKIP
    """
    models = list(available_models() if models is None else models)
    if primary_model not in models:
        models.insert(0, primary_model)
    if metric is not None:
        get_metric(metric)
    # Build every estimator first so a misspelled name fails before any fitting.
    estimators = {name: make_estimator(name, seed, device) for name in models}
    if len(np.unique(task.y_train)) < 2:
        raise DataworthError("The training set has a single class; a classifier needs two or more.")

    rows: dict[str, dict[str, float]] = {}
    primary_proba = primary_labels = None
    for i, name in enumerate(models):
        if progress:
            progress(f"fitting {name}", i, len(models))
        fitted, seconds, n_timed = time_fit(
            estimators[name], task.X_train, task.y_train, repeats=repeats
        )
        start = perf_counter()
        proba = _full_proba(fitted, task.X_test, task.n_classes)
        predict_seconds = perf_counter() - start
        labels = np.asarray(fitted.predict(task.X_test), dtype=int)
        row = {m: float(METRICS[m](proba[None], labels[None], task.y_test)[0]) for m in METRICS}
        row.update(fit_seconds=seconds, n_timed=n_timed, predict_seconds=predict_seconds)
        rows[name] = row
        if name == primary_model:
            primary_proba, primary_labels = proba, labels
    if progress:
        progress("baseline done", len(models), len(models))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"

    labels_all = list(range(task.n_classes))
    confusion = pd.DataFrame(
        confusion_matrix(task.y_test, primary_labels, labels=labels_all),
        index=pd.Index(task.class_names, name="true"),
        columns=pd.Index(task.class_names, name="predicted"),
    )
    return BaselineResult(
        task_summary=summarize_task(task),
        metrics=table,
        primary_model=primary_model,
        confusion=confusion,
        curves=_curves(task.y_test, primary_proba, task.class_names),
        metric=choose_primary_metric(task, metric, primary_proba),
        proba=primary_proba,
        seed=seed,
        descriptions={m: BASELINE_DESCRIPTIONS.get(m, m) for m in models},
    )
