"""The generic path: clone any scikit-learn classifier, fit it on the subset, predict."""

from __future__ import annotations

import hashlib

import numpy as np
from sklearn.base import ClassifierMixin, clone

from dataworth.data.task import Task


def _with_fixed_seed(estimator: ClassifierMixin) -> ClassifierMixin:
    """Pin ``random_state`` where the estimator has one, so that ``U(S)`` is deterministic."""
    params = estimator.get_params(deep=True)
    fixed = {k: 0 for k, v in params.items() if k.endswith("random_state") and v is None}
    return clone(estimator).set_params(**fixed) if fixed else clone(estimator)


class SklearnLearner:
    """Fit a clone of a scikit-learn classifier per subset.

    Parameters
    ----------
    estimator : scikit-learn classifier with ``predict_proba``
        Cloned for every subset; an unset ``random_state`` is pinned to 0 so that refitting
        the same subset gives the same model.
    """

    def __init__(self, estimator: ClassifierMixin) -> None:
        self.estimator = _with_fixed_seed(estimator)
        self.name = type(estimator).__name__
        self.batched = False

    def fingerprint(self) -> str:
        params = sorted((k, repr(v)) for k, v in self.estimator.get_params(deep=True).items())
        text = f"{type(self.estimator).__module__}.{self.name}:{params}"
        return "sklearn:" + hashlib.sha256(text.encode()).hexdigest()[:24]

    def predict_proba_batch(self, task: Task, masks: np.ndarray) -> np.ndarray:
        out = np.zeros((len(masks), task.n_test, task.n_classes))
        for k, mask in enumerate(masks):
            model = clone(self.estimator).fit(task.X_train[mask], task.y_train[mask])
            # A subset may lack classes: place the model's columns at its classes' positions.
            out[k][:, model.classes_] = model.predict_proba(task.X_test)
        return out
