"""Are the influential points unusual? Per-point diagnostics for the valued points.

For each point: how many of its nearest training neighbours share its label, the probability
the full-data model gives its own label, an outlier score with its rank among all training
points, its most extreme features (z-scores against the training set), and exact duplicates.
A point is *flagged* for each check it fails; the thresholds are module constants.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors

from dataworth.data.task import Task

NEIGHBOURS = 10
LOW_AGREEMENT = 0.5  # fewer than half of its neighbours share its label
LOW_OWN_PROBA = 0.5  # the full model thinks another class is more likely
OUTLIER_TOP_SHARE = 0.05  # among the 5% most outlying training points
EXTREME_Z = 3.0


def _own_label_proba(utility, positions: np.ndarray) -> np.ndarray:
    """Full-data model's probability of each point's own label (the learner fitted once)."""
    task: Task = utility.task
    as_test = dataclasses.replace(
        task,
        X_test=task.X_train[positions],
        y_test=task.y_train[positions],
        test_ids=task.train_ids[positions],
        metadata={},
    )
    proba = utility.learner.predict_proba_batch(as_test, np.ones((1, task.n_train), bool))[0]
    return proba[np.arange(len(positions)), task.y_train[positions]]


def point_diagnostics(utility, positions, *, top_features: int = 3) -> pd.DataFrame:
    """Diagnostics of the training points at ``positions``.

    Parameters
    ----------
    utility : Utility
        Supplies the task and the learner (fitted once on all training rows).
    positions : array-like of int
        Training positions of the points to describe.
    top_features : int
        How many of each point's most extreme features to list.

    Returns
    -------
    DataFrame
        One row per point: ``neighbour_agreement``, ``own_label_proba``, ``outlier_score``
        (higher is more unusual), ``outlier_rank`` (1 = most unusual of all training points),
        ``extreme_features``, ``max_abs_z``, ``n_duplicates``, ``duplicate_label_conflict``,
        and ``flags`` (a comma-separated list, empty when nothing stands out).
    """
    task: Task = utility.task
    positions = np.asarray(positions, dtype=np.int64)
    X, y, n = task.X_train, task.y_train, task.n_train

    k = min(NEIGHBOURS, n - 1)
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X[positions])
    # Drop the point itself (the first neighbour unless duplicates tie with it).
    neighbours = np.array([row[row != p][:k] for row, p in zip(neighbours, positions, strict=True)])
    agreement = (y[neighbours] == y[positions][:, None]).mean(axis=1)

    lof = LocalOutlierFactor(n_neighbors=min(20, n - 1)).fit(X)
    outlier_all = -lof.negative_outlier_factor_
    rank_all = np.empty(n, dtype=np.int64)
    rank_all[np.argsort(-outlier_all, kind="stable")] = np.arange(1, n + 1)

    mean, std = X.mean(axis=0), X.std(axis=0)
    z = (X[positions] - mean) / np.where(std > 0, std, 1.0)
    order = np.argsort(-np.abs(z), axis=1)[:, :top_features]
    extreme = [
        ", ".join(f"{task.feature_names[j]} (z={z[r, j]:+.1f})" for j in order[r])
        for r in range(len(positions))
    ]

    _, inverse, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    n_dup = counts[inverse[positions]] - 1
    conflict = np.array(
        [
            bool(n_dup[r]) and len(np.unique(y[inverse == inverse[p]])) > 1
            for r, p in enumerate(positions)
        ]
    )

    own = _own_label_proba(utility, positions)
    frame = pd.DataFrame(
        {
            "player_id": task.train_ids[positions],
            "position": positions,
            "label": [task.class_names[c] for c in y[positions]],
            "neighbour_agreement": agreement,
            "own_label_proba": own,
            "outlier_score": outlier_all[positions],
            "outlier_rank": rank_all[positions],
            "extreme_features": extreme,
            "max_abs_z": np.abs(z).max(axis=1),
            "n_duplicates": n_dup,
            "duplicate_label_conflict": conflict,
        }
    )
    frame["flags"] = [", ".join(_flags(row, n)) for row in frame.itertuples()]
    return frame


def _flags(row, n: int) -> list[str]:
    flags = []
    if row.neighbour_agreement < LOW_AGREEMENT:
        flags.append("label disagrees with neighbours")
    if row.own_label_proba < LOW_OWN_PROBA:
        flags.append("model doubts its label")
    if row.outlier_rank <= max(1, round(OUTLIER_TOP_SHARE * n)):
        flags.append("outlier")
    if row.max_abs_z >= EXTREME_Z:
        flags.append("extreme feature value")
    if row.n_duplicates:
        flags.append(
            "duplicate" + (" with conflicting label" if row.duplicate_label_conflict else "")
        )
    return flags


def summarize_unusual(values: np.ndarray, diagnostics: pd.DataFrame, top: int = 3) -> list[str]:
    """Short factual sentences: which of the most influential points stand out, and how.

    Built only from the values and diagnostics given; says so plainly when none stands out.
    """
    order = np.argsort(-np.abs(values), kind="stable")[:top]
    lines = []
    for r in order:
        row = diagnostics.iloc[r]
        what = row["flags"] or "nothing unusual by these checks"
        lines.append(
            f"Point {row['player_id']} (label {row['label']}) has influence {values[r]:+.4g}: "
            f"{what}; {row['neighbour_agreement']:.0%} of its {NEIGHBOURS} neighbours share its "
            f"label, the model gives its label probability {row['own_label_proba']:.2f}, "
            f"outlier rank {row['outlier_rank']}."
        )
    flagged = int((diagnostics["flags"] != "").sum())
    lines.append(
        f"{flagged} of the {len(diagnostics)} valued points are flagged by at least one check."
    )
    return lines
