"""Data checks run before valuation: problems that would make every value that follows wrong.

Valuation answers "which rows matter to this model". If the model is right for a trivial reason
(a column restates the label, test rows are copies of training rows) or the rows are not what
they seem (an identifier used as a feature, a regression target given to a classifier), every
value inherits the mistake. :func:`run_checks` looks for those problems on the raw rows and the
split, cheaply (vectorised pandas; the leakage check fits a shallow tree per column on at most a
few thousand sampled training rows), and returns :class:`Finding` records. Nothing is changed:
the findings are warnings (``severity="warning"``) or notes (``severity="info"``), and
``load_dataset(..., strict=True)`` turns the warnings into an error.

The checks:

- ``label_leakage``: one column (a categorical column's one-hot group counting as one) predicts
  the label almost perfectly on its own: balanced accuracy of at least
  :data:`LEAKAGE_BALANCED_ACCURACY` under cross-validation on the training rows.
- ``identifier``: a column with a different value in every row (an index written by pandas,
  ids, names, hashes) or strictly increasing with the row number.
- ``duplicate_column_name``: a CSV header that names a column twice (pandas renames the copy
  ``NAME.1``).
- ``constant_column``: one value in every row; harmless to a fit, so only a note.
- ``duplicate_rows``: identical rows (features and label) inside the training set.
- ``train_test_overlap``: rows that are in both the training and the test set.
- ``rare_class``: a class with too few rows for the split or for valuation's random subsets.
- ``continuous_label``: a numeric target with many distinct values, such as a price.
- ``perfect_baseline``: every baseline model is perfect on the test rows (added by the study's
  baseline step, see :func:`baseline_findings`).

Missing labels are not a finding but an error when the data is loaded: a row without a label
cannot be fitted or valued, so ``load_dataset`` stops and says which column to fill in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

# The checks are gathered here from modules with one family each; the records and the warning
# are in data/findings.py. Every name this module had before stays importable from it.
from dataworth.data.checks_columns import (
    MIN_ROWS_FOR_IDENTIFIER,
    _constant_findings,
    _identifier_findings,
    _renamed_findings,
)
from dataworth.data.checks_leakage import (
    LEAKAGE_BALANCED_ACCURACY,
    LEAKAGE_MAX_ROWS,
    _leakage_findings,
)
from dataworth.data.checks_rows import (
    DUPLICATE_WARNING_SHARE,
    OVERLAP_WARNING_SHARE,
    _duplicate_findings,
)
from dataworth.data.findings import DataCheckWarning, Finding, emit

__all__ = [
    "CONTINUOUS_MIN_DISTINCT",
    "DUPLICATE_WARNING_SHARE",
    "LEAKAGE_BALANCED_ACCURACY",
    "LEAKAGE_MAX_ROWS",
    "MIN_ROWS_FOR_IDENTIFIER",
    "MIN_TEST_ROWS",
    "MIN_TRAIN_ROWS",
    "OVERLAP_WARNING_SHARE",
    "DataCheckWarning",
    "Finding",
    "baseline_findings",
    "emit",
    "label_findings",
    "run_checks",
]

# A class with fewer training rows than this is missing from a large share of the random
# subsets valuation fits (a random half-size subset misses a class of k rows with probability
# about 2^-k), and with fewer test rows than MIN_TEST_ROWS its test metrics rest on one row.
MIN_TRAIN_ROWS = 5
MIN_TEST_ROWS = 2
# A numeric target with more distinct values than this, and either fractional values or most
# classes holding fewer than MIN_TRAIN_ROWS rows, looks like a regression target.
CONTINUOUS_MIN_DISTINCT = 20


# --- labels ------------------------------------------------------------------------------------


def label_findings(labels: pd.Series, target: str) -> list[Finding]:
    """Checks on the label column alone, before any split: a numeric target that looks continuous.

    Parameters
    ----------
    labels : pandas.Series
        The raw target column, without missing values.
    target : str
        Its name, for messages.

    Returns
    -------
    list of Finding
    """
    dtype = labels.dtype
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or ptypes.is_bool_dtype(dtype)
        or not ptypes.is_numeric_dtype(dtype)
    ):
        return []
    values = labels.to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[~np.isnan(values)]
    distinct, counts = np.unique(values, return_counts=True)
    if distinct.size <= CONTINUOUS_MIN_DISTINCT:
        return []
    fractional = bool(np.any(distinct != np.round(distinct)))
    if not (fractional or np.median(counts) < MIN_TRAIN_ROWS):
        return []
    example = ", ".join(f"{v:g}" for v in distinct[:3])
    return [
        Finding(
            check="continuous_label",
            severity="warning",
            columns=(target,),
            message=(
                f"Target column {target!r} looks like a continuous number ({distinct.size} "
                f"distinct values such as {example}), not class labels; give a column of "
                "classes, or bin it into a few classes first."
            ),
            meaning=(
                "Each distinct value becomes its own class, most with a handful of rows, so the "
                "classifier and every value computed from it measure the wrong thing."
            ),
        )
    ]


def _class_findings(
    codes: np.ndarray, class_names: Sequence[str], train: np.ndarray, test: np.ndarray
) -> list[Finding]:
    n_classes = len(class_names)
    n_train = np.bincount(codes[train], minlength=n_classes)
    n_test = np.bincount(codes[test], minlength=n_classes)
    rare = np.flatnonzero((n_train < MIN_TRAIN_ROWS) | (n_test < MIN_TEST_ROWS))
    if rare.size == 0:
        return []
    shown = ", ".join(
        f"{class_names[c]!r} ({n_train[c]} training, {n_test[c]} test)" for c in rare[:5]
    )
    more = f" and {rare.size - 5} more" if rare.size > 5 else ""
    return [
        Finding(
            check="rare_class",
            severity="warning",
            columns=(),
            message=(
                f"{rare.size} class(es) have too few rows: {shown}{more}; add rows of them, merge "
                "them with another class, or drop those rows."
            ),
            meaning=(
                "Random subsets of the training rows (TMC-Shapley prefixes, AME subsets) often "
                "miss such a class entirely, and its test metrics rest on one or two rows, so "
                "the values of its rows are mostly noise."
            ),
        )
    ]


# --- everything --------------------------------------------------------------------------------


def run_checks(
    frame: pd.DataFrame,
    target: str,
    *,
    train: np.ndarray,
    test: np.ndarray,
    codes: np.ndarray,
    class_names: Sequence[str],
    exclude: Sequence[str] = (),
    renamed: dict[str, str] | None = None,
    seed: int = 0,
    pixels: bool = False,
) -> list[Finding]:
    """Run every data check on the raw rows and their split.

    Parameters
    ----------
    frame : pandas.DataFrame
        The raw rows used (after any subsample), features and the target column, indexed by id.
    target : str
        The label column.
    train, test : ndarray of int
        Positions of the two sides in ``frame``.
    codes : ndarray of int
        Encoded label of each row of ``frame`` (before any deliberate flip).
    class_names : sequence of str
        Name of each code.
    exclude : sequence of str
        Columns that are not features (the split column).
    renamed : dict, optional
        Names pandas gave repeated header names (``{"a.1": "a"}``).
    seed : int
        Seed of the leakage check's row sample and folds.
    pixels : bool
        The features are an image's pixels: the column checks (a column that predicts the label,
        identifiers, constant columns) say nothing about one pixel and are left out; the row
        checks (duplicate images, images in both splits, rare classes) run.

    Returns
    -------
    list of Finding
        Warnings first, then notes; empty when nothing was found.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"x": [0.1, 0.5, 0.3, 0.9] * 5, "y": ["a", "b"] * 10})
    >>> codes = (frame["y"] == "b").to_numpy().astype(int)
    >>> positions = np.arange(20)
    >>> [f.check for f in run_checks(frame, "y", train=positions[:14], test=positions[14:],
    ...                              codes=codes, class_names=("a", "b"))]
    ['label_leakage', 'duplicate_rows', 'train_test_overlap']
    """
    train = np.asarray(train)
    test = np.asarray(test)
    columns = [c for c in frame.columns if c != target and c not in set(exclude)]
    features = frame[columns]
    if pixels:
        findings = _duplicate_findings(frame[[*columns, target]], train, test)
        findings += _class_findings(codes, class_names, train, test)
        return sorted(findings, key=lambda f: f.severity != "warning")
    findings = _renamed_findings(renamed or {}, features)
    identifiers, flagged = _identifier_findings(features)
    findings += identifiers
    constants, constant_columns = _constant_findings(features)
    findings += _leakage_findings(
        features.iloc[train],
        codes[train],
        len(class_names),
        target,
        flagged | constant_columns,
        seed,
    )
    findings += _duplicate_findings(frame[[*columns, target]], train, test)
    findings += _class_findings(codes, class_names, train, test)
    findings += constants
    return sorted(findings, key=lambda f: f.severity != "warning")


def baseline_findings(metrics: pd.DataFrame, n_test: int) -> list[Finding]:
    """A finding when every baseline model (two or more) is perfect on the test rows.

    One model can be perfect on an easy task (logistic regression on the wine data, whose 53
    test rows it all classifies correctly); models as different as a linear model, neighbours and
    trees all being perfect is the mark of a shortcut such as a column that restates the label.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The baseline table, one row per model (index), with an ``accuracy`` column.
    n_test : int
        Test rows, for the message.

    Returns
    -------
    list of Finding
    """
    if len(metrics) < 2 or "accuracy" not in metrics or not (metrics["accuracy"] == 1.0).all():
        return []
    models = [str(m) for m in metrics.index]
    return [
        Finding(
            check="perfect_baseline",
            severity="warning",
            columns=(),
            message=(
                f"Every baseline model ({', '.join(models)}) classifies all {n_test} test rows "
                "correctly; look for a column that restates the label and --drop it, or check "
                "that the test rows are not copies of training rows."
            ),
            meaning=(
                "A perfect model leaves nothing for training rows to explain: most values are "
                "near zero, and large ones point at the shortcut, not at the data."
            ),
        )
    ]
