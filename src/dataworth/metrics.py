"""Metrics where higher is better, computed for many fitted models at once.

Every metric works on a batch of predictions: probabilities ``(K, T, C)`` and labels ``(K, T)``
for the ``T`` test rows, giving ``K`` scores. The same predictions give the per-prediction
scores (the probability of each test row's true class), so one fit yields both.
The formulas agree with scikit-learn's functions of the same name (the tests check it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from dataworth.errors import DataworthError

_EPS = np.finfo(np.float64).eps

MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """A named score of a batch of predictions; higher is better."""

    name: str
    function: MetricFn
    uses_probabilities: bool
    description: str
    #: Whether ``function`` reads the predicted labels; when False the engine passes ``None``
    #: instead of taking an argmax over every model's probabilities (a pass over ``K x T x C``).
    uses_labels: bool = True

    def __call__(self, proba: np.ndarray, labels: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        return self.function(proba, labels, y_true)


def _accuracy(proba, labels, y):
    return (labels == y[None, :]).mean(axis=1)


def _balanced_accuracy(proba, labels, y):
    present = np.unique(y)
    recalls = [((labels == c) & (y == c)[None, :]).sum(axis=1) / (y == c).sum() for c in present]
    return np.mean(recalls, axis=0)


def _f1(proba, labels, y):
    n_classes = proba.shape[2]
    classes = [1] if n_classes == 2 else range(n_classes)
    scores, used = [], []
    for c in classes:
        pred_c, true_c = labels == c, (y == c)[None, :]
        tp = (pred_c & true_c).sum(axis=1)
        denom = pred_c.sum(axis=1) + true_c.sum()
        scores.append(np.divide(2.0 * tp, denom, out=np.zeros(len(labels)), where=denom > 0))
        # scikit-learn's macro average counts the classes seen in y_true or y_pred.
        used.append(denom > 0 if n_classes > 2 else np.ones(len(labels), dtype=bool))
    scores, used = np.array(scores), np.array(used)
    return (scores * used).sum(axis=0) / np.maximum(used.sum(axis=0), 1)


def _binary_auc(score: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of each row of ``score`` (K, T) against a fixed positive mask (T,)."""
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        raise DataworthError(
            "ROC AUC needs both classes in the test set; pick another metric or a larger test set."
        )
    ranks = rankdata(score, axis=1)
    return (ranks[:, positive].sum(axis=1) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _roc_auc(proba, labels, y):
    if proba.shape[2] == 2:
        return _binary_auc(proba[:, :, 1], y == 1)
    # One-vs-rest, macro average, as scikit-learn's roc_auc_score(multi_class="ovr").
    return np.mean([_binary_auc(proba[:, :, c], y == c) for c in range(proba.shape[2])], axis=0)


def _neg_log_loss(proba, labels, y):
    p_true = np.take_along_axis(proba, y[None, :, None], axis=2)[:, :, 0]
    return np.log(np.clip(p_true, _EPS, 1 - _EPS)).mean(axis=1)


def _neg_brier(proba, labels, y):
    if proba.shape[2] == 2:
        return -((proba[:, :, 1] - (y == 1)[None, :]) ** 2).mean(axis=1)
    onehot = np.eye(proba.shape[2])[y]
    return -((proba - onehot[None]) ** 2).sum(axis=2).mean(axis=1)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", _accuracy, False, "share of test rows classified correctly"),
        Metric(
            "balanced_accuracy",
            _balanced_accuracy,
            False,
            "mean recall over classes, insensitive to class imbalance",
        ),
        Metric(
            "roc_auc",
            _roc_auc,
            True,
            "ranking quality of the predicted probabilities (one-vs-rest macro for multiclass)",
            uses_labels=False,
        ),
        Metric("f1", _f1, False, "harmonic mean of precision and recall (macro for multiclass)"),
        Metric(
            "neg_log_loss",
            _neg_log_loss,
            True,
            "negative cross-entropy of the predicted probabilities",
            uses_labels=False,
        ),
        Metric(
            "neg_brier",
            _neg_brier,
            True,
            "negative Brier score of the probabilities",
            uses_labels=False,
        ),
    )
}


def get_metric(metric: str | Metric) -> Metric:
    """Look a metric up by name, with a one-line error listing the known names."""
    if isinstance(metric, Metric):
        return metric
    try:
        return METRICS[metric]
    except KeyError:
        known = ", ".join(METRICS)
        raise DataworthError(f"Unknown metric {metric!r}; choose one of: {known}.") from None


PER_PREDICTION_KINDS = ("proba", "margin", "log_odds")
"""The per-test-row scores a utility can record (see :func:`per_prediction_scores`)."""
# Log-odds are bounded by the smallest positive double, so a probability rounded to 0 or 1 gives
# a large finite score instead of an infinite one.
_TINY = np.finfo(np.float64).tiny


def per_prediction_scores(proba: np.ndarray, y_true: np.ndarray, kind: str = "proba") -> np.ndarray:
    """Per-test-row scores ``(K, T)``: the probability of the true class, its margin or log-odds.

    The margin is the true class's probability minus the largest other class's probability.
    The log-odds ``log(p / (1 - p))`` of the true class is the model output TRAK and dattri
    correlate in the linear datamodeling score (Park et al., ICML 2023); ``1 - p`` is summed
    from the other classes' probabilities, which keeps its precision when ``p`` is near 1.
    """
    p_true = np.take_along_axis(proba, y_true[None, :, None], axis=2)[:, :, 0]
    if kind == "proba":
        return p_true
    if kind not in PER_PREDICTION_KINDS:
        known = ", ".join(repr(k) for k in PER_PREDICTION_KINDS)
        raise DataworthError(f"Unknown per-prediction score {kind!r}; use one of {known}.")
    others = proba.copy()
    if kind == "margin":
        np.put_along_axis(others, y_true[None, :, None], -np.inf, axis=2)
        return p_true - others.max(axis=2)
    np.put_along_axis(others, y_true[None, :, None], 0.0, axis=2)
    rest = np.maximum(others.sum(axis=2), _TINY)
    return np.log(np.maximum(p_true, _TINY)) - np.log(rest)
