"""The evidence against each row's label, from methods dataworth already has.

Three estimates of how likely a row's given label is, each in ``[0, 1]``:

- ``p_label``: the out-of-fold probability of the given label under the refitted model (the
  learner fitted on the other folds, through the engine's batched learners);
- ``oob``: the row's Data-OOB value (Kwon and Zou, ICML 2023), the share of bagged trees that
  never saw it and still predict its label (:func:`dataworth.methods.trees.oob.data_oob`);
- ``agreement``: the share of its ``k`` nearest other rows that share its label (the neighbours'
  verdict; KNN-Shapley's sign on held-out rows follows it).

The suspicion is ``1 - mean(p_label, oob, agreement)``, so it stays in ``[0, 1]`` and every
signal weighs the same. Two more facts are checked for every row and raise the suspicion where
they say something about the label: a row whose features repeat exactly with another label
(suspicion at least the share of its copies that disagree), and an extreme outlier (its
distance to the ``k``-th neighbour far in the tail, a small bump that orders such rows first
among equals). Each signal that speaks against a row is named in its reasons.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.methods.trees.oob import data_oob

# A robust z-score of the log distance to the k-th neighbour above this is an extreme outlier.
OUTLIER_Z = 5.0
# How much an extreme outlier's suspicion is raised: enough to order it first among equals.
OUTLIER_BUMP = 0.05


@dataclass(frozen=True)
class Signals:
    """Every row's evidence (arrays of shape ``(n,)``) and the combined suspicion."""

    p_label: np.ndarray
    predicted: np.ndarray
    oob: np.ndarray
    agreement: np.ndarray
    duplicate_conflict: np.ndarray
    duplicate: np.ndarray
    outlier: np.ndarray
    score: np.ndarray
    proba: np.ndarray  # (n, C) out-of-fold probabilities (the noise matrix's anchors)

    def reasons(self, class_names: tuple[str, ...], labels: np.ndarray) -> list[str]:
        """For each row, the signals that speak against its label, in words ("" if none)."""
        out = []
        for i in range(len(self.score)):
            parts = []
            if self.predicted[i] != labels[i]:
                parts.append(
                    f"model predicts {class_names[self.predicted[i]]!r} "
                    f"(p(label)={self.p_label[i]:.2f})"
                )
            if self.oob[i] < 0.5:
                parts.append(f"low Data-OOB value {self.oob[i]:.2f}")
            if self.agreement[i] < 0.5:
                parts.append(f"neighbours disagree ({self.agreement[i]:.0%} share its label)")
            if self.duplicate_conflict[i] > 0:
                parts.append("duplicate of a row with another label")
            elif self.duplicate[i]:
                parts.append("exact duplicate")
            if self.outlier[i]:
                parts.append("extreme outlier")
            out.append("; ".join(parts))
        return out


def stratified_folds(y: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, held-out)`` positions of stratified folds; a one-line error if a class is too rare.

    Parameters
    ----------
    y : ndarray of int
        Encoded labels.
    n_folds : int
        Folds wanted; fewer when the rarest class has fewer rows (at least 2).
    seed : int
        Shuffles the rows before they are dealt to folds.
    """
    counts = np.bincount(y)
    present = counts[counts > 0]
    if len(present) < 2:
        raise DataworthError("Cleaning needs at least two classes among the rows.")
    if present.min() < 2:
        rare = int(np.flatnonzero(counts == present.min())[0])
        raise DataworthError(
            f"Class {rare} has only {present.min()} row(s): too few to hold any out; cleaning "
            "needs at least 2 rows of every class (drop or merge the rare class)."
        )
    k = int(min(n_folds, present.min()))
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def sub_task(
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    class_names: tuple[str, ...],
    name: str = "clean",
) -> Task:
    """A task of arrays already encoded (rows valued or refitted, rows scored)."""
    return Task(
        X_train=X,
        y_train=y,
        X_test=X_test,
        y_test=y_test,
        feature_names=tuple(f"x{j}" for j in range(X.shape[1])),
        class_names=class_names,
        train_ids=np.arange(len(y)),
        test_ids=np.arange(len(y_test)),
        name=name,
    )


def out_of_fold_proba(
    X: np.ndarray,
    y: np.ndarray,
    class_names: tuple[str, ...],
    learner,
    folds: list[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Each row's class probabilities from the learner fitted on the other folds.

    Returns
    -------
    ndarray of shape (n, n_classes)
    """
    proba = np.zeros((len(y), len(class_names)))
    for train, held in folds:
        task = sub_task(X[train], y[train], X[held], y[held], class_names, "clean folds")
        proba[held] = learner.predict_proba_batch(task, np.ones((1, len(train)), bool))[0]
    return proba


