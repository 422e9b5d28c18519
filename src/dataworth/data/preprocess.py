"""Feature checks, the preprocessing pipeline (fitted on training rows only) and label encoding.

Numeric columns are imputed with the training median and standardised; categorical columns
(object, string, category, bool) are imputed with the most frequent training value and one-hot
encoded, unknown test categories encoding to all zeros. The checks run before any fit so that
bad input fails with one clear line instead of a scikit-learn traceback.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from dataworth.errors import DataworthError

__all__ = [
    "NUMERIC_LIKE_SHARE",
    "build_preprocessor",
    "column_kinds",
    "encode_labels",
    "fit_transform",
    "label_name",
    "validate_features",
]

# An object column where at least this share of the values parse as numbers is taken to be a
# numeric column with typos ("abc" among numbers), not a categorical one.
NUMERIC_LIKE_SHARE = 0.9


def column_kinds(features: pd.DataFrame) -> dict[str, str]:
    """Classify each column as ``"numeric"`` or ``"categorical"``.

    Parameters
    ----------
    features : pandas.DataFrame
        The feature columns (no target).

    Returns
    -------
    dict
        Column name to kind, in column order.

    Raises
    ------
    DataworthError
        For a column of a type that cannot be a feature (dates, durations, complex numbers).
    """
    kinds = {}
    for name, column in features.items():
        dtype = column.dtype
        if ptypes.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            kinds[name] = "categorical"
        elif ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype):
            kinds[name] = "numeric"
        elif ptypes.is_object_dtype(dtype) or ptypes.is_string_dtype(dtype):
            kinds[name] = "categorical"
        else:
            raise DataworthError(
                f"Column {name!r} has type {dtype}, which cannot be a feature; drop it, convert "
                "it to numbers, or use it as split='time:COLUMN'."
            )
    return kinds


def validate_features(features: pd.DataFrame, kinds: dict[str, str]) -> None:
    """Reject feature columns that would silently corrupt the task.

    Checks, in order: no columns at all, entirely missing columns, infinite values in numeric
    columns, and numeric-looking text columns with a few non-numbers in them.

    Parameters
    ----------
    features : pandas.DataFrame
        The feature columns (no target).
    kinds : dict
        Output of :func:`column_kinds`.

    Raises
    ------
    DataworthError
        Naming the first offending column and how to fix it.
    """
    if features.shape[1] == 0:
        raise DataworthError(
            "There are no feature columns besides the target (and split column); "
            "give data with at least one feature."
        )
    for name, column in features.items():
        if column.isna().all():
            raise DataworthError(
                f"Column {name!r} has no values (all missing); drop it or fill it in."
            )
    for name, kind in kinds.items():
        if kind == "numeric":
            _check_finite(name, features[name])
        else:
            _check_numeric_like(name, features[name])


def _check_finite(name: str, column: pd.Series) -> None:
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    n_inf = int(np.isinf(values).sum())
    if n_inf:
        raise DataworthError(
            f"Column {name!r} has {n_inf} infinite value(s); replace them with a finite number "
            "or leave them empty (missing values are imputed)."
        )


def _check_numeric_like(name: str, column: pd.Series) -> None:
    if ptypes.is_bool_dtype(column.dtype) or isinstance(column.dtype, pd.CategoricalDtype):
        return
    present = column.dropna()
    if present.empty:
        return
    parsed = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
    bad = present[parsed.isna().to_numpy()]
    share_numeric = 1.0 - len(bad) / len(present)
    if len(bad) and share_numeric >= NUMERIC_LIKE_SHARE:
        raise DataworthError(
            f"Column {name!r} looks numeric ({share_numeric:.0%} of values are numbers) but "
            f"holds {len(bad)} non-numeric value(s) such as {bad.tolist()[0]!r} (row id "
            f"{bad.index.tolist()[0]!r}); fix or blank them."
        )


def _as_float(X) -> np.ndarray:
    """Numeric columns as float64 with NaN for missing (nullable Int64 holds pd.NA otherwise)."""
    return pd.DataFrame(X).to_numpy(dtype=np.float64, na_value=np.nan)


def _as_category_strings(X) -> np.ndarray:
    """Categorical columns as strings with NaN for missing.

    Mixed cell types (``True`` and ``"yes"``, ``1`` and ``"a"``) cannot be sorted by the
    encoder, and pandas' several missing markers (None, pd.NA, NaN) confuse the imputer, so
    every value becomes its string form and every missing marker becomes NaN.
    """
    values = pd.DataFrame(X).to_numpy(dtype=object)
    missing = pd.isna(values)
    out = values.astype(str).astype(object)
    out[missing] = np.nan
    return out


def build_preprocessor(kinds: dict[str, str]) -> ColumnTransformer:
    """The (unfitted) column transformer for the given column kinds.

    Parameters
    ----------
    kinds : dict
        Column name to ``"numeric"`` or ``"categorical"``.

    Returns
    -------
    sklearn.compose.ColumnTransformer
        Applies to a DataFrame with those columns; outputs a dense float array whose columns
        are named by ``get_feature_names_out()`` (numeric columns keep their names, one-hot
        columns are ``column_value``).
    """
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    categorical = [c for c, k in kinds.items() if k == "categorical"]
    numeric_steps = Pipeline(
        [
            ("as_float", FunctionTransformer(_as_float, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]
    )
    categorical_steps = Pipeline(
        [
            (
                "as_str",
                FunctionTransformer(_as_category_strings, feature_names_out="one-to-one"),
            ),
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    transformers = []
    if numeric:
        transformers.append(("numeric", numeric_steps, numeric))
    if categorical:
        transformers.append(("categorical", categorical_steps, categorical))
    return ColumnTransformer(
        transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False
    )


def fit_transform(
    train: pd.DataFrame, test: pd.DataFrame, kinds: dict[str, str]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], ColumnTransformer]:
    """Fit the preprocessor on the training rows only and transform both splits.

    Parameters
    ----------
    train, test : pandas.DataFrame
        Raw feature columns of the two splits.
    kinds : dict
        Output of :func:`column_kinds`.

    Returns
    -------
    X_train, X_test : ndarray
        Encoded features (float64).
    feature_names : tuple of str
        Names of the encoded columns.
    preprocessor : sklearn.compose.ColumnTransformer
        The fitted transformer; apply it to new raw rows with ``transform``.
    """
    # The imputer drops a column with no training values, which would shift every later
    # column; catch it here with a message instead.
    for name in train.columns:
        if train[name].isna().all():
            raise DataworthError(
                f"Column {name!r} has no values in the training split; drop it, fill it in, or "
                "use a larger train_size."
            )
    preprocessor = build_preprocessor(kinds)
    X_train = preprocessor.fit_transform(train)
    X_test = preprocessor.transform(test)
    names = tuple(str(n) for n in preprocessor.get_feature_names_out())
    return (
        np.asarray(X_train, dtype=np.float64),
        np.asarray(X_test, dtype=np.float64),
        names,
        preprocessor,
    )


def encode_labels(labels: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Encode labels as ``0..C-1``, keeping their names.

    A categorical column keeps its category order (unused categories dropped); anything else
    is ordered by sorted value (numbers numerically, so ``10`` follows ``9``).

    Parameters
    ----------
    labels : pandas.Series
        The target column, without missing values.

    Returns
    -------
    codes : ndarray of int64
    class_names : tuple of str
    """
    if isinstance(labels.dtype, pd.CategoricalDtype):
        categorical = labels.cat.remove_unused_categories()
        return (
            categorical.cat.codes.to_numpy(dtype=np.int64),
            tuple(str(c) for c in categorical.cat.categories),
        )
    values = labels.to_numpy()
    if values.dtype == object:
        # Mixed types cannot be sorted; their string forms can.
        try:
            classes, codes = np.unique(values, return_inverse=True)
        except TypeError:
            classes, codes = np.unique(values.astype(str), return_inverse=True)
    else:
        classes, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64).ravel(), tuple(label_name(c) for c in classes)


def label_name(value) -> str:
    """The class name of one label value, as :func:`encode_labels` writes it."""
    # 1.0 read from a CSV with missing values elsewhere is the class "1", not "1.0".
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)
