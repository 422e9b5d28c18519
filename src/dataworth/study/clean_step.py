"""The ``clean`` step: flag the rows that hurt, act only on a verified gain, write the files.

``dataworth clean`` runs it on every input row (the training and test rows of the split
together: the step's cross-fitting makes its own splits, so the user's test rows are cleaned like
the rest); the study runs it last on the training rows it valued. It writes, in the run folder:

- ``flags.csv``: one line per row, in input order: ``row`` (the 0-based position among the
  input file's data rows), the id column when the source has one, ``label``,
  ``suggested_label``, ``score`` (higher is more suspect), ``flagged`` and ``reasons``;
- ``cleaned.csv`` (the command only): the input rows kept, every column, in input order (with
  ``relabel``, the flagged rows carry their suggested label);
- ``clean.json``: the decision, the held-out metric before and after with intervals, the random
  rows' baseline, the rows acted on, the methods, seeds and timings;
- ``clean_curves.csv`` and the ``clean_curves`` figure: the held-out removal curves.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dataworth.clean import CleanResult, clean
from dataworth.errors import DataworthError

if TYPE_CHECKING:
    from dataworth.study.context import StudyContext

#: Seconds kept back from the budget for writing the files and the report: at least 5, and 5%
#: of the budget (writing 50,000 rows' flags and cleaned rows and the report took 30 s on
#: loaded cores).
_WRITE_RESERVE = 5.0
_WRITE_SHARE = 0.05
#: The share of a study's budget kept for this step (the valuation methods share the rest).
CLEAN_SHARE = 0.15
#: The options ``config.extra["clean"]`` may hold, with their defaults.
DEFAULTS: dict[str, Any] = {
    "action": "remove",
    "max_fraction": 0.3,
    "repeats": 10,
    "rows": "train",
}


def clean_options(ctx: StudyContext) -> dict[str, Any]:
    """The step's options: ``config.extra["clean"]`` over :data:`DEFAULTS`."""
    options = DEFAULTS | dict(ctx.config.extra.get("clean", {}))
    if options["rows"] not in ("train", "all"):
        raise DataworthError(f"Unknown clean rows {options['rows']!r}; use train or all.")
    return options


def _rows(ctx: StudyContext, which: str):
    """Features, encoded labels and ids of the rows to clean, in input order for ``all``."""
    task = ctx.require_task()
    if which == "train":
        return task.X_train, task.y_train, task.train_ids
    X = np.vstack([task.X_train, task.X_test])
    y = np.concatenate([task.y_train, task.y_test])
    ids = np.concatenate([task.train_ids, task.test_ids])
    order = np.argsort(_positions(ctx, ids), kind="stable")
    return X[order], y[order], ids[order]


def _source_frame(ctx: StudyContext) -> pd.DataFrame:
    """The input rows with every column, indexed by id (the file itself when there is one)."""
    config, task = ctx.config, ctx.require_task()
    if config.csv is not None:
        frame = pd.read_csv(config.csv)
        frame.index = pd.RangeIndex(len(frame))
        return frame
    if config.parquet is not None:
        return pd.read_parquet(config.parquet)
    raw = [task.metadata.get("raw_train"), task.metadata.get("raw_test")]
    if any(r is None for r in raw):
        raise DataworthError("The task keeps no raw rows; clean a dataset loaded from a source.")
    return pd.concat(raw).sort_index()


def _positions(ctx: StudyContext, ids: np.ndarray) -> np.ndarray:
    """Each id's 0-based position among the source's data rows."""
    config = ctx.config
    if config.parquet is not None:
        index = pd.read_parquet(config.parquet, columns=[]).index
        return index.get_indexer(ids)
    return np.asarray(ids, dtype=np.int64)  # CSV and built-in rows: the id is the row number


