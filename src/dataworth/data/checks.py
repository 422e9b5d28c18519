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

import re
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from dataworth.errors import DataworthError

__all__ = [
    "LEAKAGE_BALANCED_ACCURACY",
    "DataCheckWarning",
    "Finding",
    "baseline_findings",
    "emit",
    "label_findings",
    "run_checks",
]

# A single column reaching this balanced accuracy on held-out training rows restates the label.
LEAKAGE_BALANCED_ACCURACY = 0.99
# The leakage check fits on at most this many sampled training rows: enough to estimate a
# balanced accuracy near 1 to within a fraction of a percent, and cheap on any table.
LEAKAGE_MAX_ROWS = 3000
# Fewer rows than this and "unique per row" or "increasing" happens by chance.
MIN_ROWS_FOR_IDENTIFIER = 10
# Share of training rows in duplicate groups above which duplicates are a warning: a few
# repeated rows are common in real data (Fisher's Iris has one pair), many suggest a join or a
# concatenation went wrong.
DUPLICATE_WARNING_SHARE = 0.10
# Share of test rows that are copies of training rows above which the overlap is a warning:
# the copies can raise an accuracy by up to their share of the test rows.
OVERLAP_WARNING_SHARE = 0.05
# A class with fewer training rows than this is missing from a large share of the random
# subsets valuation fits (a random half-size subset misses a class of k rows with probability
# about 2^-k), and with fewer test rows than MIN_TEST_ROWS its test metrics rest on one row.
MIN_TRAIN_ROWS = 5
MIN_TEST_ROWS = 2
# A numeric target with more distinct values than this, and either fractional values or most
# classes holding fewer than MIN_TRAIN_ROWS rows, looks like a regression target.
CONTINUOUS_MIN_DISTINCT = 20

_ID_NAME = re.compile(r"(^|[^a-z])(id|ids|index|idx|key|uuid|guid|row|rownum)([^a-z]|$)", re.I)
# CamelCase names such as PassengerId or rowIndex.
_ID_CAMEL = re.compile(r"[a-z0-9](Id|ID|Ids|Idx|Index|Key|Uuid|UUID)$")
_UNNAMED = re.compile(r"^Unnamed: \d+$")


class DataCheckWarning(UserWarning):
    """A data check found a problem that may make the values wrong (see :class:`Finding`)."""


