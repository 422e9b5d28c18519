"""A factual description of a dataset and its split, for reports.

Every number is computed from the raw rows (before imputation and scaling) that the task was
built from, after any subsampling. Sentences in :meth:`DatasetDescription.summary_lines` are
built from those numbers only, never from judgement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["DatasetDescription", "describe_dataset"]

# Above this many classes the summary names only the largest and smallest.
_MAX_CLASSES_LISTED = 6


@dataclass(frozen=True, eq=False)
class DatasetDescription:
    """Rows, features, missing values, class balance and split of one dataset.

    Attributes
    ----------
    name, target : str
        Dataset name and label column.
    n_rows : int
        Rows used (after subsampling).
    n_source_rows : int
        Rows in the source.
    n_features, n_numeric, n_categorical : int
        Raw feature columns, by type.
    n_encoded_features : int
        Columns after one-hot encoding.
    n_missing_cells, n_rows_with_missing : int
        Missing feature values, and rows with at least one.
    features : pandas.DataFrame
        One row per raw feature: ``feature, type, missing, mean, std, min, max, distinct``
        (mean to max are NaN for categorical features).
    labels : pandas.DataFrame
        One row per class: ``class, count, share, train_count, train_share, test_count,
        test_share`` (the source labels, before any flip).
    split : dict
        ``kind``, ``column``, ``seed``, ``stratified``, ``train_size`` (as requested),
        ``n_train``, ``n_test``, ``rows`` (as requested), ``flip``, ``n_flipped`` and
        kind-specific counts.
    """

    name: str
    target: str
    n_rows: int
    n_source_rows: int
    n_features: int
    n_numeric: int
    n_categorical: int
    n_encoded_features: int
    n_missing_cells: int
    n_rows_with_missing: int
    features: pd.DataFrame
    labels: pd.DataFrame
    split: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (tables as lists of records, NaN as None)."""
        out = {
            key: _plain(getattr(self, key))
            for key in (
                "name",
                "target",
                "n_rows",
                "n_source_rows",
                "n_features",
                "n_numeric",
                "n_categorical",
                "n_encoded_features",
                "n_missing_cells",
                "n_rows_with_missing",
            )
        }
        out["features"] = _records(self.features)
        out["labels"] = _records(self.labels)
        out["split"] = {k: _plain(v) for k, v in self.split.items()}
        return out

    def summary_lines(self) -> list[str]:
        """Short factual sentences about the data and the split."""
        lines = [self._shape_line()]
        if self.n_rows < self.n_source_rows:
            lines.append(
                f"Subsampled (stratified) to {self.n_rows} of {self.n_source_rows} source rows."
            )
        lines.append(self._missing_line())
        lines.append(self._classes_line())
        lines.append(self._split_line())
        lines.extend(self._flip_lines())
        return lines

    def _shape_line(self) -> str:
        line = (
            f"{self.n_rows} rows and {self.n_features} features ({self.n_numeric} numeric, "
            f"{self.n_categorical} categorical)"
        )
        if self.n_encoded_features != self.n_features:
            line += f", {self.n_encoded_features} columns after one-hot encoding"
        return line + "."

    def _missing_line(self) -> str:
        if self.n_missing_cells == 0:
            return "No missing values."
        n_cols = int((self.features["missing"] > 0).sum())
        share = self.n_rows_with_missing / self.n_rows
        return (
            f"{self.n_missing_cells} missing values in {n_cols} feature(s), in "
            f"{self.n_rows_with_missing} rows ({share:.1%}); imputed from the training rows."
        )

    def _classes_line(self) -> str:
        labels = self.labels
        parts = [
            f"{row['class']} ({row['count']} rows, {row['share']:.1%})"
            for _, row in labels.iterrows()
        ]
        if len(labels) <= _MAX_CLASSES_LISTED:
            line = f"{len(labels)} classes: {', '.join(parts)}."
        else:
            order = labels.sort_values("count", kind="stable")
            small, large = order.iloc[0], order.iloc[-1]
            line = (
                f"{len(labels)} classes; the largest is {large['class']} ({large['count']} rows, "
                f"{large['share']:.1%}), the smallest {small['class']} ({small['count']} rows, "
                f"{small['share']:.1%})."
            )
        ratio = labels["count"].max() / labels["count"].min()
        return line + f" Largest to smallest class ratio {ratio:.1f}."

    def _split_line(self) -> str:
        s = self.split
        sizes = f"{s['n_train']} training rows and {s['n_test']} test rows"
        if s["kind"] == "random":
            return f"Stratified random split (seed {s['seed']}): {sizes}."
        if s["kind"] == "time":
            return (
                f"Time split on {s['column']!r}: the {s['n_train']} earliest rows train (up to "
                f"{s['train_until']}), the {s['n_test']} later rows test (from {s['test_from']})."
            )
        return (
            f"Group split on {s['column']!r} (seed {s['seed']}): {sizes}, in "
            f"{s['n_train_groups']} and {s['n_test_groups']} groups."
        )

    def _flip_lines(self) -> list[str]:
        s = self.split
        lines = []
        if s.get("n_source_noisy", 0):
            lines.append(
                f"The source has {s['n_source_noisy']} labels flipped on purpose; "
                f"{s['n_train_noisy']} of them are training rows."
            )
        if s.get("n_flipped", 0):
            share = s["n_flipped"] / s["n_train"]
            lines.append(
                f"{s['n_flipped']} training labels ({share:.1%}) flipped on purpose "
                f"(flip={s['flip']})."
            )
        return lines


