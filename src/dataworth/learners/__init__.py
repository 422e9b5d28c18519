"""Learners: how a classifier is fitted to training subsets (docs/design.md, section 4)."""

from __future__ import annotations

from typing import Any

from dataworth.learners.base import Learner
from dataworth.learners.knn import BatchedKNN
from dataworth.learners.logreg.learner import BatchedLogisticRegression
from dataworth.learners.registry import available_models, make_estimator
from dataworth.learners.sklearn_generic import SklearnLearner
from dataworth.learners.torch.networks import NETWORKS, network_learner

__all__ = [
    "BatchedKNN",
    "BatchedLogisticRegression",
    "Learner",
    "SklearnLearner",
    "available_models",
    "make_estimator",
    "make_learner",
]


def make_learner(learner: Any = "logreg", seed: int = 0, device: str | None = None) -> Learner:
    """Resolve a learner specification for the engine.

    Parameters
    ----------
    learner : str, Learner or scikit-learn classifier
        ``"logreg"`` gives the batched exact logistic regression and ``"knn"`` the batched
        k-nearest neighbours; any other model name, or any scikit-learn classifier, takes the
        generic clone-fit-predict path; ``"mlp"`` and ``"cnn"`` give PyTorch networks trained
        side by side (:func:`~dataworth.learners.torch.networks.network_learner`). An object that
        already implements the :class:`Learner` protocol is used as it is.
    seed : int
        Random state for generic models that use one, and the networks' seed.
    device : {"auto", "cpu", "cuda"}, optional
        Where a network trains (ignored by the other learners).
    """
    if isinstance(learner, str):
        if learner in NETWORKS:
            return network_learner(learner, seed=seed, device=device)
        if learner == "logreg":
            return BatchedLogisticRegression()
        if learner == "knn":
            return BatchedKNN()
        return SklearnLearner(make_estimator(learner, seed=seed))
    if hasattr(learner, "predict_proba_batch") and hasattr(learner, "fingerprint"):
        return learner
    return SklearnLearner(make_estimator(learner, seed=seed))