@dataclass(frozen=True)
class Finding:
    """One problem found by a data check.

    Attributes
    ----------
    check : str
        Which check fired (``label_leakage``, ``identifier``...).
    severity : {"warning", "info"}
        A warning may make the values wrong; a note only helps reading them.
    columns : tuple of str
        The columns concerned (empty for row checks).
    message : str
        One line naming the column(s) and the fix.
    meaning : str
        What the problem means for the values.
    rows : tuple
        Ids of the rows concerned (duplicate groups), when the check is about rows.
    """

    check: str
    severity: str
    columns: tuple[str, ...]
    message: str
    meaning: str
    rows: tuple = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict."""
        return {
            "check": self.check,
            "severity": self.severity,
            "columns": list(self.columns),
            "message": self.message,
            "meaning": self.meaning,
            "rows": [_plain(r) for r in self.rows],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        """The inverse of :meth:`to_dict`."""
        return cls(
            check=data["check"],
            severity=data["severity"],
            columns=tuple(data.get("columns", ())),
            message=data["message"],
            meaning=data.get("meaning", ""),
            rows=tuple(data.get("rows", ())),
        )


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _arg(text: str) -> str:
    """``text`` as one shell word, quoted only when it needs it (``'Unnamed: 0'``)."""
    return shlex.quote(str(text))


def _names(columns: Sequence[str]) -> str:
    return ", ".join(repr(str(c)) for c in columns)


def emit(findings: Sequence[Finding], *, strict: bool = False) -> None:
    """Warn once per warning finding; with ``strict``, raise instead.

    Parameters
    ----------
    findings : sequence of Finding
    strict : bool
        Turn the warnings into one :class:`~dataworth.errors.DataworthError`.

    Raises
    ------
    DataworthError
        With ``strict`` and at least one warning; the message gives the first and counts the
        rest.
    """
    alarms = [f for f in findings if f.severity == "warning"]
    if strict and alarms:
        first = "the first: " if len(alarms) > 1 else ""
        raise DataworthError(
            f"Strict mode: the data checks found {len(alarms)} problem(s); {first}"
            f"{alarms[0].message}"
        )
    for finding in alarms:
        warnings.warn(finding.message, DataCheckWarning, stacklevel=3)


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


# --- columns -----------------------------------------------------------------------------------


def _renamed_findings(renamed: dict[str, str], frame: pd.DataFrame) -> list[Finding]:
    """``renamed`` maps a name pandas gave a repeated header (``a.1``) to the original (``a``)."""
    by_original: dict[str, list[str]] = {}
    for new, original in renamed.items():
        by_original.setdefault(original, []).append(new)
    findings = []
    for original, copies in by_original.items():
        same = [
            c
            for c in copies
            if original in frame.columns and c in frame.columns and frame[c].equals(frame[original])
        ]
        detail = " (identical to it)" if same and len(same) == len(copies) else ""
        findings.append(
            Finding(
                check="duplicate_column_name",
                severity="warning",
                columns=(original, *copies),
                message=(
                    f"Column name {original!r} appears {len(copies) + 1} times in the header; "
                    f"the copies were read as {_names(copies)}{detail}; rename them in the file, "
                    f"or --drop {_arg(','.join(copies))} if they repeat {original!r}."
                ),
                meaning=(
                    "Two columns of one name are easily mixed up: values and reports name "
                    "columns, and a repeated column counts twice in distances (KNN-Shapley)."
                ),
            )
        )
    return findings


def _is_integer_valued(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values)))


def _identifier_reason(name: str, column: pd.Series) -> str | None:
    """Why ``column`` looks like a row identifier, or None."""
    present = column.dropna()
    n = len(column)
    if n < MIN_ROWS_FOR_IDENTIFIER or len(present) < n:
        return None
    dtype = column.dtype
    if ptypes.is_bool_dtype(dtype):
        return None
    if ptypes.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        values = present.to_numpy(dtype=np.float64)
        unique_whole = _is_integer_valued(values) and pd.Series(values).nunique() == n
        if unique_whole and _UNNAMED.match(name):
            return "is the unnamed index column pandas writes, a different number in every row"
        if np.all(np.diff(values) > 0):
            return "increases strictly with the row number"
        if not unique_whole:
            return None
        if _ID_NAME.search(name) or _ID_CAMEL.search(name):
            return "holds a different whole number in every row"
        if values.max() - values.min() + 1 == n:
            return "is a shuffled row number (every whole number of a range, once each)"
        return None
    if present.astype(str).nunique() == n:
        return "has a different value in every row (names, hashes or ids)"
    return None


def _identifier_findings(features: pd.DataFrame) -> tuple[list[Finding], set[str]]:
    findings, flagged = [], set()
    for name, column in features.items():
        reason = _identifier_reason(str(name), column)
        if reason is None:
            continue
        flagged.add(str(name))
        timing = (
            f", or use it as --split {shlex.quote(f'time:{name}')} if it is a time"
            if reason.startswith("increases")
            else ""
        )
        findings.append(
            Finding(
                check="identifier",
                severity="warning",
                columns=(str(name),),
                message=(
                    f"Column {str(name)!r} looks like a row identifier: it {reason}; "
                    f"--drop {_arg(name)}{timing}."
                ),
                meaning=(
                    "An identifier carries no information about new rows, but a model can use "
                    "it to memorise rows (a text id one-hot encoded adds a column per row), so "
                    "the values reward memorisation instead of what the rows say."
                ),
            )
        )
    return findings, flagged


def _constant_findings(features: pd.DataFrame) -> tuple[list[Finding], set[str]]:
    constant = [str(c) for c in features.columns if features[c].nunique(dropna=False) <= 1]
    if not constant:
        return [], set()
    shown = _names(constant[:5]) + (f" and {len(constant) - 5} more" if len(constant) > 5 else "")
    finding = Finding(
        check="constant_column",
        severity="info",
        columns=tuple(constant),
        message=(
            f"{len(constant)} column(s) hold one value in every row: {shown}; they are harmless, "
            f"--drop {_arg(','.join(constant))} removes them."
        ),
        meaning=(
            "A constant column cannot change any fit (standardised, it is all zeros), so the "
            "values are the same with or without it; it is a note, not a warning (the digits "
            "dataset has blank border pixels, for instance)."
        ),
    )
    return [finding], set(constant)


# --- rows --------------------------------------------------------------------------------------


def _row_keys(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of all its cells (missing values included)."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _duplicate_findings(frame: pd.DataFrame, train: np.ndarray, test: np.ndarray) -> list[Finding]:
    """Identical rows (features and label) inside training, and in both training and test."""
    findings = []
    keys = _row_keys(frame)
    ids = frame.index.to_numpy()
    train_keys = pd.Series(keys[train], index=ids[train])
    repeated = train_keys[train_keys.duplicated(keep=False)]
    if len(repeated):
        groups = [
            tuple(_plain(v) for v in g.index) for _, g in repeated.groupby(repeated, sort=False)
        ]
        share = len(repeated) / len(train)
        shown = ", ".join("(" + ", ".join(map(str, g)) + ")" for g in groups[:3])
        more = f" and {len(groups) - 3} more" if len(groups) > 3 else ""
        findings.append(
            Finding(
                check="duplicate_rows",
                severity="warning" if share >= DUPLICATE_WARNING_SHARE else "info",
                columns=(),
                message=(
                    f"{len(repeated)} training rows ({share:.1%}) are exact copies of one "
                    f"another, in {len(groups)} group(s) of ids: {shown}{more}; remove the "
                    "copies unless they are real repeated observations."
                ),
                meaning=(
                    "Copies share their value: removing one copy barely changes the model while "
                    "the other remains, so leave-one-out values of copies are near zero and "
                    "Shapley values split between them (the LOO table flags each copy and "
                    "counts them in its duplicates column)."
                ),
                rows=tuple(groups),
            )
        )
    in_train = np.isin(keys[test], keys[train])
    if in_train.any():
        share = float(in_train.mean())
        overlap = tuple(_plain(v) for v in ids[test][in_train])
        shown = ", ".join(map(str, overlap[:8])) + (" ..." if len(overlap) > 8 else "")
        findings.append(
            Finding(
                check="train_test_overlap",
                severity="warning" if share >= OVERLAP_WARNING_SHARE else "info",
                columns=(),
                message=(
                    f"{len(overlap)} test rows ({share:.1%} of the test set) are exact copies of "
                    f"training rows (test ids {shown}); remove the copies before splitting, or "
                    "split with --split group:COLUMN on what they share."
                ),
                meaning=(
                    "A model scores well on a test row it saw in training, so every score, and "
                    "the value of the training copies, is inflated."
                ),
                rows=overlap,
            )
        )
    return findings


# --- leakage -----------------------------------------------------------------------------------


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
