"""What a learner is to the engine: fit many subsets, predict the test rows' class probabilities.

A learner never sees degenerate subsets (fewer than two classes): the engine scores those with the
prior-only policy of :mod:`dataworth.learners.degenerate`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from dataworth.data.task import Task


@runtime_checkable
class Learner(Protocol):
    """A way of fitting a classifier to many training subsets at once.

    Implementations must be picklable (they travel to worker processes) and deterministic: the
    probabilities for one subset must not depend on which other subsets share its batch.

    A learner with a true ``supports_chains`` attribute also accepts
    ``predict_proba_batch(task, masks, chains=labels)``: rows with the same label form a chain of
    nested subsets that it may solve in order, each warm-started from the one before; then a
    subset's result may depend on its chain's earlier members, and on nothing else.
    """

    name: str

    def fingerprint(self) -> str:
        """A stable text that identifies the learner and every parameter that changes its fits."""
        ...

    def predict_proba_batch(self, task: Task, masks: np.ndarray) -> np.ndarray:
        """Fit one model per row of ``masks`` and return test-set probabilities.

        Parameters
        ----------
        task : Task
        masks : ndarray of bool, shape (K, n_train)
            Each row selects a training subset with at least two classes.

        Returns
        -------
        ndarray of shape (K, n_test, n_classes)
            Probabilities over all of the task's classes (zero for a class the subset lacks).
        """
        ...
