"""The linear datamodeling score (LDS): do a method's attributions predict retrained models?

Definition (Park, Georgiev, Ilyas, Leclerc and Madry, "TRAK: Attributing Model Behavior at
Scale", ICML 2023, Def. 2.3; dattri's ``metric.lds`` computes the same): draw ``m`` subsets
``S_j`` of exactly ``alpha * n`` training points (``alpha = 1/2``), train a model on each, and
for each test example ``z`` compare the model's output ``f(z; S_j)`` with the attribution's
linear prediction ``sum_{i in S_j} tau_i(z)``:

    LDS(z) = Spearman rank correlation over j = 1..m

The output is TRAK's: the log-odds of the true class ``log(p / (1 - p))`` (the per-prediction
score ``"log_odds"``). The reported figure is the mean of ``LDS(z)`` over the test examples,
with a 95% Student-t interval over them (the test examples are the sampling units; the ``m``
models are shared). A test example whose attributions or outputs are constant over the
subsets has no rank correlation; it counts as 0 (no linear prediction) and is reported in
``n_undefined``, where dattri drops it.

The subsets are trained through the engine like any other (stored, never refitted), from a
random stream of their own, so they never coincide with a method's own subsets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.evaluate.attributions import attribution_matrix, check_methods, trained_models

DEFAULT_MODELS = 100
"""Half-size subsets trained for the ground truth (dattri's ``retrain_lds`` default)."""
DEFAULT_TEST_ROWS = 100
ALPHA = 0.5
OUTPUT = "log_odds"
_SUBSET_STREAM = 29  # spawn key of the LDS subsets (AME's design uses 1)


def lds_subsets(n_train: int, n_models: int, alpha: float = ALPHA, seed: int = 0) -> np.ndarray:
    """``n_models`` subsets of exactly ``int(alpha * n_train)`` points, drawn without replacement.

    Returns
    -------
    ndarray of bool, shape (n_models, n_train)
        Subset ``j`` comes from ``SeedSequence(seed, spawn_key=(29, j))``: a larger ``n_models``
        extends the same list.
    """
    if int(n_models) != n_models or n_models < 2:
        raise DataworthError(f"The LDS needs at least 2 models; got {n_models!r}.")
    if not 0 < alpha < 1:
        raise DataworthError(f"alpha must lie strictly between 0 and 1; got {alpha!r}.")
    size = int(alpha * n_train)
    if size < 1:
        raise DataworthError(f"A subset of {alpha} of {n_train} training rows is empty.")
    masks = np.zeros((int(n_models), n_train), dtype=bool)
    for j in range(int(n_models)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SUBSET_STREAM, j)))
        masks[j, rng.choice(n_train, size=size, replace=False)] = True
    return masks


