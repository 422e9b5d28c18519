"""Influence functions of a network's single predictions, with a damped Fisher Hessian.

Koh and Liang's (ICML 2017) influence of adding training point ``i`` on a test row's score
``f_z`` is ``-grad f_z^T H^{-1} grad loss_i`` at the trained parameters. A network's Hessian is
not positive definite and has as many rows as parameters; here it is replaced by the damped
empirical Fisher ``F = G^T G / n + lambda I``, ``G`` the ``(n, P)`` matrix of the training
points' loss gradients, a positive definite curvature of the training loss that never needs a
``P x P`` matrix: by the Woodbury identity::

    G F^{-1} g = n (G G^T + n lambda I)^{-1} G g

one ``n x n`` solve values every point for every test row. ``lambda`` is ``damping`` times the
mean non-zero eigenvalue of ``G^T G / n`` (``trace(G G^T) / n^2``), so the damping is relative
to the curvature's own scale.

References
----------
Koh, P. W. and Liang, P. "Understanding Black-box Predictions via Influence Functions",
ICML 2017.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import cho_factor, cho_solve

import dataworth.methods.gradients.per_example as ng
from dataworth.errors import DataworthError
from dataworth.methods._common import Timer, manifest, point_ids
from dataworth.methods.influence import _resolve_targets
from dataworth.methods.result import ValuationResult

DEFAULT_DAMPING = 0.01
"""Damping of the Fisher, relative to its mean non-zero eigenvalue."""


def fisher_influence_matrix(
    target_grads: np.ndarray, loss_grads: np.ndarray, damping: float = DEFAULT_DAMPING
) -> np.ndarray:
    """``-g_t^T F^{-1} g_i`` for every test row ``t`` and training point ``i``.

    Parameters
    ----------
    target_grads : ndarray of shape (T, P)
        Gradients of the test rows' scores.
    loss_grads : ndarray of shape (n, P)
        Gradients of the training points' losses; they also form the Fisher.
    damping : float
        ``lambda`` over the Fisher's mean non-zero eigenvalue.

    Returns
    -------
    ndarray of shape (T, n)
    """
    if not (np.isfinite(damping) and damping > 0):
        raise DataworthError(f"damping must be a positive number, got {damping!r}.")
    n = len(loss_grads)
    # The Gram matrix in the gradients' own precision (float32 halves the time of this, the
    # costly product), the solve in float64.
    gram = (loss_grads @ loss_grads.T).astype(np.float64)
    scale = np.trace(gram) / n**2
    if scale <= 0:  # every loss gradient is zero: nothing moves any prediction
        return np.zeros((len(target_grads), n))
    lam = damping * scale
    gram[np.diag_indices_from(gram)] += n * lam
    rhs = (loss_grads @ target_grads.T).astype(np.float64)  # (n, T)
    return -(n * cho_solve(cho_factor(gram), rhs)).T


def network_influence(
    utility,
    *,
    target: int | Sequence[int],
    damping: float = DEFAULT_DAMPING,
) -> ValuationResult | dict[int, ValuationResult]:
    """Influence of each training point on test predictions of a network (damped Fisher).

    Parameters
    ----------
    utility : Utility
        With a network learner (``"mlp"``, ``"cnn"`` or a
        :class:`~dataworth.learners.torch.learner.TorchLearner`; needs the ``torch`` extra).
        The score is the utility's per-prediction score (``per_prediction=``).
    target : int or sequence of int
        A test row, or a list of them.
    damping : float, default=0.01
        The Fisher's damping relative to its mean non-zero eigenvalue.

    Returns
    -------
    ValuationResult or dict of int to ValuationResult
        One result for one row, a dict from each row to its result for a list; ``n_fitted`` is
        1 (the full-data network).
    """
    learner = getattr(utility, "learner", None)
    if not ng.is_network(learner):
        raise DataworthError(
            "network_influence needs a network learner (mlp, cnn); use influence() for logreg."
        )
    task = utility.task
    if isinstance(target, str):
        raise DataworthError("Network influence explains test rows: give a row or a list.")
    keys = _resolve_targets(task, target)
    kind = getattr(utility, "per_prediction_kind", "proba")
    timer = Timer()
    with timer.phase("gradients"):
        ck = ng.checkpoint(learner, task)
        rows = np.asarray(keys)
        t_grads = ng.output_gradients(ck, task.X_test[rows], task.y_test[rows], kind)
        l_grads = ng.loss_gradients(ck, task.X_train, task.y_train)
    with timer.phase("solve"):
        values = fisher_influence_matrix(
            t_grads.double().cpu().numpy(), l_grads.double().cpu().numpy(), damping
        )
    positions = np.arange(task.n_train)
    results = {
        key: ValuationResult(
            method="influence",
            values=values[t],
            player_ids=point_ids(utility, positions),
            params={
                "target": f"test:{key}",
                "method": "fisher",
                "damping": damping,
                "per_prediction": kind,
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
