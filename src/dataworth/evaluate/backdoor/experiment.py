"""The AME paper's backdoor experiment, in miniature (docs/design.md, "The backdoor experiment").

Lin et al. (ICML 2022) poison CIFAR-10 with a trigger patch on ``k`` training images relabelled
to a target class, then explain 20 patched test images (one LASSO and one Knockoff selection per
image, utility ``P(target)``) from ``m = c * k * log2(N)`` ResNet-9 submodels trained on random
subsets, ``p`` in {0.2, 0.4, 0.6, 0.8}, ``c`` in {1, 2, 4, 8}, and score each selection's
precision and recall against the poisons. :func:`run_backdoor` does the same on the digits with
a small network, checks the attack first (attack success, clean accuracy against an unpoisoned
network), and scores the baselines at the same number of trained models:

==============  ==================================================  ==========================
method          score of training row ``i`` for query ``q``          selection
==============  ==================================================  ==========================
ame             AME (LASSO, lambda_1se), Knockoffs                   plain Knockoff at q = 0
ame_top_k       AME (LASSO at the CV minimum)                        top ``k``
loo             ``U_q(D) - U_q(D - i)`` (``budget - 1`` points)      top ``k``
tmc             TMC-Shapley, shared permutations, on the budget      top ``k``
influence       last-layer influence function (1 model)              top ``k``
tracin          gradient dot product at one checkpoint (1 model)     top ``k``
knn_shapley     KNN-Shapley in the last hidden layer (1 model)       top ``k``
==============  ==================================================  ==========================

The baselines are given ``k`` (AME's Knockoffs are not): top-``k`` is the most favourable rule
for them, and makes their precision equal their recall.

Each query's score is, by default, the log-odds of the target class, ``log(p / (1 - p))``
(TRAK's margin), not the paper's probability ``p``: a strong attack drives ``p`` to 1 on most
subsets, where one poison more or less moves it by almost nothing, while the log-odds keep
moving (``score="proba"`` gives the paper's utility). The one-model baselines rank the same
either way (the log-odds are an increasing function of ``p``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.evaluate.backdoor.data import TARGET_CLASS, BackdoorData
from dataworth.methods.result import jsonable

GRID: tuple[int, ...] = (1, 2, 4, 8)
"""The paper's factors ``c`` of ``m = c * k * log2(N)``."""
METHODS: tuple[str, ...] = ("ame", "loo", "tmc", "influence", "tracin", "knn_shapley")
ONE_MODEL = ("influence", "tracin", "knn_shapley")
SCORES = ("logit", "proba")
_CLIP = 1e-6  # probabilities of float32 networks: 1 - p below this is rounding


def query_scores(utility: Utility, score: str = "logit") -> Callable[[np.ndarray], np.ndarray]:
    """``scores(masks) -> (K, n_queries)``: each query's ``P(target)`` or its log-odds.

    The utility's test rows are the queries, labelled with the target, so its per-prediction
    score is ``P(target)``; each subset's network is trained once and then read from the store.
    """
    if score not in SCORES:
        raise DataworthError(f"Unknown score {score!r}; use logit or proba.")

    def scores(masks: np.ndarray) -> np.ndarray:
        p = utility.evaluate(masks, per_prediction=True).per_prediction
        if score == "proba":
            return p
        p = np.clip(p, _CLIP, 1.0 - _CLIP)
        return np.log(p) - np.log1p(-p)

    return scores


ProgressFn = Callable[[str], None]


def n_subsets(c: float, k: int, n: int) -> int:
    """``round(c * k * log2(n))``, the paper's number of submodels."""
    return round(c * k * math.log2(n))


