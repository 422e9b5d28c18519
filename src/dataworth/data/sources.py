"""Where raw rows come from: built-in datasets found by name, CSV and Parquet files, DataFrames.

Every source yields a :class:`RawData`: one pandas DataFrame holding the features and the target
column, indexed by each row's id in the user's source (the DataFrame index label, or the 0-based
data row number of a file, header excluded). Nothing here encodes or scales anything; that is
:mod:`dataworth.data.preprocess`'s job, fitted on the training split only.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets as skdatasets

from dataworth.errors import DataworthError

__all__ = [
    "DatasetInfo",
    "RawData",
    "get_dataset",
    "list_datasets",
    "make_synthetic",
    "raw_from_frame",
    "read_csv",
    "read_images",
    "read_parquet",
    "register_dataset",
]


@dataclass(frozen=True)
class RawData:
    """Raw rows of one source, before any split or preprocessing.

    Parameters
    ----------
    frame : pandas.DataFrame
        Features and the target column; the index holds each row's source id.
    target : str
        Name of the target column in ``frame``.
    source : dict
        JSON-serialisable description of where the rows came from.
    noisy_ids : ndarray
        Source ids whose label is wrong on purpose (the synthetic generator's flips); empty for
        real data.
    clean_labels : pandas.Series or None
        The labels before those flips, indexed like ``frame``; ``None`` when nothing was flipped.
    renamed : dict
        Names pandas gave to repeated header names of a CSV file (``{"a.1": "a"}``), for the
        data checks; empty otherwise.
    findings : list of Finding
        Problems met while reading (an image folder's unreadable files), reported with the data
        checks' findings.
    """

    frame: pd.DataFrame
    target: str
    source: dict
    noisy_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    clean_labels: pd.Series | None = None
    renamed: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)


@dataclass(frozen=True)
class DatasetInfo:
    """A registered built-in dataset: its name, a one-line description and its loader."""

    name: str
    description: str
    loader: Callable[[], RawData]


# The registry is filled once, at import, by the decorators below; it is never a cache of data.
_REGISTRY: dict[str, DatasetInfo] = {}


def register_dataset(name: str, description: str) -> Callable:
    """Register a zero-argument loader returning :class:`RawData` under ``name``.

    Parameters
    ----------
    name : str
        The name users pass to ``load_dataset``.
    description : str
        One short line for ``list_datasets``.

    Returns
    -------
    callable
        A decorator that registers the loader and returns it unchanged.
    """

    def decorator(loader: Callable[[], RawData]) -> Callable[[], RawData]:
        if name in _REGISTRY:
            raise DataworthError(f"A dataset named {name!r} is already registered; pick another.")
        _REGISTRY[name] = DatasetInfo(name=name, description=description, loader=loader)
        return loader

    return decorator


def get_dataset(name: str) -> DatasetInfo:
    """Look a built-in dataset up by name.

    Parameters
    ----------
    name : str
        A registered name (see :func:`list_datasets`).

    Returns
    -------
    DatasetInfo

    Raises
    ------
    DataworthError
        If no dataset has that name; the message lists the known names.
    """
    info = _REGISTRY.get(name)
    if info is None:
        known = ", ".join(sorted(_REGISTRY))
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataworthError(
            f"Unknown dataset {name!r}{hint}; use one of: {known}, or pass csv=/parquet=/frame=."
        )
    return info


def list_datasets() -> pd.DataFrame:
    """Describe the built-in datasets.

    Returns
    -------
    pandas.DataFrame
        One row per dataset with columns ``name``, ``description``, ``rows``, ``features`` and
        ``classes``.
    """
    rows = []
    for name in sorted(_REGISTRY):
        info = _REGISTRY[name]
        raw = info.loader()
        rows.append(
            {
                "name": name,
                "description": info.description,
                "rows": len(raw.frame),
                "features": raw.frame.shape[1] - 1,
                "classes": int(raw.frame[raw.target].nunique()),
            }
        )
    return pd.DataFrame(rows, columns=["name", "description", "rows", "features", "classes"])


# --- built-in datasets -------------------------------------------------------------------------


def _from_sklearn(bunch, name: str) -> RawData:
    """Turn a scikit-learn ``Bunch`` into RawData, keeping the class names in sklearn's order."""
    frame = pd.DataFrame(bunch.data, columns=[str(c) for c in bunch.feature_names])
    names = [str(n) for n in bunch.target_names]
    # A categorical target keeps sklearn's class order (0 = malignant for breast_cancer) while
    # the Task still shows readable names.
    frame["target"] = pd.Categorical.from_codes(np.asarray(bunch.target), categories=names)
    return RawData(frame=frame, target="target", source={"kind": "builtin", "name": name})


@register_dataset("breast_cancer", "UCI Breast Cancer Wisconsin (diagnostic), 2 classes")
def _breast_cancer() -> RawData:
    return _from_sklearn(skdatasets.load_breast_cancer(), "breast_cancer")


@register_dataset("wine", "UCI Wine recognition, 3 cultivars")
def _wine() -> RawData:
    return _from_sklearn(skdatasets.load_wine(), "wine")


@register_dataset("digits", "UCI optical handwritten digits, 8x8 pixels, 10 classes")
def _digits() -> RawData:
    raw = _from_sklearn(skdatasets.load_digits(), "digits")
    # Its 64 columns are an 8x8 grey image: the CNN and the report's pictures read this.
    return replace(raw, source={**raw.source, "image_shape": [1, 8, 8]})


@register_dataset("iris", "Fisher's Iris, 3 species")
def _iris() -> RawData:
    return _from_sklearn(skdatasets.load_iris(), "iris")


def make_synthetic(
    n_rows: int = 1000,
    *,
    n_features: int = 10,
    n_classes: int = 2,
    noise: float = 0.1,
    seed: int = 0,
) -> RawData:
    """Generate a classification dataset with a known set of wrong labels.

    Rows come from :func:`sklearn.datasets.make_classification` (without its own label noise);
    then ``round(noise * n_rows)`` rows, drawn with ``seed``, get another class on purpose.
    Their ids are in ``noisy_ids`` and their true labels in ``clean_labels``, so valuation
    methods can later be scored on finding them.

    Parameters
    ----------
    n_rows : int
        Number of rows.
    n_features : int
        Number of features (half informative, a fifth redundant, the rest noise).
    n_classes : int
        Number of classes.
    noise : float
        Fraction of rows whose label is flipped, in ``[0, 1)``.
    seed : int
        Seed of the generator and of the flips.

    Returns
    -------
    RawData

    Examples
    --------
    >>> raw = make_synthetic(200, noise=0.05, seed=1)
    >>> len(raw.noisy_ids)
    10
    """
    if not 0.0 <= noise < 1.0:
        raise DataworthError(f"noise={noise} is out of range; give a fraction in [0, 1).")
    n_informative = max(2, n_features // 2)
    X, y = skdatasets.make_classification(
        n_samples=n_rows,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=min(n_features - n_informative, n_features // 5),
        n_classes=n_classes,
        flip_y=0.0,
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    noisy = np.sort(rng.choice(n_rows, size=round(noise * n_rows), replace=False))
    noisy_y = y.copy()
    # Adding 1..C-1 modulo C always lands on a different class, uniformly among the others.
    noisy_y[noisy] = (y[noisy] + rng.integers(1, n_classes, size=noisy.size)) % n_classes
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    frame["target"] = noisy_y
    source = {
        "kind": "builtin",
        "name": "synthetic",
        "generator": {
            "n_rows": n_rows,
            "n_features": n_features,
            "n_classes": n_classes,
            "noise": noise,
            "seed": seed,
        },
    }
    return RawData(
        frame=frame,
        target="target",
        source=source,
        noisy_ids=noisy.astype(np.int64),
        clean_labels=pd.Series(y, index=frame.index, name="target"),
    )


@register_dataset("synthetic", "make_classification, 1000 rows, 2 classes, 10% labels flipped")
def _synthetic() -> RawData:
    return make_synthetic()


# --- the user's own data -----------------------------------------------------------------------


def _check_file(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataworthError(f"File {str(path)!r} does not exist; check the path.")
    if not path.is_file():
        raise DataworthError(f"{str(path)!r} is not a file; give the path of a data file.")
    return path


def read_csv(path, target: str | None) -> RawData:
    """Read a CSV file with a header row; ids are the 0-based data row numbers.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    target : str
        Name of the label column.

    Returns
    -------
    RawData
    """
    path = _check_file(path)
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataworthError(
            f"CSV file {str(path)!r} is empty; give a file with a header row and data rows."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataworthError(
            f"Cannot read CSV file {str(path)!r} ({_reason(exc)}); save it as comma-separated "
            "UTF-8 text."
        ) from None
    frame.index = pd.RangeIndex(len(frame))
    source = {"kind": "csv", "path": str(path), "name": path.stem}
    raw = raw_from_frame(frame, target, source=source, what=f"CSV file {str(path)!r}")
    return replace(raw, renamed=_repeated_header_names(path, list(raw.frame.columns)))


def _repeated_header_names(path: Path, columns: list[str]) -> dict[str, str]:
    """Columns pandas renamed because the header repeats a name: ``{"a.1": "a"}``.

    pandas silently reads a second ``a`` as ``a.1``; only the header itself tells the two
    apart from a column really named ``a.1``.
    """
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    names = [str(v) for v in header.iloc[0].tolist()] if len(header) else []
    if len(names) != len(columns):
        return {}
    repeated = {n for n in names if n and names.count(n) > 1}
    return {c: n for c, n in zip(columns, names, strict=True) if n in repeated and c != n}


def read_images(path, image_size: int = 28) -> RawData:
    """Read a folder of images, one subfolder per class; ids are the files' relative paths.

    See :func:`dataworth.data.images.read_image_folder`; the label column is ``label`` and
    ``source["image_shape"]`` is ``[channels, side, side]``.
    """
    from dataworth.data.images import read_image_folder

    found = read_image_folder(path, image_size)
    source = {
        "kind": "images",
        "path": str(path),
        "name": Path(path).resolve().name or "images",
        "image_shape": list(found.shape),
    }
    return RawData(frame=found.frame, target="label", source=source, findings=found.findings)


def read_parquet(path, target: str | None) -> RawData:
    """Read a Parquet file; ids are its stored pandas index (the row number by default).

    Parameters
    ----------
    path : str or Path
        The Parquet file.
    target : str
        Name of the label column.

    Returns
    -------
    RawData
    """
    path = _check_file(path)
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise DataworthError(
            f"Cannot read Parquet file {str(path)!r} ({_reason(exc)}); check it is a valid "
            "Parquet file."
        ) from None
    source = {"kind": "parquet", "path": str(path), "name": path.stem}
    return raw_from_frame(frame, target, source=source, what=f"Parquet file {str(path)!r}")


def raw_from_frame(
    frame: pd.DataFrame, target: str | None, *, source: dict | None = None, what: str = "frame"
) -> RawData:
    """Check a user DataFrame and wrap it; ids are its index labels.

    Parameters
    ----------
    frame : pandas.DataFrame
        Features and the target column.
    target : str
        Name of the label column.
    source : dict, optional
        Description of the source; defaults to ``{"kind": "frame"}``.
    what : str
        How to name the source in error messages.

    Returns
    -------
    RawData
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataworthError(
            f"frame= must be a pandas DataFrame, not {type(frame).__name__}; "
            "wrap arrays with pandas.DataFrame first."
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataworthError(f"The {what} has no data rows; give at least a few labelled rows.")
    columns = [str(c) for c in frame.columns]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise DataworthError(
            f"Column name(s) {', '.join(map(repr, duplicated))} appear more than once in the "
            f"{what}; rename them so each is unique."
        )
    if frame.index.has_duplicates:
        label = frame.index[frame.index.duplicated()].tolist()[0]
        raise DataworthError(
            f"The {what} has the index label {label!r} more than once; ids must be unique, "
            "call reset_index(drop=True) or set a unique index."
        )
    frame = frame.copy()
    # Column names are strings from here on, as scikit-learn's feature names require.
    frame.columns = columns
    target = check_target(frame, target, what=what)
    return RawData(frame=frame, target=target, source=source or {"kind": "frame", "name": "frame"})


def check_target(frame: pd.DataFrame, target: str | None, *, what: str = "data") -> str:
    """Check that ``target`` names a column of ``frame``, suggesting close names if not."""
    if target is None:
        raise DataworthError(
            f"No target column given for the {what}; pass target=NAME (the label column)."
        )
    target = str(target)
    if target in frame.columns:
        return target
    close = difflib.get_close_matches(target, list(frame.columns), n=3, cutoff=0.6)
    if not close:
        # Case slips ("Label" for "label") are the most common mistake; difflib misses short ones.
        close = [c for c in frame.columns if c.lower() == target.lower()]
    if close:
        hint = f"did you mean {', '.join(map(repr, close))}?"
    else:
        shown = ", ".join(map(repr, frame.columns[:8]))
        hint = f"pass target= one of: {shown}" + (", ..." if frame.shape[1] > 8 else "")
    raise DataworthError(f"Target column {target!r} is not in the {what}; {hint}")


def _reason(exc: Exception) -> str:
    """The first line of an exception's message, shortened to keep errors on one short line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."
