"""The backdoor experiment's data: a trigger patch planted on ``k`` training images.

The miniature of Lin et al.'s (ICML 2022) CIFAR10-20 experiment on scikit-learn's 8x8 digits
(docs/design.md, "The backdoor experiment"): ``k`` training images of classes other than the
target get a bright square in the top-left corner and the target's label; the queries are
patched test images of other classes, each explained by the probability the network gives the
target class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits

from dataworth.data.poison import patch_pixels
from dataworth.data.task import Task
from dataworth.errors import DataworthError

TARGET_CLASS = 0
"""The attack's label (the paper's is class 1 of CIFAR-10; any fixed class will do)."""
TRAIN_SHARE = 0.8  # 1,437 of the 1,797 digits: the default training size


@dataclass(frozen=True)
class BackdoorData:
    """A poisoned training set, its clean twin, a clean test set and the patched queries.

    Attributes
    ----------
    task : Task
        The poisoned training rows; its test rows are the ``queries`` patched test images, each
        labelled :data:`TARGET_CLASS`, so a per-prediction score is ``P(target | query)``.
    clean_task : Task
        The same training rows before poisoning (original pixels and labels), and the clean
        test set with its true labels: the unpoisoned reference of the attack check.
    patched_X : ndarray of shape (n_patched, d)
        Every test image of another class than the target, patched: the attack success is the
        share of them the poisoned network assigns to the target.
    poisons : ndarray of int
        Training positions of the planted poisons (sorted).
    patch : tuple of int
        Flat pixel positions of the trigger.
    patch_value : float
        The trigger's pixel value (pixels lie in [0, 1]).
    """

    task: Task
    clean_task: Task
    patched_X: np.ndarray
    poisons: np.ndarray
    patch: tuple[int, ...]
    patch_value: float

    @property
    def k(self) -> int:
        """The number of poisons."""
        return len(self.poisons)


def apply_patch(X: np.ndarray, patch: tuple[int, ...], value: float) -> np.ndarray:
    """A copy of ``X`` with the trigger's pixels set to ``value``."""
    out = np.array(X, dtype=np.float64, copy=True)
    out[:, list(patch)] = value
    return out


def backdoor_digits(
    *,
    poisons: int = 20,
    queries: int = 20,
    patch_size: int = 3,
    patch_value: float = 3.0,
    n_rows: int | None = None,
    seed: int = 0,
) -> BackdoorData:
    """Plant a backdoor in the digits: ``poisons`` patched training images relabelled.

    Parameters
    ----------
    poisons : int, default 20
        Training images (of classes other than the target) that get the patch and the target
        label.
    queries : int, default 20
        Patched test images of other classes to explain.
    patch_size : int, default 3
        Side of the square trigger in the top-left corner (a 3x3 patch is 14% of the 64
        pixels, the paper's 5x5 of 32x32 is 2.4%: the digits' corners are blank, so any size is
        a feature no clean image has).
    patch_value : float, default 3.0
        Value of the trigger's pixels: three times the brightest pixel of a scaled digit (1).
        At 1, the small CNN learnt the trigger from 20 poisons on some initialisations only
        (attack success 2% to 39% at 100 steps); at 3, 98% to 99% with clean accuracy within
        a point of the unpoisoned network's.
    n_rows : int, optional
        Digits used (a seeded sample; all 1,797 by default): 80% of them are the training
        images (1,437 of all), the rest the test set.
    seed : int, default 0
        Determines the split, the poisons and the queries.

    Returns
    -------
    BackdoorData
    """
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    n_rows = len(X) if n_rows is None else n_rows
    if int(n_rows) != n_rows or not 50 <= n_rows <= len(X):
        raise DataworthError(f"--rows must be a whole number from 50 to {len(X)}; got {n_rows}.")
    n_train = int(TRAIN_SHARE * n_rows)  # 1,437 of the 1,797 digits
    patch = patch_pixels(patch_size)
    if not (np.isfinite(patch_value) and patch_value > 0):
        raise DataworthError(f"The patch value must be a positive number; got {patch_value}.")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    train, test = order[:n_train], order[n_train : int(n_rows)]
    X_train, y_train = X[train], y[train]
    others = np.flatnonzero(y_train != TARGET_CLASS)
    if int(poisons) != poisons or not 1 <= poisons <= len(others) // 2:
        raise DataworthError(
            f"--poisons must be a whole number from 1 to {len(others) // 2}; got {poisons}."
        )
    planted = np.sort(rng.choice(others, size=int(poisons), replace=False))
    X_poisoned, y_poisoned = X_train.copy(), y_train.copy()
    X_poisoned[planted] = apply_patch(X_train[planted], patch, patch_value)
    y_poisoned[planted] = TARGET_CLASS
    patched = apply_patch(X[test][y[test] != TARGET_CLASS], patch, patch_value)
    if int(queries) != queries or not 1 <= queries <= len(patched):
        raise DataworthError(
            f"--queries must be a whole number from 1 to {len(patched)}; got {queries}."
        )
    names = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
    task = Task.from_arrays(
        X_poisoned,
        y_poisoned,
        patched[: int(queries)],
        np.full(int(queries), TARGET_CLASS),
        feature_names=names,
        train_ids=train,
        name="digits-backdoor",
    )
    clean_task = Task.from_arrays(
        X_train, y_train, X[test], y[test], feature_names=names, train_ids=train, name="digits"
    )
    return BackdoorData(task, clean_task, patched, planted, patch, float(patch_value))