def _column_ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks of each column (ties share their mean rank, as Spearman's rho needs)."""
    return stats.rankdata(a, axis=0)


def lds_per_example(attributions: np.ndarray, masks: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Spearman correlation, per test example, of predicted and actual outputs over the subsets.

    Parameters
    ----------
    attributions : ndarray of shape (T, n_train)
        ``tau_i(z)`` for each test example ``z`` (row) and training point ``i``.
    masks : ndarray of bool, shape (m, n_train)
        The subsets the models were trained on.
    outputs : ndarray of shape (m, T)
        Each model's output on each test example.

    Returns
    -------
    ndarray of shape (T,)
        NaN where either side is constant over the subsets.
    """
    attributions = np.asarray(attributions, dtype=np.float64)
    masks = np.asarray(masks, dtype=np.float64)
    outputs = np.asarray(outputs, dtype=np.float64)
    if attributions.ndim != 2 or masks.ndim != 2 or outputs.ndim != 2:
        raise DataworthError("attributions, masks and outputs must be matrices.")
    if attributions.shape[1] != masks.shape[1] or outputs.shape != (len(masks), len(attributions)):
        raise DataworthError(
            f"Shapes do not match: attributions {attributions.shape}, masks {masks.shape}, "
            f"outputs {outputs.shape} (want (T, n), (m, n), (m, T))."
        )
    predicted = masks @ attributions.T  # (m, T)
    rp, ro = _column_ranks(predicted), _column_ranks(outputs)
    rp -= rp.mean(axis=0)
    ro -= ro.mean(axis=0)
    denom = np.sqrt((rp**2).sum(axis=0) * (ro**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rp * ro).sum(axis=0) / denom
    return np.where(denom > 0, rho, np.nan)


def mean_interval(per_example: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of the per-example scores (NaN counted as 0) and its Student-t interval."""
    values = np.nan_to_num(np.asarray(per_example, dtype=np.float64), nan=0.0)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = (
        stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    )
    return mean, mean - float(half), mean + float(half)


@dataclass
class LDSResult:
    """One method's LDS.

    Attributes
    ----------
    method : str
    models : int
        Models the method itself trained (AME: its subsets; influence and gradient similarity:
        the full-data model; KNN-Shapley and the random floor: none).
    lds, ci_low, ci_high : float
        Mean LDS over the test examples and its 95% Student-t interval.
    n_undefined : int
        Test examples without a rank correlation (counted as 0).
    seconds : float
        Wall time of the method's attributions.
    per_example : ndarray
        ``LDS(z)`` of each test example (not written to JSON).
    """

    method: str
    models: int
    lds: float
    ci_low: float
    ci_high: float
    n_undefined: int
    seconds: float
    per_example: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        """The JSON record (without the per-example scores)."""
        out = asdict(self)
        out.pop("per_example")
        return out


@dataclass
class LDSReport:
    """The LDS of several methods against one set of retrained models."""

    results: list[LDSResult]
    ground_truth_models: int
    alpha: float
    test_rows: list[int]
    output: str
    learner: str
    task: str
    seed: int

    def to_dict(self) -> dict:
        """``lds.json``: the settings and one record per method."""
        return {
            "task": self.task,
            "learner": self.learner,
            "output": self.output,
            "alpha": self.alpha,
            "ground_truth_models": self.ground_truth_models,
            "n_test": len(self.test_rows),
            "test_rows": f"the first {len(self.test_rows)}",
            "interval": "95% Student t over test examples",
            "seed": self.seed,
            "results": [r.to_dict() for r in self.results],
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``lds.json`` into ``folder`` and return its path."""
        path = Path(folder) / "lds.json"
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def by_method(self) -> dict[str, LDSResult]:
        return {r.method: r for r in self.results}


def ground_truth(utility, masks: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """Each subset's model output on the test rows ``(m, len(rows))``, through the engine."""
    evaluation = utility.evaluate(masks, per_prediction=True)
    if evaluation.n_fallback:
        raise DataworthError(
            f"{evaluation.n_fallback} LDS subsets lack a class and have no fitted model; use "
            "more training rows."
        )
    return evaluation.per_prediction[:, np.asarray(rows, dtype=np.int64)]


def score_attributions(
    method: str, attributions: np.ndarray, masks: np.ndarray, outputs: np.ndarray, **record
) -> LDSResult:
    """An :class:`LDSResult` from a method's attribution matrix."""
    per = lds_per_example(attributions, masks, outputs)
    mean, low, high = mean_interval(per)
    return LDSResult(
        method=method,
        lds=mean,
        ci_low=low,
        ci_high=high,
        n_undefined=int(np.isnan(per).sum()),
        per_example=per,
        models=record.get("models", 0),
        seconds=record.get("seconds", 0.0),
    )


def _utility(task_or_utility, learner, seed: int, device: str | None, store):
    from dataworth.engine.utility import Utility

    if isinstance(task_or_utility, Task):
        return Utility(
            task_or_utility,
            learner=learner,
            per_prediction=OUTPUT,
            seed=seed,
            device=device,
            store=store,
        )
    if not hasattr(task_or_utility, "evaluate") or not hasattr(task_or_utility, "task"):
        raise DataworthError("lds() takes a Task or a Utility.")
    return task_or_utility


def pick_test_rows(n_test: int, n_rows: int | None) -> list[int]:
    """The first ``n_rows`` test rows (the split already shuffled them), at most all of them."""
    n = DEFAULT_TEST_ROWS if n_rows is None else int(n_rows)
    if n < 2:
        raise DataworthError(f"The LDS needs at least 2 test rows; got {n}.")
    if n_test < 2:
        raise DataworthError("The LDS needs a test set of at least 2 rows.")
    return list(range(min(n, n_test)))


def lds(
    task_or_utility,
    methods: Sequence[str] | None = None,
    *,
    learner="logreg",
    n_models: int = DEFAULT_MODELS,
    method_models: int | None = None,
    test_rows: int | None = None,
    alpha: float = ALPHA,
    seed: int = 0,
    device: str | None = None,
    store=None,
    progress=None,
    ame_law: str = "grid",
) -> LDSReport:
    """The linear datamodeling score of each attribution method (TRAK's definition).

    Parameters
    ----------
    task_or_utility : Task or Utility
        A task (a utility is built with ``learner`` and the log-odds output, TRAK's), or a
        utility whose per-prediction score is the output.
    methods : sequence of str, optional
        Of :data:`~dataworth.evaluate.attributions.ATTRIBUTION_METHODS`; by default AME,
        influence, gradient similarity and KNN-Shapley.
    learner : str or Learner, default="logreg"
        With a task: the model (``"mlp"`` and ``"cnn"`` need the ``torch`` extra).
    n_models : int, default=100
        Half-size subsets trained for the ground truth.
    method_models : int, optional
        Subsets AME trains on (default ``n_models``); the other methods train at most one model.
    test_rows : int, optional
        How many test examples to score (the first ones; default 100).
    alpha : float, default=0.5
        Subset size as a share of the training rows.
    seed : int, default=0
        The subsets, the learner's seed, AME's design.
    device : {"auto", "cpu", "cuda"}, optional
        Where a network trains.
    store : str, Path or EvaluationStore, optional
        The engine's store (with a task).
    progress : callable, optional
        ``progress(done, total)`` as methods finish.
    ame_law : str, default="grid"
        AME's law of ``p``: the paper's grid, or ``"banzhaf"`` (``p = 1/2``, the LDS's own
        subsets' law).

    Returns
    -------
    LDSReport

    Examples
    --------
    >>> import dataworth as dw
    >>> from dataworth.evaluate.lds import lds
    >>> task = dw.load_dataset("breast_cancer", train_size=100, seed=0)
    >>> report = lds(task, ["influence", "random"], n_models=50, test_rows=20)
    >>> by = report.by_method()
    >>> by["influence"].lds > by["random"].lds
    True
    """
    from time import perf_counter

    names = check_methods(methods)
    utility = _utility(task_or_utility, learner, seed, device, store)
    task = utility.task
    rows = pick_test_rows(task.n_test, test_rows)
    masks = lds_subsets(task.n_train, n_models, alpha, seed)
    budget = int(n_models if method_models is None else method_models)
    if budget < 1:
        raise DataworthError(f"method_models must be a positive number; got {budget}.")
    outputs = ground_truth(utility, masks, rows)
    results = []
    for done, name in enumerate(names, start=1):
        start = perf_counter()
        matrix = attribution_matrix(
            utility, name, rows, n_models=budget, seed=seed, ame_law=ame_law
        )
        seconds = perf_counter() - start
        results.append(
            score_attributions(
                name, matrix, masks, outputs, models=trained_models(name, budget), seconds=seconds
            )
        )
        if progress is not None:
            progress(done, len(names))
    learner_name = getattr(utility.learner, "name", type(utility.learner).__name__)
    return LDSReport(
        results=results,
        ground_truth_models=int(n_models),
        alpha=float(alpha),
        test_rows=rows,
        output=utility.per_prediction_kind,
        learner=str(learner_name),
        task=task.name,
        seed=seed,
    )
