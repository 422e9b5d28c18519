"""Removal curves: refit after acting on the first rows of an order, score on other rows.

Acting on ``m`` rows is one training subset for the engine. To *remove* them, the subset is every
row but those. To *relabel* them, the refitted task holds every row twice, once with its given
label and once with its suggested one, and the subset takes the given copy of the other rows and
the suggested copy of those ``m``: relabelling is then a subset too, and every curve point is
fitted by the engine's batched learners in one call.

The count to act on is chosen on folds of the rows being cleaned: for each fold, the rows of the
other folds are acted on in order of suspicion, refitted, and scored on the fold; the count with
the best mean score wins (ties to the smaller). The folds' rows took part in the signals, so this
choice is not the measure of the gain: :mod:`dataworth.clean.crossfit` measures it on rows that
took part in nothing.
"""

from __future__ import annotations

import numpy as np

from dataworth.clean.signals import sub_task
from dataworth.engine.utility import Utility

#: Candidate shares of the rows to act on (capped by ``max_fraction``).
FRACTIONS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def candidate_fractions(max_fraction: float, estimate: float | None = None) -> list[float]:
    """The grid's shares up to ``max_fraction``, plus the cap and the signals' own estimate."""
    grid = {f for f in FRACTIONS if f <= max_fraction} | {float(max_fraction)}
    if estimate is not None and 0 < estimate <= max_fraction:
        grid.add(round(float(estimate), 4))
    return sorted(grid)


def acted_masks(order: np.ndarray, counts, n: int, action: str) -> np.ndarray:
    """One subset per count: act on the first ``m`` rows of ``order`` (see the docstring).

    Returns
    -------
    ndarray of bool, shape (len(counts), n) for ``remove`` or (len(counts), 2n) for ``relabel``
    """
    counts = list(counts)
    width = n if action == "remove" else 2 * n
    masks = np.zeros((len(counts), width), bool)
    masks[:, :n] = True
    for row, m in enumerate(counts):
        first = order[: int(m)]
        masks[row, first] = False
        if action == "relabel":
            masks[row, n + first] = True
    return masks


def score_masks(
    X: np.ndarray,
    y: np.ndarray,
    suggested: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    class_names: tuple[str, ...],
    masks: np.ndarray,
    *,
    learner,
    metric: str,
    action: str,
    seed: int,
) -> np.ndarray:
    """The metric on ``X_test, y_test`` of the model refitted on each subset of ``masks``."""
    if action == "relabel":
        X, y = np.vstack([X, X]), np.concatenate([y, suggested])
    task = sub_task(X, y, X_test, y_test, class_names, "clean refits")
    with Utility(task, learner=learner, metric=metric, seed=seed) as utility:
        return np.asarray(utility.evaluate(masks).scores, dtype=float)


def predict_masks(
    X: np.ndarray,
    y: np.ndarray,
    suggested: np.ndarray,
    X_test: np.ndarray,
    class_names: tuple[str, ...],
    masks: np.ndarray,
    *,
    learner,
    action: str,
) -> np.ndarray:
    """The predicted class on ``X_test`` of the model refitted on each subset of ``masks``.

    Returns
    -------
    ndarray of int, shape (len(masks), len(X_test))
    """
    if action == "relabel":
        X, y = np.vstack([X, X]), np.concatenate([y, suggested])
    y_test = np.zeros(len(X_test), dtype=y.dtype)  # unused: only the predictions are read
    task = sub_task(X, y, X_test, y_test, class_names, "clean verification")
    return learner.predict_proba_batch(task, masks).argmax(axis=2)


def counts_of(fractions, n: int) -> np.ndarray:
    """Rows acted on for each share of ``n`` rows."""
    return np.array([round(f * n) for f in fractions])


def choose_fraction(
    X: np.ndarray,
    y: np.ndarray,
    score: np.ndarray,
    suggested: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    fractions: list[float],
    class_names: tuple[str, ...],
    *,
    learner,
    metric: str,
    action: str,
    seed: int,
) -> tuple[float, np.ndarray]:
    """The share of rows to act on, chosen by the removal curve on folds (see the docstring).

    Returns
    -------
    fraction : float
        The chosen share (0 when no share beats acting on nothing).
    curve : ndarray of shape (len(fractions),)
        The mean score over folds of each share.
    """
    per_fold = []
    for train, held in folds:
        order = np.argsort(-score[train], kind="stable")
        masks = acted_masks(order, counts_of(fractions, len(train)), len(train), action)
        per_fold.append(
            score_masks(
                X[train],
                y[train],
                suggested[train],
                X[held],
                y[held],
                class_names,
                masks,
                learner=learner,
                metric=metric,
                action=action,
                seed=seed,
            )
        )
    curve = np.mean(per_fold, axis=0)
    best = int(np.flatnonzero(curve >= curve.max() - 1e-12)[0])  # ties to the smaller share
    return (float(fractions[best]) if curve[best] > curve[0] else 0.0), curve