def _id_column(ctx: StudyContext, source: pd.DataFrame) -> str | None:
    """The source's identifier column: a dropped or identifier-looking column with unique values."""
    task = ctx.require_task()
    named = list(task.metadata.get("dropped") or [])
    named += [
        c for f in task.metadata.get("checks", []) if f.check == "identifier" for c in f.columns
    ]
    for column in named:
        if column in source.columns and source[column].is_unique:
            return column
    return None


def flags_frame(ctx: StudyContext, result: CleanResult, ids: np.ndarray) -> pd.DataFrame:
    """``flags.csv``: one line per row (see the module's docstring)."""
    frame = result.to_frame().drop(columns="id")
    frame.insert(0, "row", _positions(ctx, ids))
    source = _source_frame(ctx) if ctx.run is not None else None
    column = _id_column(ctx, source) if source is not None else None
    if column is not None:
        frame.insert(1, column, source[column].loc[ids].to_numpy())
    elif ctx.config.parquet is not None and not isinstance(
        pd.read_parquet(ctx.config.parquet, columns=[]).index, pd.RangeIndex
    ):
        frame.insert(1, "id", ids)
    return frame


def cleaned_frame(ctx: StudyContext, result: CleanResult, ids: np.ndarray) -> pd.DataFrame:
    """The input rows kept, every column, in input order (relabelled rows carry the new label)."""
    source = _source_frame(ctx)
    target = ctx.require_task().metadata["source"]["target"]
    frame = source.loc[ids].copy()
    if result.action == "relabel":
        column = frame[target].astype(object).to_numpy(copy=True)
        wanted = {str(v): v for v in source[target].unique()}
        flagged = result.flagged
        column[flagged] = [wanted.get(s, s) for s in result.suggested[flagged]]
        frame[target] = column
        return frame
    return frame.loc[~result.flagged]


def _budget_left(ctx: StudyContext) -> float:
    total = ctx.config.budget_seconds
    reserve = max(_WRITE_RESERVE, _WRITE_SHARE * total)
    return total - (perf_counter() - ctx.started) - reserve


def clean_step(ctx: StudyContext) -> None:
    """Run :func:`dataworth.clean` on the rows and write its files (see the module)."""
    options = clean_options(ctx)
    X, y, ids = _rows(ctx, options["rows"])
    budget = _budget_left(ctx)
    if budget <= 0 and options["rows"] == "all":  # the command: nothing else would be done
        spent = perf_counter() - ctx.started
        raise DataworthError(
            f"The budget of {ctx.config.budget_seconds:g} s is too small for cleaning: loading "
            f"and checking the data took {spent:.1f} s; raise --budget (e.g. --budget 10m)."
        )
    if budget <= 0:
        ctx.log("clean: skipped, no time left in the budget")
        ctx.results["clean"] = None
        return
    result = clean(
        X,
        np.asarray(ctx.require_task().class_names)[y],
        model=ctx.config.model,
        metric=ctx.config.metric or "accuracy",
        action=options["action"],
        max_fraction=float(options["max_fraction"]),
        repeats=int(options["repeats"]),
        neighbours=int(ctx.config.knn_k),
        budget=budget,
        seed=ctx.config.seed,
        progress=ctx.progress,
        log=ctx.log,
    )
    result.ids = ids
    ctx.results["clean"] = result
    if ctx.run is None:
        return
    ctx.write_csv("flags.csv", flags_frame(ctx, result, ids), index=False)
    if options["rows"] == "all":
        ctx.write_csv("cleaned.csv", cleaned_frame(ctx, result, ids), index=False)
    info = result.to_dict()
    info["rows"] = options["rows"]
    info["flagged_rows"] = _positions(ctx, ids[result.flagged]).tolist()
    ctx.write_json("clean.json", info)
    ctx.write_csv("clean_curves.csv", result.curves_frame(), index=False)

    from dataworth.report.sections.clean import clean_figures

    ctx.save_figures(lambda folder: clean_figures(result.curves_frame(), result.metric, folder))


__all__ = ["CLEAN_SHARE", "DEFAULTS", "clean_options", "clean_step", "cleaned_frame", "flags_frame"]
