"""The neural networks chosen by name (``--model mlp``, ``--model cnn``): learner and estimator.

A network name gives two things, like every model name: the batched learner the engine refits
on subsets (:class:`~dataworth.learners.torch.learner.TorchLearner`, many submodels side by side,
each for a fixed number of steps whatever its subset's size) and a scikit-learn classifier for the
baseline table and the cost study (:class:`NetworkClassifier`, one such network on all the rows
it is given). Both train the same network from the same seed, so the baseline's full-data model is
valuation's.

PyTorch stays optional: nothing here imports it until a network is built, and building one
without it raises the one-line :data:`~dataworth.learners.torch.models.INSTALL_TORCH`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from dataworth.data.task import Task
from dataworth.errors import DataworthError

NETWORKS: dict[str, str] = {
    "mlp": "multilayer perceptron, one hidden layer of 64 (PyTorch, 200 Adam steps)",
    "cnn": "small CNN, two 3x3 convolutions, for images (PyTorch, 200 Adam steps)",
}
"""The network names and how the baseline table describes them."""
DEVICES = ("auto", "cpu", "cuda")
STEPS = 200
"""Optimisation steps of every network, whatever the size of its subset (Lin et al., 2022)."""


def check_device(device: str | None) -> str:
    """``device`` as given (``auto`` when None), or a one-line error naming the choices."""
    device = "auto" if device is None else str(device)
    if device not in DEVICES:
        raise DataworthError(f"Unknown device {device!r}; use auto, cpu or cuda.")
    return device


def torch_device(device: str | None) -> str:
    """The torch device a choice means here: ``auto`` is CUDA when available, else the CPU."""
    from dataworth.learners.torch.models import _import_torch

    device = check_device(device)
    torch = _import_torch()
    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise DataworthError(
            "--device cuda was asked for, but torch finds no CUDA device here; use --device cpu "
            "(or auto)."
        )
    if device == "auto":
        return "cuda" if available else "cpu"
    return device


def network_learner(name: str, seed: int = 0, device: str | None = None) -> Any:
    """The batched learner of the network ``name`` (``mlp`` or ``cnn``).

    Parameters
    ----------
    name : str
        A key of :data:`NETWORKS`.
    seed : int
        The learner's seed: each submodel's seed derives from it and its subset.
    device : {"auto", "cpu", "cuda"}, optional
        Where to train (``auto``: CUDA when available).

    Returns
    -------
    TorchLearner
    """
    from dataworth.learners.torch.learner import TorchLearner
    from dataworth.learners.torch.models import mlp, small_cnn

    if name not in NETWORKS:
        raise DataworthError(f"Unknown network {name!r}; use one of {', '.join(NETWORKS)}.")
    factory = mlp((64,)) if name == "mlp" else small_cnn(side=None)
    return TorchLearner(factory, steps=STEPS, seed=seed, device=torch_device(device))


class NetworkClassifier(ClassifierMixin, BaseEstimator):
    """A network as a scikit-learn classifier: the baseline's and the cost study's view of it.

    Parameters
    ----------
    network : {"mlp", "cnn"}
    seed : int
    device : {"auto", "cpu", "cuda"}, optional
    """

    def __init__(self, network: str = "mlp", seed: int = 0, device: str | None = None) -> None:
        self.network = network
        self.seed = seed
        self.device = device

    def fit(self, X: np.ndarray, y: np.ndarray) -> NetworkClassifier:
        """Train one network on all of ``X`` (labels of any type)."""
        X = np.asarray(X, dtype=np.float64)
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        task = Task(
            X_train=X,
            y_train=codes,
            X_test=np.empty((0, X.shape[1])),
            y_test=np.empty(0, dtype=np.int64),
            feature_names=tuple(f"x{i}" for i in range(X.shape[1])),
            class_names=tuple(str(c) for c in self.classes_),
            train_ids=np.arange(len(X)),
            test_ids=np.arange(0),
            name="network-fit",
        )
        learner = network_learner(self.network, self.seed, self.device)
        self.predictor_ = learner.fit_predictor(task)
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, one column per class of ``classes_``."""
        return self.predictor_(np.asarray(X, dtype=np.float64))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class of each row."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
