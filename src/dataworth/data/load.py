"""``load_dataset``: a source, checks, subsampling, split, preprocessing and label flips -> Task."""

from __future__ import annotations

import difflib
import numbers
import warnings

import numpy as np
import pandas as pd

from dataworth.data.checks import DataCheckWarning, Finding, emit, label_findings, run_checks
from dataworth.data.describe import describe_dataset
from dataworth.data.preprocess import (
    column_kinds,
    encode_labels,
    fit_transform,
    label_name,
    validate_features,
)
from dataworth.data.sources import (
    RawData,
    check_target,
    get_dataset,
    raw_from_frame,
    read_csv,
    read_images,
    read_parquet,
)
from dataworth.data.split import (
    SplitSpec,
    group_split,
    parse_split,
    random_split,
    resolve_train_size,
    stratified_subsample,
    time_split,
)
from dataworth.data.task import Task
from dataworth.errors import DataworthError

__all__ = ["check_data", "load_dataset"]


def load_dataset(
    name: str | None = "breast_cancer",
    *,
    csv=None,
    parquet=None,
    frame=None,
    images=None,
    image_size: int = 28,
    target: str | None = None,
    rows: int | None = None,
    train_size: float | int = 0.7,
    split: str = "random",
    seed: int = 0,
    flip: float = 0.0,
    drop: str | list[str] | None = None,
    strict: bool = False,
) -> Task:
    """Load a dataset, split it and preprocess it into a :class:`Task`.

    Preprocessing (median imputation and standardisation of numeric columns, most-frequent
    imputation and one-hot encoding of categorical ones) is fitted on the training rows only.

    Parameters
    ----------
    name : str or None
        A built-in dataset (see :func:`list_datasets`); ignored when ``csv``, ``parquet`` or
        ``frame`` is given.
    csv, parquet : str or Path, optional
        A file of the user's rows with a header; ids are the 0-based data row numbers (the
        stored index for Parquet).
    frame : pandas.DataFrame, optional
        The user's rows; ids are the index labels.
    images : str or Path, optional
        A folder with one subfolder of images per class (read with Pillow, see
        :func:`dataworth.data.images.read_image_folder`); ids are the files' relative paths.
    image_size : int, default 28
        Side of the square the images are resized to.
    target : str, optional
        The label column; required for ``csv``, ``parquet`` and ``frame``.
    rows : int, optional
        Keep this many rows, drawn at random per class (stratified), before splitting.
    train_size : float or int
        Training rows: a fraction in (0, 1) or a count above 1.
    split : str
        ``"random"`` (stratified), ``"time:COL"`` (earliest rows train) or ``"group:COL"``
        (whole groups on one side). ``COL`` is not used as a feature.
    seed : int
        Seed of every random choice (subsample, split, flips).
    flip : float
        Fraction of training labels changed to another class on purpose, to test whether a
        valuation method finds them; their ids are in ``metadata["flipped_ids"]``.
    drop : str or list of str, optional
        Columns removed before anything else (a list, or names separated by commas), such as
        an identifier or a column that restates the label.
    strict : bool
        Raise a :class:`DataworthError` when a data check finds a problem, instead of a
        :class:`~dataworth.data.checks.DataCheckWarning` per problem.

    Returns
    -------
    Task
        With ``metadata``: ``description`` (:class:`DatasetDescription`), ``source`` (a
        JSON-serialisable dict), ``flipped_ids`` (ids of training rows whose label is wrong on
        purpose: the synthetic dataset's noise and ``flip``), ``clean_y_train`` (encoded
        training labels before any flip, the generator's own for ``synthetic``),
        ``noisy_source_ids`` (every id with a wrong label, train or
        test), ``preprocessor`` (the fitted ``ColumnTransformer``), ``raw_train`` and
        ``raw_test`` (the unprocessed rows, all columns, indexed by id), ``checks`` (the
        :class:`~dataworth.data.checks.Finding` list of the data checks) and ``dropped`` (the
        columns removed by ``drop``).

    Raises
    ------
    DataworthError
        For any bad input, with a one-line message saying how to fix it.

    Examples
    --------
    >>> task = load_dataset("breast_cancer", train_size=400, seed=0)
    >>> task.n_train, task.n_test, task.class_names
    (400, 169, ('malignant', 'benign'))
    """
    seed = _check_seed(seed)
    flip = _check_flip(flip)
    spec = parse_split(split)
    raw = _read_source(
        name, csv=csv, parquet=parquet, frame=frame, images=images, image_size=image_size,
        target=target,
    )  # fmt: skip
    dropped = parse_drop(drop)
    data, target = drop_columns(raw.frame, dropped, raw.target, spec), raw.target
    _check_split_column(data, spec, target)
    codes, class_names = _labels(data[target], target)
    label_checks = label_findings(data[target], target)
    subsample_rng, split_rng, flip_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )

    n_source = len(data)
    if rows is not None and not (isinstance(rows, numbers.Integral) and rows >= n_source):
        keep = stratified_subsample(codes, rows, subsample_rng)
        data, codes = data.iloc[keep], codes[keep]

    excluded = [target] + ([spec.column] if spec.column else [])
    features = data.drop(columns=excluded)
    kinds = column_kinds(features)
    validate_features(features, kinds)

    n_train = resolve_train_size(train_size, len(data))
    try:
        train, test, split_facts = _split(data, codes, class_names, spec, n_train, split_rng)
    except DataworthError:
        # A continuous target fails the split for its one-row "classes"; say the real cause.
        if label_checks:
            raise DataworthError(label_checks[0].message) from None
        raise
    findings = (
        raw.findings
        + label_checks
        + run_checks(
            data,
            target,
            train=train,
            test=test,
            codes=codes,
            class_names=class_names,
            exclude=excluded[1:],
            renamed={k: v for k, v in raw.renamed.items() if k in data.columns},
            seed=seed,
            pixels=raw.source.get("kind") == "images",
        )
    )
    emit(findings, strict=strict)
    X_train, X_test, feature_names, preprocessor = fit_transform(
        features.iloc[train], features.iloc[test], kinds
    )

    ids = data.index.to_numpy()
    train_ids, test_ids = ids[train], ids[test]
    y_train = codes[train].copy()
    noisy_in_train = np.isin(train_ids, raw.noisy_ids)
    flipped = _flip_labels(y_train, flip, len(class_names), flip_rng, ~noisy_in_train)
    flipped_ids = np.sort(train_ids[flipped | noisy_in_train])

    split_facts.update(
        seed=seed,
        train_size=train_size,
        rows=rows,
        flip=flip,
        n_flipped=int(flipped.sum()),
        n_source_noisy=int(np.isin(ids, raw.noisy_ids).sum()),
        n_train_noisy=int(noisy_in_train.sum()),
    )
    description = describe_dataset(
        features,
        kinds,
        codes,
        class_names,
        train,
        test,
        name=raw.source.get("name", "data"),
        target=target,
        n_source_rows=n_source,
        n_encoded_features=len(feature_names),
        split=split_facts,
    )
    metadata = {
        "description": description,
        "source": {**raw.source, "target": target, "n_rows": n_source},
        "flipped_ids": flipped_ids,
        "clean_y_train": _clean_codes(raw, data.index, class_names, codes)[train],
        "noisy_source_ids": np.sort(ids[np.isin(ids, raw.noisy_ids)]),
        "preprocessor": preprocessor,
        "raw_train": data.iloc[train],
        "raw_test": data.iloc[test],
        "checks": findings,
        "dropped": dropped,
    }
    if raw.source.get("image_shape") and not dropped:
        # (channels, height, width) of the rows' pixels, for the CNN's readers and the report.
        metadata["image_shape"] = tuple(raw.source["image_shape"])
    return Task(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=codes[test],
        feature_names=feature_names,
        class_names=class_names,
        train_ids=train_ids,
        test_ids=test_ids,
        name=raw.source.get("name", "data"),
        metadata=metadata,
    )


