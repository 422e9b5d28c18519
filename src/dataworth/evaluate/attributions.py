"""Attributions of single predictions, one matrix per method: what the LDS scores.

Every method here answers "how much does training point ``i`` move test row ``t``'s output?"
as a ``(test rows, training points)`` matrix, positive when the point raises the output:

- ``ame``: the AME of each point for each test row's per-prediction score (one LASSO per row,
  on ``n_models`` subsets the engine trains; Lin et al., ICML 2022);
- ``influence``: influence functions at the full-data model (logreg: the exact Hessian,
  :func:`~dataworth.methods.influence.influence`; networks: the damped Fisher,
  :func:`~dataworth.methods.gradients.network_influence.network_influence`);
- ``gradient_similarity``: TracIn with one checkpoint
  (:func:`~dataworth.methods.gradients.similarity.gradient_similarity`);
- ``knn_shapley``: KNN-Shapley of each row's own utility (Jia et al., VLDB 2019), on the
  input features; it needs no trained model;
- ``random``: Gaussian noise, the floor every method should clear.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import dataworth.methods.gradients.per_example as ng
from dataworth.errors import DataworthError

ATTRIBUTION_METHODS = ("ame", "influence", "gradient_similarity", "knn_shapley", "random")
"""Methods that attribute single predictions, in the order tables show them."""
DEFAULT_METHODS = ("ame", "influence", "gradient_similarity", "knn_shapley")


def check_methods(methods: Sequence[str] | None) -> tuple[str, ...]:
    """The methods asked for (default :data:`DEFAULT_METHODS`), or a one-line error."""
    names = DEFAULT_METHODS if methods is None else tuple(methods)
    unknown = [m for m in names if m not in ATTRIBUTION_METHODS]
    if unknown or not names:
        raise DataworthError(
            f"Unknown attribution method {unknown[0] if unknown else '(none)'!r}; use one of "
            f"{', '.join(ATTRIBUTION_METHODS)}."
        )
    return names


def trained_models(method: str, n_models: int) -> int:
    """How many models ``method`` trains: AME its subsets, the gradient methods one."""
    return {"ame": n_models, "influence": 1, "gradient_similarity": 1}.get(method, 0)


def _stack(results: dict, rows: Sequence[int]) -> np.ndarray:
    return np.stack([np.asarray(results[int(r)].values, dtype=np.float64) for r in rows])


def attribution_matrix(
    utility,
    method: str,
    rows: Sequence[int],
    *,
    n_models: int = 100,
    knn_k: int = 10,
    seed: int = 0,
    ame_law: str = "grid",
) -> np.ndarray:
    """The ``(len(rows), n_train)`` attributions of ``method`` for the test rows ``rows``.

    Parameters
    ----------
    utility : Utility
        Its per-prediction score (``per_prediction=``) is the output being attributed.
    method : str
        One of :data:`ATTRIBUTION_METHODS`.
    rows : sequence of int
        Test rows (positions in the test set).
    n_models : int, default=100
        Subsets AME trains models on (the other methods train at most one).
    knn_k : int, default=10
        Neighbours of KNN-Shapley.
    seed : int, default=0
        AME's design and the random floor.
    ame_law : str, default="grid"
        AME's law of ``p`` (see :func:`~dataworth.methods.ame.ame`); ``"banzhaf"`` (``p = 1/2``)
        draws its subsets as the LDS does.

    Returns
    -------
    ndarray of shape (len(rows), n_train)
    """
    rows = [int(r) for r in rows]
    task = utility.task
    if method == "ame":
        from dataworth.methods.ame import ame

        results = ame(utility, n_subsets=n_models, target=rows, seed=seed, law=ame_law)
        return _stack(results, rows)
    if method == "influence":
        if ng.is_network(utility.learner):
            from dataworth.methods.gradients.network_influence import network_influence

            return _stack(network_influence(utility, target=rows), rows)
        from dataworth.methods.influence import influence

        return _stack(influence(utility, target=rows), rows)
    if method == "gradient_similarity":
        from dataworth.methods.gradients.similarity import gradient_similarity

        return _stack(gradient_similarity(utility, target=rows), rows)
    if method == "knn_shapley":
        from dataworth.methods.knn.shapley import knn_shapley_matrix

        return knn_shapley_matrix(task, knn_k, test_rows=rows)
    if method == "random":
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(11,)))
        return rng.standard_normal((len(rows), task.n_train))
    check_methods([method])  # raises the one-line error
    raise AssertionError(method)  # pragma: no cover
