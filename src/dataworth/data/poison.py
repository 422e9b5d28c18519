"""The poisoned-digits task of Lin et al. (ICML 2022), for checking that a method finds poisons.

The paper poisons MNIST with a small bright patch and a target label; here the same attack is
applied to scikit-learn's bundled 8x8 digits (no download).
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from dataworth.data.task import Task
from dataworth.errors import DataworthError

PATCH: tuple[int, ...] = (0, 1, 8, 9)  # the top-left 2x2 pixels of an 8x8 digit (the default)
ATTACK_CLASS = 0
_SIDE = 8  # scikit-learn's digits are 8x8 images, flattened row by row


def patch_pixels(size: int = 2) -> tuple[int, ...]:
    """Flat positions of the top-left ``size x size`` pixels of an 8x8 digit.

    ``patch_pixels(2)`` is :data:`PATCH`.
    """
    if int(size) != size or not 1 <= size <= _SIDE:
        raise DataworthError(f"patch_size must be an integer from 1 to {_SIDE}, got {size!r}.")
    return tuple(r * _SIDE + c for r in range(int(size)) for c in range(int(size)))


def poisoned_digits(
    n_train: int, n_poisons: int, n_targets: int, seed: int = 0, *, patch_size: int = 2
) -> tuple[Task, np.ndarray]:
    """Digits where ``n_poisons`` training images carry the patch and the attack's label.

    Parameters
    ----------
    n_train : int
        Training rows (a random sample of the 1,797 digits, pixels scaled to [0, 1]).
    n_poisons : int
        Training images of other digits that get the patch and the label 0.
    n_targets : int
        Test rows: images of other digits with the patch. Each target's label is the attack's
        class, so its per-prediction score is the probability of that class.
    seed : int
        Determines the sample and the poisoned rows.
    patch_size : int, default 2
        Side of the square patch of bright pixels (value 1) in the top-left corner: 2 is
        :data:`PATCH`; a larger patch is a stronger, easier-to-learn trigger.

    Returns
    -------
    task : Task
    poisons : ndarray
        Training positions of the poisoned rows.
    """
    patch = list(patch_pixels(patch_size))
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    train, test = order[:n_train], order[n_train:]
    X_train, y_train = X[train].copy(), y[train].copy()
    poisons = np.sort(
        rng.choice(np.flatnonzero(y_train != ATTACK_CLASS), size=n_poisons, replace=False)
    )
    X_train[poisons[:, None], patch] = 1.0
    y_train[poisons] = ATTACK_CLASS
    X_test = X[test][y[test] != ATTACK_CLASS][:n_targets].copy()
    X_test[:, patch] = 1.0
    y_test = np.full(len(X_test), ATTACK_CLASS)
    task = Task.from_arrays(X_train, y_train, X_test, y_test, name="digits-poisoned")
    return task, poisons
