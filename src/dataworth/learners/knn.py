"""Batched k-nearest neighbours: distances once, every subset by masking the neighbour ranks."""

from __future__ import annotations

import numpy as np

from dataworth.data.task import Task


class BatchedKNN:
    """Uniform-vote k-nearest-neighbour classifier evaluated on many subsets at once.

    The test-to-train distance ranks are computed once per task; a subset's neighbours are the
    first ``k`` of its members in that order. Equal distances are ordered by training position
    (a stable sort), so results are deterministic. A subset with fewer than ``k`` members uses
    all of them. Probabilities are the vote shares, as ``KNeighborsClassifier`` gives them.

    Parameters
    ----------
    n_neighbors : int
        Number of neighbours ``k``.
    max_block_bytes : int
        Bound on the working memory of one block of subsets.
    """

    name = "knn"
    batched = True

    def __init__(self, n_neighbors: int = 5, max_block_bytes: int = 64 * 2**20) -> None:
        self.n_neighbors = int(n_neighbors)
        self.max_block_bytes = int(max_block_bytes)
        self._order_cache: tuple[str, np.ndarray] | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_order_cache"] = None  # recomputed in the worker; keeps pickles small
        return state

    def fingerprint(self) -> str:
        return f"knn:k={self.n_neighbors}"

    def neighbour_order(self, task: Task) -> np.ndarray:
        """Training positions sorted by distance to each test row, shape ``(T, N)``."""
        if self._order_cache is None or self._order_cache[0] != task.fingerprint:
            sq = (
                (task.X_test**2).sum(axis=1)[:, None]
                - 2.0 * task.X_test @ task.X_train.T
                + (task.X_train**2).sum(axis=1)[None, :]
            )
            order = np.argsort(sq, axis=1, kind="stable")
            self._order_cache = (task.fingerprint, order)
        return self._order_cache[1]

    def predict_proba_batch(self, task: Task, masks: np.ndarray) -> np.ndarray:
        order = self.neighbour_order(task)
        n_test, n_train = order.shape
        labels_by_rank = task.y_train[order]  # (T, N)
        out = np.empty((len(masks), n_test, task.n_classes))
        per_subset = n_test * n_train * 10  # bool + int64 cumulative count per cell, roughly
        block = max(1, self.max_block_bytes // max(per_subset, 1))
        for start in range(0, len(masks), block):
            member = masks[start : start + block][:, order]  # (B, T, N) in rank order
            chosen = member & (np.cumsum(member, axis=2) <= self.n_neighbors)
            for c in range(task.n_classes):
                out[start : start + block, :, c] = (chosen & (labels_by_rank == c)).sum(axis=2)
        out /= out.sum(axis=2, keepdims=True)
        return out
