"""The label-leakage check: one column that predicts the label almost perfectly on its own.

Each column is scored by cross-validated balanced accuracy on at most
:data:`LEAKAGE_MAX_ROWS` sampled training rows: a categorical column by "the majority label of its
category", a numeric one by a shallow decision tree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from dataworth.data.findings import Finding, _arg

# A single column reaching this balanced accuracy on held-out training rows restates the label.
LEAKAGE_BALANCED_ACCURACY = 0.99
# The leakage check fits on at most this many sampled training rows: enough to estimate a
# balanced accuracy near 1 to within a fraction of a percent, and cheap on any table.
LEAKAGE_MAX_ROWS = 3000


def _balanced_accuracy(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    recalls = [np.mean(predicted[y == c] == c) for c in range(n_classes) if np.any(y == c)]
    return float(np.mean(recalls))


def _categorical_oof(codes: np.ndarray, y: np.ndarray, folds: list, n_classes: int) -> np.ndarray:
    """Out-of-fold predictions of "the majority label of this category" (a full one-hot tree)."""
    predicted = np.empty_like(y)
    n_categories = int(codes.max()) + 1
    for fit, held in folds:
        counts = np.zeros((n_categories, n_classes), dtype=np.int64)
        np.add.at(counts, (codes[fit], y[fit]), 1)
        majority = counts.argmax(axis=1)
        # A category never seen in the fitting folds gets the overall majority label.
        unseen = counts.sum(axis=1) == 0
        majority[unseen] = int(np.bincount(y[fit], minlength=n_classes).argmax())
        predicted[held] = majority[codes[held]]
    return predicted


def _numeric_oof(
    values: np.ndarray, y: np.ndarray, folds: list, leaves: int, seed: int
) -> np.ndarray:
    from sklearn.tree import DecisionTreeClassifier

    X = values.reshape(-1, 1)
    predicted = np.empty_like(y)
    for fit, held in folds:
        tree = DecisionTreeClassifier(max_leaf_nodes=leaves, random_state=seed)
        tree.fit(X[fit], y[fit])  # scikit-learn's trees route missing values themselves
        predicted[held] = tree.predict(X[held])
    return predicted


def _leakage_findings(
    features: pd.DataFrame,
    y: np.ndarray,
    n_classes: int,
    target: str,
    skip: set[str],
    seed: int,
) -> list[Finding]:
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    if len(y) > LEAKAGE_MAX_ROWS:
        keep = np.sort(rng.choice(len(y), size=LEAKAGE_MAX_ROWS, replace=False))
        features, y = features.iloc[keep], y[keep]
    counts = np.bincount(y, minlength=n_classes)
    n_splits = min(3, int(counts[counts > 0].min()))
    if n_splits < 2 or np.count_nonzero(counts) < 2:
        return []
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = list(splitter.split(np.zeros(len(y)), y))
    # A few intervals of the column per class: enough for a column that restates the label
    # (one interval per class, or a few when a class is coded by several values), too few to
    # memorise rows. The size is limited by leaves, not depth: grown greedily, a tree peels
    # evenly spaced classes off one at a time, so ten classes can need depth nine.
    leaves = max(8, 4 * n_classes)
    findings = []
    for name, column in features.items():
        name = str(name)
        if name in skip:
            continue
        dtype = column.dtype
        categorical = (
            ptypes.is_bool_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
            or not ptypes.is_numeric_dtype(dtype)
        )
        if categorical:
            codes, _ = pd.factorize(column.astype(object).where(column.notna(), "\x00missing"))
            predicted = _categorical_oof(codes, y, folds, n_classes)
        else:
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            predicted = _numeric_oof(values, y, folds, leaves, seed)
        score = _balanced_accuracy(y, predicted, n_classes)
        if score < LEAKAGE_BALANCED_ACCURACY:
            continue
        what = "from its categories" if categorical else "from a few thresholds on it"
        findings.append(
            Finding(
                check="label_leakage",
                severity="warning",
                columns=(name,),
                message=(
                    f"Column {name!r} alone predicts the label {target!r} almost perfectly "
                    f"(balanced accuracy {score:.3f} {what}, {n_splits}-fold cross-validation "
                    f"on the training rows); it likely restates the label: --drop {_arg(name)}."
                ),
                meaning=(
                    "A model that reads the label off one column is right for a trivial reason; "
                    "valuation then measures how rows teach that shortcut, not the task."
                ),
            )
        )
    return findings
