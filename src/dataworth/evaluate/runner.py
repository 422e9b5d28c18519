"""Run every valuation method on one task through one evaluation, and rank them in one table."""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataworth.data.task import Task
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.evaluate.agreement import agreement_table, exact_agreement, tiny_task
from dataworth.evaluate.curves import DEFAULT_FRACTIONS, RemovalCurves, removal_curves
from dataworth.evaluate.measures import detection_scores
from dataworth.methods.registry import REGISTRY
from dataworth.methods.result import ValuationResult, jsonable

__all__ = ["METHODS", "QualityReport", "Settings", "evaluate_methods", "resolve_methods"]

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Settings:
    """The budget every method of one evaluation gets.

    Attributes
    ----------
    permutations : int
        TMC-Shapley permutations (the course setting: 10).
    tol : float
        TMC truncation tolerance, relative to ``|U(D)|``.
    n_subsets : int
        Random subsets (one fit each) of Banzhaf, AME, AME-Shapley and Beta Shapley.
    n_estimators : int
        Data-OOB bootstrap models.
    knn_k : int
        KNN-Shapley neighbours.
    seed : int
        The one seed of every method.
    """

    permutations: int = 10
    tol: float = 0.01
    n_subsets: int = 2000
    n_estimators: int = 200
    knn_k: int = 10
    seed: int = 0


@dataclass(frozen=True)
class _Method:
    label: str
    run: Callable[[Any, Task, Settings], ValuationResult]
    note: str = ""


#: The methods of the product, by the name used in ``methods=`` and ``--methods``: every entry
#: of the method registry (:mod:`dataworth.methods.registry`) that values points.
METHODS: dict[str, _Method] = {
    spec.name: _Method(spec.label, spec.evaluate, spec.note)
    for spec in REGISTRY
    if spec.evaluate is not None
}


