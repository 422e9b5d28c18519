"""Named classifiers: the baseline models and the learners the engine fits on subsets."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from sklearn.base import ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from dataworth.errors import DataworthError
from dataworth.learners.torch.networks import NETWORKS, NetworkClassifier, check_device

BASELINE_DESCRIPTIONS: dict[str, str] = {
    "logreg": "L2-regularised logistic regression (C=1)",
    "random_forest": "random forest, 200 trees",
    "knn": "k-nearest neighbours, k=5",
    "hist_gb": "histogram gradient boosting",
    "xgboost": "XGBoost gradient-boosted trees (optional dependency)",
    **NETWORKS,
}


def _xgboost(seed: int) -> ClassifierMixin:
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=200, random_state=seed, n_jobs=1, verbosity=0)


_FACTORIES: dict[str, Callable[[int], ClassifierMixin]] = {
    "logreg": lambda seed: LogisticRegression(C=1.0, max_iter=1000),
    "random_forest": lambda seed: RandomForestClassifier(
        n_estimators=200, random_state=seed, n_jobs=1
    ),
    "knn": lambda seed: KNeighborsClassifier(n_neighbors=5),
    "hist_gb": lambda seed: HistGradientBoostingClassifier(random_state=seed),
    "xgboost": _xgboost,
}


def available_models() -> list[str]:
    """Names of the default baseline classifiers usable here (XGBoost only when it is installed).

    The networks (:data:`~dataworth.learners.torch.networks.NETWORKS`) are not among them: they are
    used when named (``--model cnn``, ``--baselines logreg,mlp``), since they need PyTorch and
    the CNN needs images.
    """
    names = [n for n in _FACTORIES if n != "xgboost"]
    if importlib.util.find_spec("xgboost") is not None:
        names.append("xgboost")
    return names


def make_estimator(
    model: str | ClassifierMixin, seed: int = 0, device: str | None = None
) -> ClassifierMixin:
    """A fresh scikit-learn classifier from a name, or a clone of the given estimator.

    Parameters
    ----------
    model : str or scikit-learn classifier
        A name from :func:`available_models`, or any classifier with ``predict_proba``.
    seed : int
        Random state for the models that use one.
    device : {"auto", "cpu", "cuda"}, optional
        Where a network trains (ignored by the other models).
    """
    if isinstance(model, str) and model in NETWORKS:
        from dataworth.learners.torch.models import _import_torch

        _import_torch()  # without PyTorch, the one line saying how to install it
        return NetworkClassifier(model, seed=seed, device=check_device(device))
    if not isinstance(model, str):
        if not hasattr(model, "fit") or not hasattr(model, "predict_proba"):
            raise DataworthError(
                f"{type(model).__name__} is not a classifier with predict_proba; "
                "pass a scikit-learn classifier or a model name."
            )
        return clone(model)
    if model not in available_models():
        hint = " (install it with `pip install xgboost`)" if model == "xgboost" else ""
        known = ", ".join(available_models()) + ", or a network: " + ", ".join(NETWORKS)
        raise DataworthError(f"Unknown model {model!r}{hint}; choose one of: {known}.")
    return _FACTORIES[model](seed)