def precision_recall(selected: np.ndarray, poisons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-query precision and recall of selections against the poisons.

    Parameters
    ----------
    selected : ndarray of bool, shape (n_queries, n_train)
    poisons : ndarray of int
        Training positions of the poisons.

    Returns
    -------
    precision, recall : ndarray of shape (n_queries,)
        ``hits / selected`` and ``hits / k``. An empty selection has precision 1: it makes no
        false discovery (the convention of the false discovery rate, ``FDP = 0`` when nothing
        is selected); its recall is 0.
    """
    selected = np.asarray(selected, dtype=bool)
    truth = np.zeros(selected.shape[1], dtype=bool)
    truth[np.asarray(poisons)] = True
    hits = (selected & truth[None, :]).sum(axis=1)
    size = selected.sum(axis=1)
    precision = np.where(size > 0, hits / np.maximum(size, 1), 1.0)
    return precision, hits / truth.sum()


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Each query's ``k`` highest finite scores, as a boolean selection (ties: lower index)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    selected = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(selected, order, True, axis=1)
    return selected & np.isfinite(scores)


@dataclass(frozen=True)
class AttackCheck:
    """Whether the planted backdoor works, on the network trained on all rows.

    Attributes
    ----------
    success : float
        Share of the patched test images of other classes the poisoned network assigns to the
        target class.
    clean_accuracy : float
        The poisoned network's accuracy on the clean test set.
    clean_accuracy_unpoisoned : float
        Accuracy of the same network trained on the unpoisoned training rows.
    mean_target_probability : float
        Mean probability of the target class on the patched images.
    n_patched, n_clean : int
        Images behind the two rates.
    """

    success: float
    clean_accuracy: float
    clean_accuracy_unpoisoned: float
    mean_target_probability: float
    n_patched: int
    n_clean: int

    @property
    def accuracy_drop(self) -> float:
        """Clean accuracy lost to the poisons (points of accuracy, as a fraction)."""
        return self.clean_accuracy_unpoisoned - self.clean_accuracy


def attack_check(learner: Any, data: BackdoorData) -> AttackCheck:
    """Train the full-data network with and without the poisons and measure the attack."""
    from dataworth.evaluate.backdoor.network import TrainedNetwork

    poisoned = TrainedNetwork.fit(learner, data.task)
    clean = TrainedNetwork.fit(learner, data.clean_task)
    X_test, y_test = data.clean_task.X_test, data.clean_task.y_test
    patched = poisoned.proba(data.patched_X)
    return AttackCheck(
        success=float((patched.argmax(axis=1) == TARGET_CLASS).mean()),
        clean_accuracy=float((poisoned.proba(X_test).argmax(axis=1) == y_test).mean()),
        clean_accuracy_unpoisoned=float((clean.proba(X_test).argmax(axis=1) == y_test).mean()),
        mean_target_probability=float(patched[:, TARGET_CLASS].mean()),
        n_patched=len(patched),
        n_clean=len(y_test),
    )


@dataclass
class BackdoorReport:
    """What :func:`run_backdoor` found: the attack check and each method's precision/recall.

    Attributes
    ----------
    attack : AttackCheck
    rows : list of dict
        One per (``c``, method): ``c``, ``subsets`` (``m`` of that ``c``), ``method``,
        ``precision``, ``recall`` (means over the queries), ``models`` (models the method
        trained, at most ``subsets``), ``selection`` (the rule), ``empty`` (queries with an
        empty selection), ``seconds``.
    settings : dict
        The experiment's parameters.
    timings : dict
        Seconds of each phase.
    """

    attack: AttackCheck
    rows: list[dict]
    settings: dict
    timings: dict = field(default_factory=dict)

    def row(self, c: int, method: str) -> dict:
        """The row of ``method`` at factor ``c``."""
        for r in self.rows:
            if r["c"] == c and r["method"] == method:
                return r
        raise KeyError((c, method))

    def to_json(self) -> dict:
        """The content of ``backdoor.json``."""
        attack = asdict(self.attack) | {"accuracy_drop": self.attack.accuracy_drop}
        return jsonable(
            {
                "attack": attack,
                "results": self.rows,
                "settings": self.settings,
                "timings": self.timings,
            }
        )

    def save(self, folder: str | Path) -> list[Path]:
        """Write ``backdoor.json`` and the report page ``backdoor.html`` in ``folder``."""
        from dataworth.evaluate.backdoor.page import backdoor_page

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "backdoor.json", folder / "backdoor.html"]
        paths[0].write_text(json.dumps(self.to_json(), indent=2) + "\n")
        paths[1].write_text(backdoor_page(self))
        return paths


def _check(grid: Sequence[int], methods: Sequence[str], cv: int) -> tuple[list[int], list[str]]:
    grid = sorted({int(c) for c in grid})
    if not grid or grid[0] < 1:
        raise DataworthError(f"The factors c must be positive whole numbers; got {grid}.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DataworthError(f"Unknown method {unknown[0]!r}; use some of {', '.join(METHODS)}.")
    if cv < 2:
        raise DataworthError(f"cv must be at least 2; got {cv}.")
    return grid, list(dict.fromkeys(methods))


def run_backdoor(
    data: BackdoorData,
    learner: Any,
    *,
    grid: Sequence[int] = GRID,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    cv: int = 5,
    score: str = "logit",
    progress: ProgressFn | None = None,
) -> BackdoorReport:
    """Check the attack, then score AME and the baselines at ``m = c * k * log2(N)`` models.

    Parameters
    ----------
    data : BackdoorData
        From :func:`~dataworth.evaluate.backdoor.data.backdoor_digits`.
    learner : TorchLearner
        The network retrained on every subset (also the attack check's and the one-model
        baselines' network).
    grid : sequence of int, default (1, 2, 4, 8)
        The factors ``c``.
    methods : sequence of str, default every one of :data:`METHODS`
    seed : int, default 0
        Seeds AME's subsets, LOO's order and TMC's permutations.
    cv : int, default 5
        Folds of each query's cross-validated LASSO.
    score : {"logit", "proba"}, default "logit"
        Each query's score: the log-odds of the target class, or its probability (the paper's).
    progress : callable, optional
        ``progress(message)`` as phases start.

    Returns
    -------
    BackdoorReport
    """
    from dataworth.engine.game import Game
    from dataworth.evaluate.backdoor.network import (
        TrainedNetwork,
        gradient_similarity,
        hidden_knn_shapley,
        last_layer_influence,
    )
    from dataworth.evaluate.backdoor.refits import budget_loo, budget_tmc
    from dataworth.methods.ame import ame

    grid, methods = _check(grid, methods, cv)
    if score not in SCORES:
        raise DataworthError(f"Unknown score {score!r}; use logit or proba.")
    say = progress or (lambda message: None)
    k, n, queries = data.k, data.task.n_train, data.task.n_test
    timings: dict[str, float] = {}
    rows: list[dict] = []

    def add(c: int, method: str, selected, models: int, rule: str, seconds: float) -> None:
        precision, recall = precision_recall(selected, data.poisons)
        say(
            f"{method} at c = {c}: precision {precision.mean():.2f}, recall {recall.mean():.2f}"
            f" ({models} models, {seconds:.0f} s)"
        )
        rows.append(
            {
                "c": c,
                "subsets": n_subsets(c, k, n),
                "method": method,
                "precision": float(precision.mean()),
                "recall": float(recall.mean()),
                "models": int(models),
                "selection": rule,
                "empty": int((selected.sum(axis=1) == 0).sum()),
                "seconds": round(seconds, 2),
            }
        )

    start = time.perf_counter()
    say("attack check: the network on all rows, with and without the poisons")
    attack = attack_check(learner, data)
    timings["attack"] = time.perf_counter() - start

    one_model: dict[str, tuple[np.ndarray, float]] = {}
    if any(m in methods for m in ONE_MODEL):
        start = time.perf_counter()
        net = TrainedNetwork.fit(learner, data.task)
        fit_seconds = time.perf_counter() - start
        for name, fn in (
            ("influence", last_layer_influence),
            ("tracin", gradient_similarity),
            ("knn_shapley", hidden_knn_shapley),
        ):
            if name in methods:
                say(f"{name}: one network")
                begin = time.perf_counter()
                one_model[name] = (fn(net, TARGET_CLASS), fit_seconds + time.perf_counter() - begin)
        timings["one_model"] = time.perf_counter() - start

    utility = Utility(data.task, learner=learner, metric="accuracy")
    scores = query_scores(utility, score)
    for c in grid:
        m = n_subsets(c, k, n)
        if "ame" in methods:
            say(f"ame: c = {c}, {m} subsets, {queries} LASSOs")
            begin = time.perf_counter()
            # One game per query over the same design (same seed): the first trains the
            # networks, the others read them from the utility's store.
            fits = [
                ame(
                    Game(lambda masks, q=q: scores(masks)[:, q], n_players=n),
                    n_subsets=m,
                    fdr=0.0,
                    knockoff_plus=False,
                    seed=seed,
                    cv=cv,
                    mode="flat",
                )
                for q in range(queries)
            ]
            selected = np.array([fit.extra["selected"] for fit in fits])
            values = np.array([fit.values for fit in fits])
            seconds = time.perf_counter() - begin
            add(c, "ame", selected, m, "knockoff q=0", seconds)
            # The same values ranked as the baselines are (told k): AME's ranking, apart from
            # its selection rule.
            add(c, "ame_top_k", top_k(values, k), m, "top-k", seconds)
        if "loo" in methods:
            say(f"loo: c = {c}, {m} models")
            begin = time.perf_counter()
            values, models = budget_loo(scores, n, m, seed)
            add(c, "loo", top_k(values, k), models, "top-k", time.perf_counter() - begin)
        if "tmc" in methods:
            say(f"tmc: c = {c}, {m} models")
            begin = time.perf_counter()
            values, models = budget_tmc(scores, n, m, seed)
            add(c, "tmc", top_k(values, k), models, "top-k", time.perf_counter() - begin)
        for name, (matrix, seconds) in one_model.items():
            add(c, name, top_k(matrix, k), 1, "top-k", seconds)
    timings["total"] = sum(r["seconds"] for r in rows if r["method"] not in ONE_MODEL)
    timings["total"] += timings["attack"] + timings.get("one_model", 0.0)
    settings = {
        "n_train": n,
        "poisons": k,
        "queries": queries,
        "patch": list(data.patch),
        "patch_value": data.patch_value,
        "target_class": TARGET_CLASS,
        "grid": grid,
        "methods": methods,
        "seed": seed,
        "cv": cv,
        "score": score,
        "learner": repr(learner),
        "poison_rows": data.poisons.tolist(),
    }
    return BackdoorReport(attack, rows, settings, timings)