def check_data(name: str | None = "breast_cancer", **options) -> list[Finding]:
    """Run the data checks of :func:`load_dataset` and return what they found, without warning.

    Parameters
    ----------
    name : str or None
        A built-in dataset, as for :func:`load_dataset`.
    **options
        Any other argument of :func:`load_dataset` (``csv``, ``frame``, ``target``, ``drop``,
        ``split``, ``seed``...); the checks depend on the split, so pass the same ones.

    Returns
    -------
    list of Finding
        Warnings first, then notes; empty when nothing was found.

    Examples
    --------
    >>> [f.check for f in check_data("digits")]
    ['constant_column']
    """
    options.pop("strict", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataCheckWarning)
        task = load_dataset(name, **options)
    return list(task.metadata["checks"])


def parse_drop(drop: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Column names to drop, from a list or from names separated by commas."""
    if drop is None:
        return []
    items = drop.split(",") if isinstance(drop, str) else list(drop)
    if not all(isinstance(item, str) for item in items):
        raise DataworthError(f"drop={drop!r} must be column names; e.g. drop=['id', 'name'].")
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


def drop_columns(
    frame: pd.DataFrame, dropped: list[str], target: str, spec: SplitSpec
) -> pd.DataFrame:
    """``frame`` without the ``dropped`` columns, with a clear error for a name it lacks."""
    if not dropped:
        return frame
    for name in dropped:
        if name not in frame.columns:
            close = difflib.get_close_matches(name, list(frame.columns), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "name an existing column."
            raise DataworthError(
                f"--drop names the column {name!r}, which is not in the data; {hint}"
            )
        if name == target:
            raise DataworthError(
                f"--drop names the target column {name!r}; keep it, or pick another --target."
            )
        if name == spec.column:
            raise DataworthError(
                f"--drop names the {spec.kind} split column {name!r}; it is never used as a "
                "feature, so keep it or change --split."
            )
    return frame.drop(columns=dropped)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DataworthError(f"seed={seed!r} is not a non-negative whole number; give one.")
    return int(seed)


def _check_flip(flip) -> float:
    if isinstance(flip, bool) or not isinstance(flip, numbers.Real) or not 0.0 <= flip <= 1.0:
        raise DataworthError(
            f"flip={flip!r} is out of range; give the fraction of training labels to flip, "
            "between 0 and 1."
        )
    return float(flip)


def _read_source(name, *, csv, parquet, frame, target, images=None, image_size=28) -> RawData:
    sources = (("csv", csv), ("parquet", parquet), ("frame", frame), ("images", images))
    given = [k for k, v in sources if v is not None]
    if len(given) > 1:
        raise DataworthError(
            f"Give exactly one data source, not {' and '.join(given)}; pass only one of "
            "csv=, parquet=, frame= or images=."
        )
    if images is not None:
        if target is not None:
            raise DataworthError(
                "--target is for --csv and --parquet; an image folder's labels are the names of "
                "its subfolders."
            )
        return read_images(images, image_size)
    if csv is not None:
        return read_csv(csv, target)
    if parquet is not None:
        return read_parquet(parquet, target)
    if frame is not None:
        return raw_from_frame(frame, target, what="DataFrame")
    if name is None:
        raise DataworthError(
            "No data given; pass a built-in dataset name (see list_datasets()) or "
            "csv=, parquet= or frame= with target=."
        )
    raw = get_dataset(name).loader()
    if target is not None:
        # The built-in's label column is implied; a different name is a mistake worth flagging.
        check_target(raw.frame, target, what=f"built-in dataset {name!r}")
    return raw


def _check_split_column(data: pd.DataFrame, spec: SplitSpec, target: str) -> None:
    if spec.column is None:
        return
    if spec.column == target:
        raise DataworthError(
            f"split='{spec}' uses the target column; split on another column (a date or a "
            "group id)."
        )
    if spec.column not in data.columns:
        close = difflib.get_close_matches(spec.column, list(data.columns), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "name an existing column."
        raise DataworthError(f"The {spec.kind} column {spec.column!r} is not in the data; {hint}")


def _labels(labels: pd.Series, target: str) -> tuple[np.ndarray, tuple[str, ...]]:
    n_missing = int(labels.isna().sum())
    if n_missing:
        raise DataworthError(
            f"Target column {target!r} has {n_missing} missing label(s); drop those rows or "
            "fill them in."
        )
    codes, class_names = encode_labels(labels)
    if len(class_names) < 2:
        only = class_names[0] if class_names else "none"
        raise DataworthError(
            f"Target column {target!r} has a single class ({only!r}); a classifier needs at "
            "least 2, check the target column."
        )
    return codes, class_names


def _split(
    data: pd.DataFrame,
    codes: np.ndarray,
    class_names: tuple[str, ...],
    spec: SplitSpec,
    n_train: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Positions of the two sides, and facts about the split for the description."""
    facts: dict = {"kind": spec.kind, "column": spec.column}
    if spec.kind == "random":
        train, test = random_split(codes, n_train, rng, class_names)
        facts["stratified"] = True
    elif spec.kind == "time":
        times = data[spec.column]
        train, test = time_split(times, n_train, spec.column)
        facts.update(
            stratified=False,
            train_until=str(times.iloc[train[-1]]),
            test_from=str(times.iloc[test[0]]),
        )
    else:
        groups = data[spec.column]
        train, test = group_split(groups, n_train, rng, spec.column)
        facts.update(
            stratified=False,
            n_train_groups=int(groups.iloc[train].nunique()),
            n_test_groups=int(groups.iloc[test].nunique()),
        )
    absent = np.setdiff1d(np.arange(len(class_names)), codes[train])
    if absent.size:
        raise DataworthError(
            f"The {spec.kind} split puts no row of class {class_names[absent[0]]!r} in training; "
            "change train_size or the split column, or use split='random'."
        )
    facts.update(n_train=len(train), n_test=len(test))
    return train, test, facts


def _clean_codes(
    raw: RawData, index: pd.Index, class_names: tuple[str, ...], codes: np.ndarray
) -> np.ndarray:
    """Encoded labels before the source's on-purpose noise (``codes`` when it has none)."""
    if raw.clean_labels is None:
        return codes
    clean = raw.clean_labels.loc[index].map(label_name)
    clean_codes = pd.Categorical(clean, categories=list(class_names)).codes.astype(np.int64)
    if (clean_codes < 0).any():
        raise DataworthError(
            "The source's clean labels include a class its labels lack; fix the dataset loader."
        )
    return clean_codes


def _flip_labels(
    y: np.ndarray,
    fraction: float,
    n_classes: int,
    rng: np.random.Generator,
    eligible: np.ndarray,
) -> np.ndarray:
    """Change ``round(fraction * len(y))`` labels in place to another class; return the mask.

    Only ``eligible`` rows are flipped, so a row already wrong on purpose is not flipped back.
    """
    n_flip = round(fraction * len(y))
    mask = np.zeros(len(y), dtype=bool)
    if n_flip == 0:
        return mask
    candidates = np.flatnonzero(eligible)
    if n_flip > candidates.size:
        raise DataworthError(
            f"flip={fraction} asks for {n_flip} flipped labels but only {candidates.size} "
            "training labels are not already flipped; use a smaller flip."
        )
    chosen = rng.choice(candidates, size=n_flip, replace=False)
    # Adding 1..C-1 modulo C always moves to a different class, uniformly among the others.
    y[chosen] = (y[chosen] + rng.integers(1, n_classes, size=n_flip)) % n_classes
    mask[chosen] = True
    return mask