def neighbours(X: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's share of its ``k`` nearest other rows with its label; its ``k``-th distance."""
    k = int(min(k, len(y) - 1))
    index = NearestNeighbors(n_neighbors=k + 1).fit(X)
    distance, near = index.kneighbors(X)
    # Drop the row itself; where exact copies tie at distance 0 it may not come first.
    is_self = near == np.arange(len(y))[:, None]
    keep = ~is_self
    keep[~is_self.any(axis=1), -1] = False  # not among its k+1 nearest: drop the farthest
    near = near[keep].reshape(len(y), k)
    distance = distance[keep].reshape(len(y), k)
    agreement = (y[near] == y[:, None]).mean(axis=1)
    return agreement, distance[:, -1]


def _outliers(kth_distance: np.ndarray) -> np.ndarray:
    logd = np.log(kth_distance + 1e-12)
    median = np.median(logd)
    mad = 1.4826 * np.median(np.abs(logd - median))
    if mad <= 0:
        return np.zeros(len(logd), bool)
    return (logd - median) / mad > OUTLIER_Z


def _duplicates(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each row repeats another exactly, and the share of its copies with another label."""
    _, group, size = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    duplicate = size[group] > 1
    conflict = np.zeros(len(y))
    for g in np.flatnonzero(size > 1):
        rows = np.flatnonzero(group == g)
        labels = y[rows]
        same = (labels[:, None] == labels[None, :]).sum(axis=1)
        conflict[rows] = 1.0 - same / len(rows)
    return duplicate, conflict


def compute_signals(
    X: np.ndarray,
    y: np.ndarray,
    class_names: tuple[str, ...],
    learner,
    folds: list[tuple[np.ndarray, np.ndarray]],
    *,
    k: int = 10,
    n_estimators: int = 100,
    seed: int = 0,
) -> Signals:
    """Every signal of the module's docstring for the rows ``X, y``.

    Parameters
    ----------
    X, y : ndarray
        Numeric features and encoded labels of the rows to judge.
    class_names : tuple of str
    learner : Learner
        The engine's learner of the refitted model (out-of-fold probabilities).
    folds : list of (train, held-out) positions
        From :func:`stratified_folds`.
    k : int, default=10
        Neighbours asked.
    n_estimators : int, default=100
        Data-OOB's bags.
    seed : int, default=0
        Data-OOB's seed.

    Returns
    -------
    Signals
    """
    proba = out_of_fold_proba(X, y, class_names, learner, folds)
    p_label = proba[np.arange(len(y)), y]
    predicted = proba.argmax(axis=1)
    task = sub_task(X, y, X[:0], y[:0], class_names, "clean rows")
    with warnings.catch_warnings():  # a row in every bag is handled just below
        warnings.filterwarnings("ignore", ".*points were in every one", RuntimeWarning)
        oob = data_oob(task, n_estimators=n_estimators, seed=seed).values
    oob = np.where(np.isfinite(oob), oob, 0.5)  # a row in every bag: no evidence either way
    agreement, kth = neighbours(X, y, k)
    duplicate, conflict = _duplicates(X, y)
    outlier = _outliers(kth)
    score = 1.0 - (p_label + oob + agreement) / 3.0
    score = np.maximum(score, conflict) + OUTLIER_BUMP * outlier
    return Signals(
        p_label=p_label,
        predicted=predicted,
        oob=oob,
        agreement=agreement,
        duplicate_conflict=conflict,
        duplicate=duplicate,
        outlier=outlier,
        score=score,
        proba=proba,
    )
