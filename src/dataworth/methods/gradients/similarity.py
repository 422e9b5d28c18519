"""Gradient similarity: a TracIn-style attribution of single predictions from one checkpoint.

TracIn (Pruthi et al., NeurIPS 2020) scores a training point ``i`` for a test prediction ``z``
by how much the gradient steps on ``i`` moved ``z``'s loss, summed over checkpoints of training:
``eta * grad loss_i . grad loss_z``. With one checkpoint (the final model) and the test row's
per-prediction score ``f_z`` (its true class's probability, margin or log-odds) in place of its
loss, one step of size ``eta`` on point ``i`` changes the score by::

    f_z(theta - eta grad loss_i) - f_z(theta) ~ -eta grad loss_i . grad f_z

so ``value_i = -grad loss_i . grad f_z``, positive when training on ``i`` raises the score (the
sign convention of every dataworth value; the step size is a common factor and is dropped).

The checkpoint is the utility's full-data model: the batched logistic regression's solution
(gradients in closed form, NumPy only) or the PyTorch learner's network trained on every row
(per-example gradients by ``torch.func``; needs the ``torch`` extra).

References
----------
Pruthi, Liu, Kale and Sundararajan, "Estimating Training Data Influence by Tracing Gradient
Descent", NeurIPS 2020.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import dataworth.methods.gradients.per_example as ng
from dataworth.engine.game import Game
from dataworth.errors import DataworthError
from dataworth.learners.logreg import BatchedLogisticRegression
from dataworth.methods._common import Timer, manifest, point_ids, resolve_points
from dataworth.methods.influence import (
    _augment,
    _logit_gradients,
    _param_gradient,
    _prediction_proba_gradient,
    _probabilities,
    _resolve_targets,
)
from dataworth.methods.result import ValuationResult


def _check(utility):
    if isinstance(utility, Game) or not hasattr(utility, "task"):
        raise DataworthError(
            "Gradient similarity needs a Utility with a differentiable model (logreg, mlp, cnn)."
        )
    learner = utility.learner
    if isinstance(learner, BatchedLogisticRegression) or ng.is_network(learner):
        return learner
    name = getattr(learner, "name", type(learner).__name__)
    raise DataworthError(
        f"Gradient similarity needs a differentiable model (logreg, mlp or cnn); this utility "
        f"uses {name!r}."
    )


def gradient_matrices(utility, rows: Sequence[int], positions: np.ndarray, kind: str):
    """The gradients behind the scores, as NumPy arrays (float64).

    Parameters
    ----------
    utility : Utility
        With ``learner="logreg"`` or a network.
    rows : sequence of int
        Test rows explained.
    positions : ndarray of int
        Training positions valued.
    kind : {"proba", "margin", "log_odds"}
        The per-prediction score whose gradient is taken.

    Returns
    -------
    target_grads : ndarray of shape (len(rows), P)
        Gradients of each test row's score in the full-data model's parameters.
    loss_grads : ndarray of shape (len(positions), P)
        Gradients of each training point's loss (cross-entropy).
    """
    learner = _check(utility)
    task = utility.task
    rows = np.asarray(rows, dtype=np.int64)
    if ng.is_network(learner):
        ck = ng.checkpoint(learner, task)
        target = ng.output_gradients(ck, task.X_test[rows], task.y_test[rows], kind)
        loss = ng.loss_gradients(ck, task.X_train[positions], task.y_train[positions])
        return target.double().cpu().numpy(), loss.double().cpu().numpy()
    n_classes = task.n_classes
    if np.setdiff1d(np.arange(n_classes), task.y_train).size:
        raise DataworthError("Every class needs a training row for gradient similarity.")
    theta = learner.reference(task.X_train, task.y_train, n_classes)
    Xa_test = _augment(task.X_test[rows])
    proba_test = _probabilities(theta, Xa_test, n_classes)
    d_proba = _prediction_proba_gradient(kind, proba_test, task.y_test[rows])
    target = _param_gradient(Xa_test, _logit_gradients(proba_test, d_proba))
    Xa_train = _augment(task.X_train[positions])
    proba_train = _probabilities(theta, Xa_train, n_classes)
    # d(-log p_y)/dz = p - onehot (the binary model's single logit: p1 - y).
    residual = proba_train - np.eye(n_classes)[task.y_train[positions]]
    d_logit = residual[:, 1:] if n_classes == 2 else residual
    return target, _param_gradient(Xa_train, d_logit)


def gradient_similarity(
    utility,
    *,
    target: int | Sequence[int],
    points=None,
    normalize: bool = False,
) -> ValuationResult | dict[int, ValuationResult]:
    """TracIn-style gradient similarity of each training point for test predictions.

    ``value_i = -grad loss_i . grad f_z`` at the full-data model (one checkpoint), with ``f_z``
    the test row's per-prediction score as the utility records it (the probability of its true
    class, its margin or its log-odds; ``per_prediction=`` of :class:`~dataworth.Utility`).
    Positive when a gradient step on point ``i`` raises the score.

    Parameters
    ----------
    utility : Utility
        With ``learner="logreg"`` (NumPy only) or a network (``"mlp"``, ``"cnn"`` or a
        :class:`~dataworth.learners.torch.learner.TorchLearner`; needs the ``torch`` extra).
    target : int or sequence of int
        A test row (its position in the test set), or a list of them.
    points : sequence, optional
        Ids of the training points to value; default all.
    normalize : bool, default=False
        Divide by both gradients' norms (the cosine, "Grad-Cos"); the default is the dot
        product (TracIn with one checkpoint, "Grad-Dot").

    Returns
    -------
    ValuationResult or dict of int to ValuationResult
        One result for one test row; a dict from each row to its result for a list.
        ``n_fitted`` is 1 (the full-data model).

    References
    ----------
    Pruthi, Liu, Kale and Sundararajan, "Estimating Training Data Influence by Tracing
    Gradient Descent", NeurIPS 2020.

    Examples
    --------
    >>> import dataworth as dw
    >>> task = dw.load_dataset("iris", seed=0)
    >>> u = dw.Utility(task, learner="logreg", per_prediction="log_odds")
    >>> result = gradient_similarity(u, target=0)
    >>> result.values.shape == (task.n_train,)
    True
    """
    _check(utility)
    task = utility.task
    if isinstance(target, str):
        raise DataworthError("Gradient similarity explains test rows: give a row or a list.")
    keys = _resolve_targets(task, target)
    positions = resolve_points(utility, points, None, 0)
    kind = getattr(utility, "per_prediction_kind", "proba")
    timer = Timer()
    with timer.phase("gradients"):
        target_grads, loss_grads = gradient_matrices(utility, keys, positions, kind)
    with timer.phase("products"):
        values = -(target_grads @ loss_grads.T)
        if normalize:
            norms = (
                np.linalg.norm(target_grads, axis=1)[:, None]
                * np.linalg.norm(loss_grads, axis=1)[None, :]
            )
            values = values / np.where(norms > 0, norms, 1.0)
    ids = point_ids(utility, positions)
    results = {
        key: ValuationResult(
            method="gradient_similarity",
            values=values[t],
            player_ids=ids,
            counts=np.zeros(len(positions), dtype=np.int64),
            params={
                "target": f"test:{key}",
                "points": "all" if points is None else len(positions),
                "normalize": normalize,
                "per_prediction": kind,
                "checkpoints": 1,
            },
            n_evaluations=1,
            n_fitted=1,
            timings=dict(timer.seconds),
            manifest=manifest(utility),
            extra={"position": positions},
        )
        for t, key in enumerate(keys)
    }
    return results[keys[0]] if np.isscalar(target) else results
