"""The degenerate-subset policy (docs/design.md, section 1), in one place.

A subset the learner cannot fit (the empty set, or a subset with a single class) is scored by a
prior-only model with add-one smoothing: class probabilities ``(n_c + 1) / (|S| + C)``. Its label
is the most probable class, ties going to the class that is most frequent in the full training
set (the first class among equally frequent ones). The empty set therefore predicts uniform
probabilities and the full-data majority label, and log-loss stays finite.
"""

from __future__ import annotations

import numpy as np


def class_counts(y: np.ndarray, masks: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-subset class counts, shape ``(K, n_classes)``."""
    # Counting the mask's set bits per class reads the boolean masks as they are: an integer
    # product would first copy them to int64 (eight times their size, 400 MB for 1,024
    # one-out masks of 50,000 rows) and multiply without BLAS.
    masks = np.asarray(masks, dtype=bool)
    counts = np.empty((len(masks), n_classes), dtype=np.int64)
    for c in range(n_classes):
        counts[:, c] = np.count_nonzero(masks[:, y == c], axis=1)
    return counts


def is_degenerate(y: np.ndarray, masks: np.ndarray, n_classes: int) -> np.ndarray:
    """True where a subset has fewer than two classes (the learner cannot be fitted)."""
    return (class_counts(y, masks, n_classes) > 0).sum(axis=1) < 2


def class_preference(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Classes ordered from most to least frequent in the full training set, first class first."""
    counts = np.bincount(y, minlength=n_classes)
    return np.lexsort((np.arange(n_classes), -counts))


def prior_predictions(
    y: np.ndarray, masks: np.ndarray, n_classes: int, n_test: int
) -> tuple[np.ndarray, np.ndarray]:
    """Prior-only probabilities and labels for each subset.

    Returns
    -------
    proba : ndarray of shape (K, n_test, n_classes)
    labels : ndarray of shape (K, n_test)
    """
    counts = class_counts(y, masks, n_classes).astype(np.float64)
    probs = (counts + 1.0) / (counts.sum(axis=1, keepdims=True) + n_classes)
    preference = class_preference(y, n_classes)
    # Most probable class; among ties, the one earliest in the full-data preference order.
    rank = np.empty(n_classes, dtype=np.int64)
    rank[preference] = np.arange(n_classes)
    best = probs.max(axis=1, keepdims=True)
    candidates = np.where(probs == best, rank[None, :], n_classes)
    label = candidates.argmin(axis=1)
    proba = np.broadcast_to(probs[:, None, :], (len(masks), n_test, n_classes)).copy()
    labels = np.broadcast_to(label[:, None], (len(masks), n_test)).copy()
    return proba, labels
