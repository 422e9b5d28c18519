"""Row subsampling and train/test splits, as positions into the source frame.

Three kinds of split:

- ``"random"``: stratified; each class's training count is as close to its share of
  ``train_size`` as integers allow, and every class keeps at least one row on each side.
- ``"time:COL"``: rows sorted by ``COL`` (stable), the earliest ``train_size`` rows train.
- ``"group:COL"``: whole groups of ``COL`` go to one side, in a seeded random order, until the
  training side is as close to ``train_size`` rows as whole groups allow.

All functions are pure functions of their inputs and a ``numpy.random.Generator``.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from dataworth.errors import DataworthError

__all__ = [
    "SplitSpec",
    "group_split",
    "parse_split",
    "random_split",
    "resolve_train_size",
    "stratified_subsample",
    "time_split",
    "time_values",
]


@dataclass(frozen=True)
class SplitSpec:
    """A parsed split specification: ``kind`` is random, time or group; ``column`` or None."""

    kind: str
    column: str | None = None

    def __str__(self) -> str:
        return self.kind if self.column is None else f"{self.kind}:{self.column}"


def parse_split(spec: str) -> SplitSpec:
    """Parse ``"random"``, ``"time:COL"`` or ``"group:COL"``.

    Parameters
    ----------
    spec : str
        The split specification.

    Returns
    -------
    SplitSpec
    """
    how = "use 'random', 'time:COLUMN' or 'group:COLUMN'"
    if not isinstance(spec, str):
        raise DataworthError(f"split={spec!r} is not a string; {how}.")
    kind, sep, column = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "random" and not sep:
        return SplitSpec("random")
    if kind in ("time", "group") and sep and column.strip():
        return SplitSpec(kind, column.strip())
    if kind in ("time", "group"):
        raise DataworthError(f"split={spec!r} names no column; write '{kind}:COLUMN'.")
    raise DataworthError(f"Unknown split {spec!r}; {how}.")


def resolve_train_size(train_size: float | int, n_rows: int) -> int:
    """The number of training rows for ``train_size`` out of ``n_rows``.

    Parameters
    ----------
    train_size : int or float
        A count (an integer above 1) or a fraction strictly between 0 and 1.
    n_rows : int
        Rows available.

    Returns
    -------
    int
        Between 1 and ``n_rows - 1``.
    """
    how = "give a fraction between 0 and 1 or a row count above 1"
    if isinstance(train_size, bool) or not isinstance(train_size, numbers.Real):
        raise DataworthError(f"train_size={train_size!r} is not a number; {how}.")
    value = float(train_size)
    if 0.0 < value < 1.0:
        count = round(value * n_rows)
    elif value > 1.0 and value.is_integer():
        count = int(value)
    else:
        raise DataworthError(f"train_size={train_size!r} is out of range; {how}.")
    if count >= n_rows:
        raise DataworthError(
            f"train_size={train_size!r} leaves no test rows out of {n_rows}; "
            f"use fewer than {n_rows} training rows."
        )
    if count < 1:
        raise DataworthError(
            f"train_size={train_size!r} leaves no training rows out of {n_rows}; use a larger one."
        )
    return count


def _allocate(counts: np.ndarray, total: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Integers ``a`` with ``sum(a) == total``, ``low <= a <= high``, closest to proportional.

    Starts from the floor of the proportional share and hands the remaining units, one at a
    time, to the class furthest below its ideal (taking back from the one furthest above when
    the bounds forced too many). Ties go to the first class, so the result is deterministic.
    Unbounded classes end within one unit of their ideal share.
    """
    ideal = total * counts / counts.sum()
    alloc = np.clip(np.floor(ideal), low, high).astype(np.int64)
    while (gap := total - int(alloc.sum())) != 0:
        shortfall = ideal - alloc
        if gap > 0:
            shortfall[alloc >= high] = -np.inf
            alloc[int(np.argmax(shortfall))] += 1
        else:
            shortfall[alloc <= low] = np.inf
            alloc[int(np.argmin(shortfall))] -= 1
    return alloc


def _class_positions(codes: np.ndarray, n_classes: int) -> list[np.ndarray]:
    return [np.flatnonzero(codes == c) for c in range(n_classes)]


