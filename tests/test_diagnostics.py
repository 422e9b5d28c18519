"""Diagnostics flag what is planted: a flipped label, a duplicate, an extreme value."""

from __future__ import annotations

import dataclasses

import numpy as np

from dataworth.engine.utility import Utility
from dataworth.methods.diagnostics import point_diagnostics, summarize_unusual


def _planted(task):
    X, y = task.X_train.copy(), task.y_train.copy()
    # Position 0: flip a point whose neighbours all share its label.
    flip = 0
    y[flip] = 1 - y[flip]
    # Position 1 duplicates position 2 (same label), position 3 gets an extreme feature.
    X[1] = X[2]
    y[1] = y[2]
    X[3, 0] = 25.0
    return dataclasses.replace(task, X_train=X, y_train=y, metadata={})


def test_planted_anomalies_are_flagged(cancer_400):
    task = _planted(cancer_400)
    diag = point_diagnostics(Utility(task, learner="knn"), [0, 1, 3, 10])
    flipped, duplicate, extreme = diag.iloc[0], diag.iloc[1], diag.iloc[2]
    assert flipped["neighbour_agreement"] < 0.5
    assert "label disagrees with neighbours" in flipped["flags"]
    assert duplicate["n_duplicates"] == 1 and "duplicate" in duplicate["flags"]
    assert not duplicate["duplicate_label_conflict"]
    assert extreme["max_abs_z"] > 3 and "extreme feature value" in extreme["flags"]
    assert extreme["extreme_features"].startswith(task.feature_names[0])
    assert extreme["outlier_rank"] <= 20


def test_own_label_probability_matches_the_full_model(cancer_small):
    u = Utility(cancer_small, learner="knn")
    diag = point_diagnostics(u, np.arange(5))
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(5, algorithm="brute").fit(
        cancer_small.X_train, cancer_small.y_train
    )
    proba = model.predict_proba(cancer_small.X_train[:5])
    np.testing.assert_allclose(
        diag["own_label_proba"], proba[np.arange(5), cancer_small.y_train[:5]]
    )


def test_summary_is_built_from_the_numbers(cancer_small):
    u = Utility(cancer_small, learner="knn")
    diag = point_diagnostics(u, np.arange(4))
    values = np.array([0.0, 0.3, -0.1, 0.05])
    lines = summarize_unusual(values, diag, top=2)
    assert lines[0].startswith(f"Point {diag['player_id'][1]} ")
    assert "+0.3" in lines[0]
    assert lines[-1].endswith("flagged by at least one check.")
