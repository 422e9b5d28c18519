"""Data checks on the feature columns: repeated header names, identifiers, constant columns."""

from __future__ import annotations

import re
import shlex

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from dataworth.data.findings import Finding, _arg, _names

# Fewer rows than this and "unique per row" or "increasing" happens by chance.
MIN_ROWS_FOR_IDENTIFIER = 10

_ID_NAME = re.compile(r"(^|[^a-z])(id|ids|index|idx|key|uuid|guid|row|rownum)([^a-z]|$)", re.I)
# CamelCase names such as PassengerId or rowIndex.
_ID_CAMEL = re.compile(r"[a-z0-9](Id|ID|Ids|Idx|Index|Key|Uuid|UUID)$")
_UNNAMED = re.compile(r"^Unnamed: \d+$")


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
