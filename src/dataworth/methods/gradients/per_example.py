"""Per-example parameter gradients of one trained network (a checkpoint), in blocks.

Gradient-based attributions of a network's predictions (gradient similarity, influence
functions, TRAK) all start from two matrices at one set of parameters ``theta``: the gradient of
each training point's loss, and the gradient of each explained test row's output. Both come
from one ``vmap(grad(...))`` over :func:`torch.func.functional_call`, a block of rows at a time
so that memory stays bounded whatever the number of rows.

The checkpoint is the :class:`~dataworth.learners.torch.learner.TorchLearner`'s own model of the
subset (by default every training row): the same seed, minibatches and steps as the model the
engine trains on that subset, so an attribution explains the network the utility scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.metrics import PER_PREDICTION_KINDS

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

# Rows whose gradients are held at once: about 64 MB of float32 for a 10,000-parameter network.
_BLOCK_ENTRIES = 16 * 2**20


@dataclass
class Checkpoint:
    """One trained network and what its gradients need.

    Attributes
    ----------
    base : torch.nn.Module
        A module of the architecture; its own tensors are never used (``functional_call``
        supplies ``params`` and ``buffers``).
    params, buffers : dict of str to Tensor
        The trained parameters (detached) and buffers.
    offsets : Tensor of shape (n_classes,)
        Logit offsets: 0 for a class of the training subset, ``-inf`` for one it lacks.
    device, dtype
        Where and in which precision the gradients are computed.
    """

    base: Any
    params: dict
    buffers: dict
    offsets: Any
    device: Any
    dtype: Any

    @property
    def n_params(self) -> int:
        """Number of trained parameters (the length of a flat gradient)."""
        return int(sum(v.numel() for v in self.params.values()))


def is_network(learner) -> bool:
    """Whether ``learner`` is the PyTorch learner (without importing torch)."""
    return any(c.__name__ == "TorchLearner" for c in type(learner).__mro__) and hasattr(
        learner, "fit_params"
    )


def checkpoint(learner, task: Task, mask: np.ndarray | None = None) -> Checkpoint:
    """Train the learner's network on ``mask`` (default: every training row) and keep it.

    Parameters
    ----------
    learner : TorchLearner
    task : Task
    mask : ndarray of bool, shape (n_train,), optional

    Returns
    -------
    Checkpoint
    """
    from dataworth.learners.torch.models import _import_torch

    torch = _import_torch()
    if not is_network(learner):
        raise DataworthError("A network checkpoint needs the PyTorch learner (mlp, cnn).")
    mask = np.ones(task.n_train, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    params = learner.fit_params(task, mask[None, :])
    device = learner._device()
    dtype = getattr(torch, learner.dtype)
    base = learner._new_module(task, learner.seed)
    base.eval()
    with torch.no_grad():
        trained = {k: v[0].to(device=device, dtype=dtype) for k, v in params.items()}
    buffers = {k: v.detach() for k, v in base.named_buffers()}
    offsets = learner._class_offsets(task, mask[None, :])[0]
    return Checkpoint(base, trained, buffers, offsets, device, dtype)


def _as_tensors(ck: Checkpoint, X: np.ndarray, y: np.ndarray):
    torch = _torch()
    return (
        torch.tensor(np.array(X, dtype=np.float64), dtype=ck.dtype, device=ck.device),
        torch.tensor(np.array(y), dtype=torch.long, device=ck.device),
    )


def _torch():
    from dataworth.learners.torch.models import _import_torch

    return _import_torch()


def _per_example(ck: Checkpoint, fn, X: np.ndarray, y: np.ndarray) -> torch.Tensor:
    """Flat gradients ``(len(X), P)`` of ``fn(logits_of_one_row, label)`` for each row."""
    torch = _torch()
    from torch.func import functional_call, grad, vmap

    names = list(ck.params)

    def one(params, x, label):
        logits = functional_call(ck.base, (params, ck.buffers), (x[None, :],))[0] + ck.offsets
        return fn(logits, label)

    per_row = vmap(grad(one), in_dims=(None, 0, 0))
    block = max(1, _BLOCK_ENTRIES // max(ck.n_params, 1))
    out = torch.empty((len(X), ck.n_params), dtype=ck.dtype, device=ck.device)
    for start in range(0, len(X), block):
        xb, yb = _as_tensors(ck, X[start : start + block], y[start : start + block])
        grads = per_row(ck.params, xb, yb)
        out[start : start + len(xb)] = torch.cat(
            [grads[k].reshape(len(xb), -1) for k in names], dim=1
        )
    return out


def _loss(logits, label):
    torch = _torch()
    return torch.nn.functional.cross_entropy(logits[None, :], label[None])


def output_function(kind: str):
    """The per-prediction score of one row's logits as a differentiable function.

    ``proba``: the true class's softmax probability; ``margin``: that minus the largest other
    class's probability; ``log_odds``: ``log(p / (1 - p))`` = the true logit minus the
    log-sum-exp of the others (TRAK's output function).
    """
    if kind not in PER_PREDICTION_KINDS:
        raise DataworthError(
            f"Unknown per-prediction score {kind!r}; use one of {', '.join(PER_PREDICTION_KINDS)}."
        )
    torch = _torch()

    def score(logits, label):
        # Masks, not indexing by the label: vmap allows no data-dependent indexing.
        is_true = torch.arange(logits.shape[0], device=logits.device) == label
        if kind == "log_odds":
            true = torch.where(is_true, logits, 0.0).sum()
            return true - torch.logsumexp(logits.masked_fill(is_true, -torch.inf), dim=0)
        proba = torch.softmax(logits, dim=0)
        true = torch.where(is_true, proba, 0.0).sum()
        if kind == "proba":
            return true
        return true - proba.masked_fill(is_true, -torch.inf).max()

    return score


def loss_gradients(ck: Checkpoint, X: np.ndarray, y: np.ndarray) -> torch.Tensor:
    """Gradients ``(len(X), P)`` of each row's cross-entropy loss in the checkpoint's parameters.

    Parameters
    ----------
    ck : Checkpoint
    X : ndarray of shape (rows, n_features)
    y : ndarray of int, shape (rows,)

    Returns
    -------
    Tensor
        On the checkpoint's device, in its precision.
    """
    return _per_example(ck, _loss, X, y)


def output_gradients(ck: Checkpoint, X: np.ndarray, y: np.ndarray, kind: str) -> torch.Tensor:
    """Gradients ``(len(X), P)`` of each row's per-prediction score (see :func:`output_function`).

    Parameters
    ----------
    ck : Checkpoint
    X : ndarray of shape (rows, n_features)
    y : ndarray of int, shape (rows,)
        The class each row's score is about (its true class, or an attack's target).
    kind : {"proba", "margin", "log_odds"}

    Returns
    -------
    Tensor
    """
    return _per_example(ck, output_function(kind), X, y)


def predict_proba(ck: Checkpoint, X: np.ndarray) -> np.ndarray:
    """Softmax probabilities ``(len(X), n_classes)`` of the checkpoint (float64)."""
    torch = _torch()
    from torch.func import functional_call

    xb, _ = _as_tensors(ck, X, np.zeros(len(X), dtype=np.int64))
    with torch.no_grad():
        logits = functional_call(ck.base, (ck.params, ck.buffers), (xb,)) + ck.offsets
        return torch.softmax(logits, dim=1).to("cpu", torch.float64).numpy()
