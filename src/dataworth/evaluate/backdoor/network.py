"""Per-query scores read off one trained network: influence, gradient similarity, KNN-Shapley.

The backdoor experiment's baselines that need no refitting (docs/design.md, "The backdoor
experiment"). Each takes the network trained on every training row and gives a ``(queries,
n_train)`` matrix in which a larger score says the training row pushes the query towards the
target class:

* :func:`last_layer_influence`: influence functions (Koh and Liang, ICML 2017) on the output
  layer, the rest of the network frozen: the exact Hessian of the mean cross-entropy in the last
  layer's weights (a multinomial logistic regression on the hidden features, damped), the change
  of the query's probability of the target when a row is removed, negated;
* :func:`gradient_similarity`: TracIn at one checkpoint (Pruthi et al., NeurIPS 2020), the dot
  product of the query's and the row's loss gradients in every parameter of the final network;
* :func:`hidden_knn_shapley`: KNN-Shapley (Jia et al., VLDB 2019) on the network's last hidden
  layer, the query labelled with the target class.

PyTorch is needed (the ``torch`` extra); the caller checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.methods.knn.shapley import knn_shapley_matrix

DAMPING = 1e-3
"""Added to the last layer's Hessian: softmax logits shifted by a constant give the same loss,
so the Hessian is singular without it."""


@dataclass
class TrainedNetwork:
    """The network a learner trains on every row of a task, as a plain module.

    Attributes
    ----------
    module : torch.nn.Sequential
        The trained network, in evaluation mode; its last layer is a ``Linear``.
    task : Task
    """

    module: Any
    task: Task

    @classmethod
    def fit(cls, learner: Any, task: Task) -> TrainedNetwork:
        """Train ``learner``'s network on every training row (the full-data submodel)."""
        import torch

        params = learner.fit_params(task, np.ones((1, task.n_train), dtype=bool))
        module = learner.module_factory(task.n_features, task.n_classes)
        if not isinstance(module, torch.nn.Sequential) or not isinstance(
            module[-1], torch.nn.Linear
        ):
            raise DataworthError(
                "The backdoor experiment's baselines need a network ending in a Linear layer "
                "(the mlp and cnn do)."
            )
        module.load_state_dict({name: value[0] for name, value in params.items()})
        module = module.to(dtype=getattr(torch, learner.dtype)).eval()
        return cls(module, task)

    def _tensor(self, X: np.ndarray):
        import torch

        weight = self.module[-1].weight
        return torch.tensor(np.array(X), dtype=weight.dtype)

    def hidden(self, X: np.ndarray) -> np.ndarray:
        """The last hidden layer's activations of rows ``X`` (float64)."""
        import torch

        with torch.no_grad():
            return self.module[:-1](self._tensor(X)).double().numpy()

    def proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities of rows ``X``."""
        import torch

        with torch.no_grad():
            return torch.softmax(self.module(self._tensor(X)), dim=1).double().numpy()


def last_layer_influence(net: TrainedNetwork, target: int) -> np.ndarray:
    """Influence of each training row on each query's probability of ``target``.

    With ``theta`` the output layer's weights and bias, ``H`` the Hessian of the mean training
    cross-entropy in ``theta`` (plus :data:`DAMPING`), ``g_i`` row ``i``'s loss gradient and
    ``f_q`` the query's ``P(target)``: removing row ``i`` moves ``theta`` by about
    ``H^-1 g_i / n``, so including it changes ``f_q`` by ``-grad f_q . H^-1 g_i / n``.

    Parameters
    ----------
    net : TrainedNetwork
    target : int
        The class whose probability the queries (the task's test rows) are explained by.

    Returns
    -------
    ndarray of shape (n_queries, n_train)
    """
    task = net.task
    n, C = task.n_train, task.n_classes
    H_tr = np.hstack([net.hidden(task.X_train), np.ones((n, 1))])  # (n, h+1)
    H_q = np.hstack([net.hidden(task.X_test), np.ones((task.n_test, 1))])
    P_tr, P_q = net.proba(task.X_train), net.proba(task.X_test)
    d = H_tr.shape[1]
    # Hessian of the mean cross-entropy in vec(theta) (class-major): sum over rows of
    # (diag(p) - p p^T) kron (h h^T), divided by n.
    hess = np.zeros((C * d, C * d))
    for c in range(C):
        for e in range(C):
            weight = P_tr[:, c] * ((c == e) - P_tr[:, e])
            hess[c * d : (c + 1) * d, e * d : (e + 1) * d] = (H_tr * weight[:, None]).T @ H_tr / n
    hess += DAMPING * np.eye(C * d)
    onehot = np.eye(C)[task.y_train]
    g_rows = ((P_tr - onehot)[:, :, None] * H_tr[:, None, :]).reshape(n, C * d)
    # d P(target) / d logits = p_t (e_t - p); times the features for the weights.
    d_logit = P_q[:, [target]] * (np.eye(C)[target][None, :] - P_q)
    g_q = (d_logit[:, :, None] * H_q[:, None, :]).reshape(task.n_test, C * d)
    return -(np.linalg.solve(hess, g_q.T).T @ g_rows.T) / n


def gradient_similarity(net: TrainedNetwork, target: int) -> np.ndarray:
    """TracIn at the final checkpoint: ``grad loss(query, target) . grad loss(row, label)``.

    A positive score marks a proponent: a gradient step on the row lowers the query's loss of
    the target class (raises its probability). The learning rate, a common factor, is left out.

    Parameters
    ----------
    net : TrainedNetwork
    target : int

    Returns
    -------
    ndarray of shape (n_queries, n_train)
    """
    import torch
    from torch.func import functional_call, grad, vmap

    module = net.module
    params = {k: v.detach() for k, v in module.named_parameters()}

    def loss(p, x, y):
        logits = functional_call(module, p, (x[None, :],))
        return torch.nn.functional.cross_entropy(logits, y[None])

    per_row = vmap(grad(loss), in_dims=(None, 0, 0))

    def flat(X: np.ndarray, y: np.ndarray) -> torch.Tensor:
        grads = per_row(params, net._tensor(X), torch.tensor(np.array(y), dtype=torch.long))
        return torch.cat([g.reshape(len(X), -1) for g in grads.values()], dim=1)

    task = net.task
    with torch.no_grad():
        rows = flat(task.X_train, task.y_train)
        queries = flat(task.X_test, np.full(task.n_test, target))
        return (queries @ rows.T).double().numpy()


def hidden_knn_shapley(net: TrainedNetwork, target: int, k: int = 10) -> np.ndarray:
    """KNN-Shapley values of each row for each query, in the last hidden layer's space.

    Parameters
    ----------
    net : TrainedNetwork
    target : int
        The label each query is scored with (the KNN utility counts neighbours of that label).
    k : int, default 10

    Returns
    -------
    ndarray of shape (n_queries, n_train)
    """
    task = net.task
    features = Task.from_arrays(
        net.hidden(task.X_train),
        task.y_train,
        net.hidden(task.X_test),
        np.full(task.n_test, target),
        name="hidden-layer",
    )
    # Encoded labels: Task.from_arrays re-encodes; the target keeps its code when every class
    # is in the training rows (always so here: the labels are 0..C-1).
    return knn_shapley_matrix(features, k, test_rows=np.arange(task.n_test))