def _plain(value):
    """Numpy scalars, NaN and infinities to plain JSON values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _feature_table(features: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    rows = []
    for name, column in features.items():
        row = {
            "feature": name,
            "type": kinds[name],
            "missing": int(column.isna().sum()),
            "mean": np.nan,
            "std": np.nan,
            "min": np.nan,
            "max": np.nan,
            "distinct": int(column.nunique(dropna=True)),
        }
        if kinds[name] == "numeric":
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            values = values[~np.isnan(values)]
            row.update(
                mean=float(values.mean()),
                # Sample standard deviation, as pandas' describe() reports it.
                std=float(values.std(ddof=1)) if values.size > 1 else np.nan,
                min=float(values.min()),
                max=float(values.max()),
            )
        rows.append(row)
    return pd.DataFrame(
        rows, columns=["feature", "type", "missing", "mean", "std", "min", "max", "distinct"]
    )


def _label_table(
    codes: np.ndarray, class_names, train: np.ndarray, test: np.ndarray
) -> pd.DataFrame:
    n_classes = len(class_names)
    table = {"class": list(class_names)}
    for prefix, subset in (("", codes), ("train_", codes[train]), ("test_", codes[test])):
        counts = np.bincount(subset, minlength=n_classes)
        table[f"{prefix}count"] = counts.astype(np.int64)
        table[f"{prefix}share"] = counts / max(len(subset), 1)
    return pd.DataFrame(table)


def describe_dataset(
    features: pd.DataFrame,
    kinds: dict[str, str],
    codes: np.ndarray,
    class_names,
    train: np.ndarray,
    test: np.ndarray,
    *,
    name: str,
    target: str,
    n_source_rows: int,
    n_encoded_features: int,
    split: dict,
) -> DatasetDescription:
    """Describe the rows a task was built from.

    Parameters
    ----------
    features : pandas.DataFrame
        Raw feature columns of all rows used (train and test).
    kinds : dict
        Column name to ``"numeric"`` or ``"categorical"``.
    codes : ndarray of int
        Encoded source label of each row of ``features``.
    class_names : sequence of str
        Name of each code.
    train, test : ndarray of int
        Positions of the split's rows in ``features``.
    name, target : str
        Dataset name and label column.
    n_source_rows : int
        Rows in the source, before subsampling.
    n_encoded_features : int
        Columns after encoding.
    split : dict
        Split facts (see :class:`DatasetDescription`).

    Returns
    -------
    DatasetDescription
    """
    missing = features.isna()
    return DatasetDescription(
        name=name,
        target=target,
        n_rows=len(features),
        n_source_rows=int(n_source_rows),
        n_features=features.shape[1],
        n_numeric=sum(k == "numeric" for k in kinds.values()),
        n_categorical=sum(k == "categorical" for k in kinds.values()),
        n_encoded_features=int(n_encoded_features),
        n_missing_cells=int(missing.to_numpy().sum()),
        n_rows_with_missing=int(missing.any(axis=1).sum()),
        features=_feature_table(features, kinds),
        labels=_label_table(codes, class_names, train, test),
        split=dict(split),
    )