def stratified_subsample(codes: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``rows`` positions, each class keeping its share (and at least 2 rows).

    Parameters
    ----------
    codes : ndarray of int
        Encoded label of every row.
    rows : int
        How many rows to keep; at least 2 per class.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray of int64
        Sorted positions of the kept rows.
    """
    if isinstance(rows, bool) or not isinstance(rows, numbers.Integral):
        raise DataworthError(f"rows={rows!r} is not a whole number; give a row count.")
    n_classes = int(codes.max()) + 1
    counts = np.bincount(codes, minlength=n_classes)
    if rows < 2 * n_classes:
        raise DataworthError(
            f"rows={rows} is too few for {n_classes} classes; keep at least {2 * n_classes} rows "
            "(2 per class)."
        )
    # Two rows per class so that the later split can still put one on each side.
    alloc = _allocate(counts, rows, np.minimum(counts, 2), counts)
    kept = [
        rng.choice(positions, size=k, replace=False)
        for positions, k in zip(_class_positions(codes, n_classes), alloc, strict=True)
    ]
    return np.sort(np.concatenate(kept)).astype(np.int64)


def random_split(
    codes: np.ndarray, n_train: int, rng: np.random.Generator, class_names=None
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random split with ``n_train`` training rows.

    Parameters
    ----------
    codes : ndarray of int
        Encoded label of every row (classes ``0..C-1`` all present).
    n_train : int
        Training rows wanted.
    rng : numpy.random.Generator
        Source of randomness.
    class_names : sequence of str, optional
        For messages.

    Returns
    -------
    train, test : ndarray of int64
        Positions, each in a random order.
    """
    n_classes = int(codes.max()) + 1
    names = class_names or [str(c) for c in range(n_classes)]
    counts = np.bincount(codes, minlength=n_classes)
    n_rows = len(codes)
    rare = np.flatnonzero(counts < 2)
    if rare.size:
        c = rare[0]
        raise DataworthError(
            f"Class {names[c]!r} has only {counts[c]} row; a stratified split needs at least 2 "
            "per class: add rows of it, drop it, or merge it with another class."
        )
    if n_train < n_classes or n_rows - n_train < n_classes:
        raise DataworthError(
            f"A stratified split of {n_rows} rows with {n_train} for training leaves a side with "
            f"fewer rows than the {n_classes} classes; choose train_size between {n_classes} and "
            f"{n_rows - n_classes} rows."
        )
    ones = np.ones(n_classes, dtype=np.int64)
    alloc = _allocate(counts, n_train, ones, counts - 1)
    train, test = [], []
    for positions, k in zip(_class_positions(codes, n_classes), alloc, strict=True):
        shuffled = rng.permutation(positions)
        train.append(shuffled[:k])
        test.append(shuffled[k:])
    # Shuffle across classes so training positions are not grouped by label.
    train_pos = rng.permutation(np.concatenate(train))
    test_pos = rng.permutation(np.concatenate(test))
    return train_pos.astype(np.int64), test_pos.astype(np.int64)


def _check_split_column(values: pd.Series, column: str, kind: str) -> None:
    n_missing = int(values.isna().sum())
    if n_missing:
        raise DataworthError(
            f"The {kind} column {column!r} has {n_missing} missing value(s); fill them or drop "
            "those rows."
        )


def time_split(times: pd.Series, n_train: int, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_train`` earliest rows train, the rest test.

    Ties keep source order (a stable sort), so every training time is at most every test time.

    Parameters
    ----------
    times : pandas.Series
        The time column: numbers, dates, or text that parses as dates (any one format).
    n_train : int
        Training rows.
    column : str
        For messages.

    Returns
    -------
    train, test : ndarray of int64
        Positions in time order.
    """
    _check_split_column(times, column, "time")
    order = np.argsort(time_values(times, column), kind="stable")
    return order[:n_train].astype(np.int64), order[n_train:].astype(np.int64)


def time_values(times: pd.Series, column: str) -> np.ndarray:
    """The time column as sortable numbers or datetimes.

    Text is parsed as dates rather than sorted as text, because "9/1/2024" sorts after
    "10/1/2024" as text; text that is not dates cannot define a time order.
    """
    if ptypes.is_numeric_dtype(times.dtype) and not ptypes.is_bool_dtype(times.dtype):
        return times.to_numpy(dtype=np.float64, na_value=np.nan)
    if ptypes.is_datetime64_any_dtype(times.dtype):
        return times.to_numpy()
    text = times.astype(str)
    with warnings.catch_warnings():
        # pandas warns when it guesses a format; one consistent guess is what we want.
        warnings.simplefilter("ignore", UserWarning)
        # UTC makes mixed offsets comparable; unparseable values become NaT and are named below.
        parsed = pd.to_datetime(text, errors="coerce", utc=True)
    bad = text[parsed.isna().to_numpy()]
    if len(bad):
        raise DataworthError(
            f"The time column {column!r} holds {len(bad)} value(s) that are neither numbers nor "
            f"dates, such as {bad.iloc[0]!r}; give numbers or dates in one format."
        )
    return parsed.dt.tz_localize(None).to_numpy()


def group_split(
    groups: pd.Series, n_train: int, rng: np.random.Generator, column: str
) -> tuple[np.ndarray, np.ndarray]:
    """Whole groups to one side: the training side is as close to ``n_train`` rows as possible.

    Groups are taken in a random order; the training side is the shortest prefix of that order
    whose size is closest to ``n_train``, always leaving at least one group on each side.

    Parameters
    ----------
    groups : pandas.Series
        Group label of every row.
    n_train : int
        Training rows wanted.
    rng : numpy.random.Generator
        Source of randomness.
    column : str
        For messages.

    Returns
    -------
    train, test : ndarray of int64
        Positions, sorted.
    """
    _check_split_column(groups, column, "group")
    codes, uniques = pd.factorize(groups, sort=True)
    if len(uniques) < 2:
        raise DataworthError(
            f"The group column {column!r} has {len(uniques)} distinct value(s); a group split "
            "needs at least 2 groups."
        )
    sizes = np.bincount(codes, minlength=len(uniques))
    order = rng.permutation(len(uniques))
    cumulative = np.cumsum(sizes[order])[:-1]  # at least one group is left for testing
    k = int(np.argmin(np.abs(cumulative - n_train))) + 1
    in_train = np.zeros(len(uniques), dtype=bool)
    in_train[order[:k]] = True
    mask = in_train[codes]
    return np.flatnonzero(mask).astype(np.int64), np.flatnonzero(~mask).astype(np.int64)