def resolve_methods(methods: str | Sequence[str] | None) -> list[str]:
    """Method names from a list or a comma-separated string; ``None`` or ``"all"``: every one.

    Raises
    ------
    DataworthError
        For an unknown name (with the closest known one), or an empty list.
    """
    if methods is None or methods == "all":
        return list(METHODS)
    if isinstance(methods, str):
        methods = methods.split(",")
    names = [m.strip().lower().replace("-", "_") for m in methods if m.strip()]
    if not names:
        raise DataworthError(f"No method given; pick from {', '.join(METHODS)}.")
    for name in names:
        if name not in METHODS:
            close = difflib.get_close_matches(name, list(METHODS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"pick from {', '.join(METHODS)}."
            raise DataworthError(f"Unknown method {name!r}; {hint}")
    return list(dict.fromkeys(names))  # keep the order given, drop repeats


@dataclass
class QualityReport:
    """What :func:`evaluate_methods` returns.

    Attributes
    ----------
    table : DataFrame
        One row per method, best flipped-label ROC AUC first: ``rank``, ``seconds`` (wall time
        of the method), ``fits`` (models fitted, ``result.n_fitted``), ``roc_auc``,
        ``average_precision``, ``f1_two_means``, ``recall_at_10``, ``area_high_first``,
        ``area_low_first`` (removal-curve areas; positive = better than random removal),
        ``spearman_exact`` (rank correlation with exact Shapley on a tiny task) and ``note``.
    results : dict of str to ValuationResult
    curves : dict of str to RemovalCurves
    agreement : DataFrame
        Spearman correlation between every pair of methods.
    exact : DataFrame or None
        Agreement with exact Shapley on the tiny task.
    info : dict
        The task, flips, learner, metric, settings and chance levels.
    """

    table: pd.DataFrame
    results: dict[str, ValuationResult]
    curves: dict[str, RemovalCurves]
    agreement: pd.DataFrame
    exact: pd.DataFrame | None
    info: dict = field(default_factory=dict)

    def curves_frame(self) -> pd.DataFrame:
        """Every method's removal curves in one long table."""
        frames = [c.to_frame() for c in self.curves.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def save_figures(self, folder: str | Path) -> dict[str, list[Path]]:
        """Removal curves (grid and one per method) and the AUC/AP bar charts as PNG and SVG."""
        from dataworth.evaluate.figures import save_evaluation_figures

        return save_evaluation_figures(
            list(self.curves.values()), self.table, folder, self.info.get("flip_rate", 0.0)
        )

    def save(self, folder: str | Path) -> list[Path]:
        """Write the table (CSV and Parquet), curves, agreement, values, info and figures.

        Returns
        -------
        list of Path
            Every file written.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        self.table.to_csv(folder / "evaluation.csv")
        self.table.to_parquet(folder / "evaluation.parquet")
        self.curves_frame().to_csv(folder / "removal_curves.csv", index=False)
        self.agreement.to_csv(folder / "agreement.csv")
        written += [folder / n for n in ("evaluation.csv", "evaluation.parquet")]
        written += [folder / "removal_curves.csv", folder / "agreement.csv"]
        if self.exact is not None:
            self.exact.to_csv(folder / "exact_agreement.csv")
            written.append(folder / "exact_agreement.csv")
        for name, result in self.results.items():
            stem = result.save(folder / "values" / name)
            written += [stem.with_suffix(s) for s in (".parquet", ".csv", ".json")]
        (folder / "evaluation.json").write_text(json.dumps(jsonable(self.info), indent=2) + "\n")
        written.append(folder / "evaluation.json")
        for paths in self.save_figures(folder / "figures").values():
            written += paths
        return written


def _report(progress: ProgressFn | None, description: str, done: int, total: int) -> None:
    if progress is not None:
        progress(description, done, total)


def evaluate_methods(
    task: Task,
    methods: str | Sequence[str] | None = None,
    *,
    learner: Any = "logreg",
    metric: str = "neg_log_loss",
    seed: int = 0,
    permutations: int = 10,
    tol: float = 0.01,
    n_subsets: int = 2000,
    n_estimators: int = 200,
    knn_k: int = 10,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    n_random: int = 5,
    exact_players: int | None = 12,
    flipped_ids=None,
    progress: ProgressFn | None = None,
    device: str | None = None,
) -> QualityReport:
    """Run valuation methods on one task and rank them by how well they find flipped labels.

    Every method values every training row with the same learner, metric, seed and budget,
    each on its own fresh :class:`~dataworth.Utility` (so ``fits`` counts that method's models
    only, none borrowed from another method's cache). Then each valuation goes through the same
    measures: flipped-label detection (:func:`~dataworth.evaluate.detection_scores`),
    point-removal curves refitted through the engine (:func:`~dataworth.evaluate.removal_curves`,
    one store shared by all methods so the random baseline is fitted once), rank agreement
    between methods, and agreement with exact Shapley values on a subsample of
    ``exact_players`` rows.

    Parameters
    ----------
    task : Task
        With flipped rows: ``task.metadata["flipped_ids"]`` (``load_dataset(..., flip=0.1)``,
        or the ``synthetic`` dataset's planted noise), or ``flipped_ids``.
    methods : str or sequence of str, optional
        Names from :data:`METHODS` (a list or ``"loo,knn_shapley"``); default all.
    learner : str or scikit-learn classifier, default="logreg"
    metric : str, default="neg_log_loss"
        The utility's metric, and the metric of the removal curves.
    seed : int, default=0
    permutations : int, default=10
        TMC-Shapley permutations.
    tol : float, default=0.01
        TMC truncation tolerance.
    n_subsets : int, default=2000
        Subsets of Banzhaf, AME, AME-Shapley and Beta Shapley.
    n_estimators : int, default=200
        Data-OOB bootstrap models.
    knn_k : int, default=10
        KNN-Shapley neighbours.
    fractions : sequence of float, default=(0, 0.05, ..., 0.5)
        Shares removed in the removal curves.
    n_random : int, default=5
        Random orders averaged into the removal baseline.
    exact_players : int or None, default=12
        Rows of the tiny task for the agreement with exact Shapley (at most 14); ``None`` skips
        it.
    flipped_ids : array-like, optional
        Ids of the rows to detect; default ``task.metadata["flipped_ids"]``.
    progress : callable, optional
        ``progress(description, done, total)`` as methods finish.
    device : {"auto", "cpu", "cuda"}, optional
        Where a network learner (``"mlp"``, ``"cnn"``) trains.

    Returns
    -------
    QualityReport

    Raises
    ------
    DataworthError
        For an unknown method, or a task without flipped rows (nothing to detect). A method
        that cannot run on this task (influence with another learner) gets a row with its
        reason in ``note`` instead of stopping the others.

    Examples
    --------
    >>> import dataworth as dw
    >>> from dataworth.evaluate import evaluate_methods
    >>> task = dw.load_dataset("breast_cancer", rows=200, flip=0.1, seed=0)
    >>> report = evaluate_methods(task, "loo,knn_shapley", exact_players=None)
    >>> list(report.table.columns[:3])
    ['rank', 'seconds', 'fits']
    """
    names = resolve_methods(methods)
    if flipped_ids is None:
        flipped_ids = task.metadata.get("flipped_ids", np.array([]))
    flipped_ids = np.asarray(flipped_ids)
    n_flipped = int(np.isin(task.train_ids.astype(str), flipped_ids.astype(str)).sum())
    if n_flipped == 0:
        raise DataworthError(
            "The task has no flipped training rows, so there is nothing to detect; use "
            "--flip above 0 (e.g. 0.1) or the synthetic dataset (planted noise)."
        )
    if n_flipped == task.n_train:
        raise DataworthError("Every training row is flipped; use a smaller --flip.")
    if exact_players is not None and exact_players > task.n_train:
        exact_players = None  # the task itself is tiny: its own values are compared below
    settings = Settings(permutations, tol, n_subsets, n_estimators, knn_k, seed)

    def make_utility(t: Task) -> Utility:
        return Utility(t, learner=learner, metric=metric, seed=seed, device=device)

    results: dict[str, ValuationResult] = {}
    rows: dict[str, dict[str, Any]] = {}
    curves: dict[str, RemovalCurves] = {}
    total = len(names) + (1 if exact_players else 0)
    with make_utility(task) as curve_utility:
        learner_name = curve_utility.learner.fingerprint()
        for i, name in enumerate(names):
            method = METHODS[name]
            _report(progress, f"{name}: valuing {task.n_train} rows", i, total)
            row: dict[str, Any] = {"method": name}
            try:
                with make_utility(task) as u:
                    start = time.perf_counter()
                    result = method.run(u, task, settings)
                    row["seconds"] = time.perf_counter() - start
            except DataworthError as error:
                rows[name] = row | {"note": str(error)}
                continue
            results[name] = result
            row["fits"] = int(result.n_fitted)
            scores = detection_scores(result, flipped_ids, seed=seed)
            row |= {k: scores[k] for k in _DETECTION}
            _report(progress, f"{name}: removal curves", i, total)
            curve = removal_curves(
                curve_utility, result, fractions=fractions, n_random=n_random, seed=seed
            )
            curves[name] = curve
            row |= {"area_high_first": curve.area_high, "area_low_first": curve.area_low}
            row["note"] = method.note
            rows[name] = row

    exact = None
    if exact_players:
        _report(progress, f"exact Shapley on {exact_players} rows", len(names), total)
        small = tiny_task(task, exact_players, seed=seed)
        runnable = {n: _bind(METHODS[n], settings) for n in names if n in results}
        exact, _ = exact_agreement(make_utility, small, runnable)
        for name in exact.index:
            rows[name]["spearman_exact"] = exact.loc[name, "spearman"]
    _report(progress, "done", total, total)

    table = _table(rows, names)
    info = {
        "task": task.name,
        "task_fingerprint": task.fingerprint,
        "n_train": task.n_train,
        "n_test": task.n_test,
        "n_flipped": n_flipped,
        "flip_rate": n_flipped / task.n_train,
        "learner": learner_name,
        "metric": metric,
        "seed": seed,
        "settings": settings.__dict__,
        "fractions": list(map(float, fractions)),
        "n_random": n_random,
        "exact_players": exact_players,
        "chance": {
            "roc_auc": 0.5,
            "average_precision": n_flipped / task.n_train,
            "recall_at_10": 0.1,
            "areas": 0.0,
        },
        "sign_convention": (
            "area_high_first = integral of (random - highest-first removal curve); "
            "area_low_first = integral of (lowest-first removal curve - random); "
            "positive = better than random removal"
        ),
    }
    agreement = agreement_table(results) if len(results) > 1 else pd.DataFrame()
    return QualityReport(table, results, curves, agreement, exact, info)


_DETECTION = ("roc_auc", "average_precision", "f1_two_means", "recall_at_10")
_COLUMNS = (
    "rank",
    "seconds",
    "fits",
    *_DETECTION,
    "area_high_first",
    "area_low_first",
    "spearman_exact",
    "note",
)


def _bind(method: _Method, settings: Settings) -> Callable[[Any, Task], ValuationResult]:
    return lambda u, t: method.run(u, t, settings)


def _table(rows: Mapping[str, dict], names: list[str]) -> pd.DataFrame:
    table = pd.DataFrame([rows[n] for n in names]).set_index("method")
    for column in _COLUMNS:
        if column not in table:
            table[column] = "" if column == "note" else np.nan
    table["note"] = table["note"].fillna("")
    # Best detection first; methods that could not run go last, in the order given.
    table = table.sort_values("roc_auc", ascending=False, na_position="last", kind="stable")
    table["rank"] = np.arange(1, len(table) + 1)
    table.loc[table["roc_auc"].isna(), "rank"] = np.nan
    if "fits" in table:
        table["fits"] = table["fits"].astype("Int64")
    table["rank"] = table["rank"].astype("Int64")
    return table[list(_COLUMNS)]
