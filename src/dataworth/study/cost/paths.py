"""Time each valuation method on the path it actually takes, for the plan and the budget.

The generic estimate of a method is "its number of refits times the seconds of one refit". That
is far off for the methods that do not refit from scratch: exact LOO of the batched logistic
regression starts every one-out subset from the full-data solution, TMC-Shapley warm-starts each
prefix of a permutation from the one before (a chain), Data-OOB grows one tree per bootstrap
sample, KNN-Shapley fits nothing, and influence functions need one fit and one linear solve.
Here each of those paths is timed on a small piece of the real work (a batch of one-out subsets,
one chain of nested prefixes, a few trees, a few test rows), and the piece is scaled up.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from time import perf_counter
from typing import Any

import numpy as np

from dataworth.data.task import Task
from dataworth.learners.torch.networks import NETWORKS
from dataworth.machine import usable_cpus, usable_threads

ONE_OUT_BATCH = 256
"""One-out subsets timed through the engine per core: as many as the one-out solver steps side by
side in one pass over the rows, on every core, so the timing sees the batching and the threads the
real run gets (fewer overstate it)."""
CHAIN_PREFIXES = 32
"""Nested prefixes of one permutation, timed as one chain around half the training rows."""
OOB_FEW, OOB_MODELS = 2, 8
"""Bootstrap models of Data-OOB's two timed runs: its cost is a fixed part plus a part per model
(see :func:`_time_data_oob`)."""
NETWORK_TIMED_FITS = 16
"""Subsets of a network timed side by side for the one-out batch and for AME's fits (instead of up
to 64 and 62): a network fit costs about a thousand logistic ones, and on 2 loaded cores the larger
batches took most of a 10-minute study's cost step. The learner trains 64 side by side, a little
cheaper per fit than 16, so these estimates err on the long side."""
KNN_TEST_ROWS = 128
"""Test rows timed for KNN-Shapley (after one untimed row that loads its compiled kernel); its
cost grows linearly with the test rows."""
TRUNCATION_PERMUTATIONS = 2
"""TMC's first permutations whose truncation point is searched (see :func:`_truncation`)."""
_SEARCH_BATCH = 4
"""Prefix sizes of the truncation search fitted together (one batch of the engine)."""
AME_PLAYERS = 100
AME_PLAYERS_LARGE = 400
AME_SUBSETS = 300
AME_SUBSETS_MORE = 600
"""AME's estimation (its cross-validated LASSO with Knockoffs, not the fits) is timed with its fits
already stored: on ``AME_PLAYERS`` and ``AME_PLAYERS_LARGE`` players with ``AME_SUBSETS`` subsets
(the growth with the players), and on the larger again with ``AME_SUBSETS_MORE`` (the growth
with the subsets); see :func:`ame_estimation_seconds`. At 100 subsets or fewer the walk of the
LASSO path (whether its CV curve turns early) made timings of the same size differ threefold."""
AME_FIT_SUBSETS = 64
"""AME's subsets (``p`` from the grid, each row in with probability ``p``) fitted on all training
rows as AME fits them, one batch: AME's fits cost less per subset than the engine's 90% subsets
(about half the rows, and batched), 7 times less at 7,000 rows."""
AME_SUBSET_EXPONENT = 0.8
"""How the estimation's growth per subset grows with the players: as their power 0.8 from 100 to
3,000 players with 1,000 to 4,000 subsets (0.38 to 5.1 ms per subset) on this project's
machines; its size is measured on each task."""
AME_EXPONENT_RANGE = (1.5, 2.0)
"""Bounds of the measured exponent of the estimation's growth with the players. Below 400
players the LASSO's early stop (a CV curve that turns after few points) can make a timing several
times shorter or longer than its neighbours'; from 400 to 3,000 players it grew as the power 1.5
to 1.9 on this project's machines (``benchmarks/bench_ame_cost.py``)."""


def time_paths(
    task: Task,
    learner: str,
    metric: str,
    *,
    seed: int = 0,
    knn_k: int = 10,
    tmc_tol: float = 0.01,
    groups: dict[str, np.ndarray] | None = None,
    device: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Seconds per unit of work of each method's own path, measured on this task.

    Parameters
    ----------
    task : Task
    learner : str
        The valuation learner.
    metric : str
        The utility's metric.
    seed : int, default=0
    knn_k : int, default=10
        KNN-Shapley's number of neighbours.
    tmc_tol : float, default=0.01
        TMC's truncation tolerance, for the share of prefixes a permutation fits.
    groups : dict of str to ndarray, optional
        The groups the study values: leave-group-out and TMC of groups are timed on them
        (:func:`dataworth.study.cost.groups.time_group_paths`).
    device : {"auto", "cpu", "cuda"}, optional
        Where a network learner trains.

    Returns
    -------
    dict
        ``loo_one_out`` (seconds per one-out subset and of the full fit), ``tmc_chain``
        (seconds per chained prefix; absent when the learner has no chains), ``data_oob``
        (seconds per bootstrap model), ``knn_shapley`` (seconds per test row) and
        ``influence`` (seconds in all; absent unless the learner is the logistic regression
        and the metric has a gradient). Each entry says what was timed.
    """
    from dataworth.engine.utility import Utility
    from dataworth.methods.influence import influence
    from dataworth.methods.knn.shapley import knn_shapley
    from dataworth.methods.trees.bagged import warm_up as warm_up_trees
    from dataworth.methods.trees.oob import TREES_MIN_ROWS
    from dataworth.study.cost.groups import time_group_paths

    n = task.n_train
    rng = np.random.default_rng([seed, 91])
    paths: dict[str, dict[str, Any]] = {}
    with Utility(task, learner=learner, metric=metric, seed=seed, device=device) as utility:
        full = np.ones((1, n), dtype=bool)
        start = perf_counter()
        utility.evaluate(full)
        full_seconds = perf_counter() - start
        # Small tables time 32 subsets (the whole LOO costs little there); large ones a full batch.
        wide = min(ONE_OUT_BATCH * usable_cpus(), max(32, n // 20))
        batch = min(wide if utility.learner.batched else 2, n)
        if _is_network(learner):
            batch = min(batch, NETWORK_TIMED_FITS + 2)  # two of them load, untimed
        out = rng.choice(n, size=batch, replace=False)
        masks = np.ones((batch, n), dtype=bool)
        masks[np.arange(batch), out] = False
        if utility.learner.batched and batch > 2:
            # Two untimed one-out subsets first load the one-out path's compiled kernels (and
            # its scoring kernel's): paid once per process, not per subset.
            utility.evaluate(masks[:2])
            masks = masks[2:]
            batch -= 2
        start = perf_counter()
        utility.evaluate(masks)
        seconds = perf_counter() - start
        paths["loo_one_out"] = {
            "subsets": batch,
            "seconds": seconds,
            "per_subset": seconds / batch,
            "full_fit_seconds": full_seconds,
        }
        if getattr(utility.learner, "supports_chains", False) and n >= 4:
            scores = utility.evaluate(np.array([np.zeros(n, bool), np.ones(n, bool)])).scores
            truncation = _truncation(utility, float(scores[0]), float(scores[1]), seed, tmc_tol)
            # A permutation fits its prefixes 1..J, each warm-started from the last, at a cost
            # that grows with the prefix: the chain around J/2 rows costs what they cost on
            # average.
            middle = max(2, round(truncation["truncation_rows"] / 2))
            length = min(CHAIN_PREFIXES, max(2, middle // 2))
            order = rng.permutation(n)
            first = max(1, min(middle - length // 2, n - length))
            prefixes = np.zeros((length, n), dtype=bool)
            for j in range(length):
                prefixes[j, order[: first + j]] = True
            # A first, short chain compiles the chain solver (when it is compiled): that is
            # paid once per process, not per prefix.
            warm = np.zeros((2, n), dtype=bool)
            warm[0, order[-first - 2 :]] = True
            warm[1, order[-first - 3 :]] = True
            utility.evaluate(warm, chains=np.zeros(2, dtype=np.int64))
            start = perf_counter()
            utility.evaluate(prefixes, chains=np.zeros(length, dtype=np.int64))
            seconds = perf_counter() - start
            paths["tmc_chain"] = {
                "prefixes": length,
                "prefix_rows": first + length // 2,
                "seconds": seconds,
                "per_prefix": seconds / length,
                # One chain runs on one core; TMC fits its permutations' chains side by side.
                "threads": usable_threads(),
                **truncation,
            }
        if getattr(utility.learner, "name", "") == "logreg" and metric in (
            "neg_log_loss",
            "neg_brier",
        ):
            start = perf_counter()
            influence(utility)
            paths["influence"] = {"seconds": perf_counter() - start}
        if groups:
            paths.update(time_group_paths(utility, groups, seed=seed, tol=tmc_tol))
    # Loading the compiled trees is paid once per process, not per bag; below their size the
    # trees are scikit-learn's, and compiling kernels no path uses would only cost time.
    if n >= TREES_MIN_ROWS:
        warm_up_trees()
    paths["data_oob"] = _time_data_oob(task, seed)
    paths["ame_estimation"] = _time_ame(task, learner, metric, seed, device)
    # One untimed row first: loading the compiled kernel is paid once per process, not per row.
    knn_shapley(task, knn_k, test_rows=[0])
    # The real run splits the test rows into blocks shared by every core: time a few test rows
    # the same way, in as many blocks as there are cores.
    rows = min(KNN_TEST_ROWS, task.n_test)
    few = replace(
        task,
        X_test=task.X_test[:rows],
        y_test=task.y_test[:rows],
        test_ids=task.test_ids[:rows],
        metadata={},
    )
    start = perf_counter()
    knn_shapley(few, knn_k, block_rows=-(-rows // usable_cpus()))
    seconds = perf_counter() - start
    paths["knn_shapley"] = {
        "test_rows": rows,
        "seconds": seconds,
        "per_test_row": seconds / max(rows, 1),
        "n_test": task.n_test,
    }
    return paths


def _time_data_oob(task: Task, seed: int) -> dict[str, Any]:
    """Data-OOB's seconds: a fixed part and a part per model, fitted on two runs.

    One untimed model first loads whatever a first call loads (kernels not yet compiled on a
    fresh machine, the trees' thread pool); then runs of ``OOB_FEW`` and ``OOB_MODELS`` models
    give the growth per model and what every run pays once (sorting the features, the final
    out-of-bag scores).
    """
    from dataworth.methods.trees.oob import data_oob

    def seconds_of(models: int) -> float:
        start = perf_counter()
        with warnings.catch_warnings():
            # A few bags leave some rows in every bag (no out-of-bag estimate): only timed here.
            warnings.simplefilter("ignore", RuntimeWarning)
            data_oob(task, models, seed=seed)
        return perf_counter() - start

    seconds_of(1)
    few, many = seconds_of(OOB_FEW), seconds_of(OOB_MODELS)
    per_model = max(many - few, 0.0) / (OOB_MODELS - OOB_FEW)
    if per_model <= 0:  # too fast to tell apart: the larger run, as if all per model
        per_model = many / OOB_MODELS
    return {
        "models": OOB_MODELS,
        "seconds": many,
        "per_model": per_model,
        "fixed": max(0.0, many - OOB_MODELS * per_model),
    }


def _is_network(learner) -> bool:
    """Whether the valuation learner is one of the networks chosen by name."""
    return isinstance(learner, str) and learner in NETWORKS


def _truncation(utility, empty: float, full: float, seed: int, tol: float) -> dict[str, Any]:
    """Where TMC truncates its first permutations, found on all rows by a geometric search.

    Truncation stops a permutation at its first prefix within ``tol * |U(D)|`` of ``U(D)``.
    The prefixes of TMC's own first :data:`TRUNCATION_PERMUTATIONS` permutations are fitted at
    sizes growing by half (16, 24, 36, ...), a few at a time, until one is within the tolerance:
    its size bounds the truncation point from above (by at most the growth), the fits stop
    there, and the search costs a few fits of at most that size, never a walk of every prefix.
    TMC asks its prefixes in blocks that grow the same way, so the prefixes it fits (those past
    the truncation point in the same block included) are about that size too.

    Returns ``truncation_rows`` (the largest of the permutations' bounds), ``fitted_rows`` (the
    prefixes a permutation fits, at most ``n``) and ``fitted_share`` (their share of ``n``).
    """
    from dataworth.methods.shapley.tmc import _permutation

    n = utility.n_players
    sizes = _geometric_sizes(n)
    found = []
    for t in range(TRUNCATION_PERMUTATIONS):
        order = _permutation(seed, t, n)
        bound = n
        if tol > 0 and abs(full - empty) >= tol * abs(full):
            for start in range(0, len(sizes), _SEARCH_BATCH):
                batch = sizes[start : start + _SEARCH_BATCH]
                masks = np.zeros((len(batch), n), dtype=bool)
                for row, size in enumerate(batch):
                    masks[row, order[:size]] = True
                scores = utility.evaluate(masks).scores
                close = np.flatnonzero(np.abs(full - scores) < tol * abs(full))
                if len(close):
                    bound = int(batch[close[0]])
                    break
        else:
            bound = 0  # the empty set is already within the tolerance: nothing is fitted
        found.append(bound)
    rows = max(found)
    fitted = min(n, max(rows, 1))
    return {"fitted_share": fitted / n, "fitted_rows": float(fitted), "truncation_rows": rows}


def _geometric_sizes(n: int) -> list[int]:
    """Prefix sizes 16, 24, 36, ... (growing by half, as TMC's blocks do), then ``n``."""
    sizes, size = [], 16
    while size < n:
        sizes.append(size)
        size = round(size * 1.5)
    return [*sizes, n] if not sizes or sizes[-1] != n else sizes


def _time_ame(
    task: Task, learner: str, metric: str, seed: int, device: str | None = None
) -> dict[str, Any]:
    """Seconds of AME's flat estimation alone (its fits already stored), at two small sizes, and
    of its fits on all the rows.

    Each subsample's fits are stored first (one run at its largest number of subsets); then the
    estimation is timed at ``AME_SUBSETS`` subsets on ``AME_PLAYERS`` and ``AME_PLAYERS_LARGE``
    players, and at ``AME_SUBSETS_MORE`` on the larger (the growth with the subsets). AME's own
    fits are timed apart, on a batch of its subsets of all the training rows
    (:func:`_time_ame_fits`). The first size's entries keep the keys of the single timing of
    earlier versions.

    A network's fits cost a thousand times a logistic regression's, and its estimation is timed on
    the logistic regression's fits instead (the cross-validated LASSO's cost depends on the
    subsets, the players and the targets, not on the model that scored them), so that timing
    does not cost the 900 network fits it would; AME's own fits are still the network's.
    """
    from dataworth.engine.utility import Utility
    from dataworth.methods.ame import ame

    fitted_by = "logreg" if _is_network(learner) else learner

    sizes: list[dict[str, float]] = []
    plan = ((AME_PLAYERS, (AME_SUBSETS,)), (AME_PLAYERS_LARGE, (AME_SUBSETS, AME_SUBSETS_MORE)))
    for wanted, subsets in plan:
        players = min(task.n_train, wanted)
        if any(size["players"] == players for size in sizes):
            continue  # a small table: the larger size is the same subsample
        sub = task if players == task.n_train else task.subsample_train(players, seed=seed)
        with Utility(sub, learner=fitted_by, metric=metric, seed=seed) as utility:
            ame(utility, n_subsets=max(subsets), fdr=0.1, seed=seed, mode="flat")  # fits, stored
            for m in subsets:
                start = perf_counter()
                ame(utility, n_subsets=m, fdr=0.1, seed=seed, mode="flat")
                sizes.append({"players": players, "subsets": m, "seconds": perf_counter() - start})
    first = sizes[0]
    return {
        "players": first["players"],
        "subsets": first["subsets"],
        "seconds": first["seconds"],
        "knockoffs": True,
        "sizes": sizes,
        "estimation_fits": fitted_by,
        **_time_ame_fits(task, learner, metric, seed, device),
    }


def _time_ame_fits(
    task: Task, learner: str, metric: str, seed: int, device: str | None = None
) -> dict[str, float]:
    """Seconds per subset of AME's fits on all training rows, timed on one batch of its subsets."""
    from dataworth.engine.utility import Utility
    from dataworth.methods.sampler import SubsetSampler, make_law

    wanted = NETWORK_TIMED_FITS if _is_network(learner) else AME_FIT_SUBSETS
    count = min(wanted, max(2, task.n_train))
    _, masks = SubsetSampler(task.n_train, make_law("grid")).draw(seed, 0, count)
    with Utility(task, learner=learner, metric=metric, seed=seed, device=device) as utility:
        start = perf_counter()
        utility.evaluate(masks)
        seconds = perf_counter() - start
    return {"fit_subsets": count, "fit_seconds": seconds / count, "fit_rows": task.n_train}


@dataclass(frozen=True)
class AmeEstimationModel:
    """AME's flat estimation for one target, fitted to the cost study's timings.

    ``seconds(players, subsets) = anchor_seconds * (players / anchor_players) ** exponent
    + per_subset_anchor * (players / anchor_players) ** AME_SUBSET_EXPONENT
    * max(subsets - anchor_subsets, 0)``. The first term is the cross-validated LASSO path at
    the anchor's subsets, whose passes over the Gram matrix grow faster than the columns (the
    exponent, measured between the two timed sizes and bounded to :data:`AME_EXPONENT_RANGE`;
    anchored at the larger). The second is what each further subset
    adds (the design, its centring and Gram matrices, the folds' rows, the longer support of a
    less noisy path), measured on the anchor and at least its mean seconds per subset there:
    at a few hundred subsets the path's walk is noisy (a longer one at fewer subsets is common),
    and the estimation grew at least in proportion to the subsets from 1,000 to 4,000 on this
    project's machines (at 100 to 3,000 players).
    """

    anchor_players: int
    anchor_subsets: int
    anchor_seconds: float
    exponent: float
    per_subset_anchor: float
    measured: bool

    def seconds(self, players: int, subsets: int | None = None) -> float:
        """Seconds of the estimation on ``players`` players (``subsets`` default: the anchor's)."""
        ratio = max(int(players), 1) / self.anchor_players
        extra = 0 if subsets is None else max(int(subsets) - self.anchor_subsets, 0)
        return self.anchor_seconds * ratio**self.exponent + self.per_subset(players) * extra

    def per_subset(self, players: int) -> float:
        """Seconds the estimation adds per subset beyond the anchor's, on ``players`` players."""
        ratio = max(int(players), 1) / self.anchor_players
        return self.per_subset_anchor * ratio**AME_SUBSET_EXPONENT

    def describe(self) -> str:
        how = (
            f"as the power {self.exponent:.2f} of the players, measured"
            if self.measured
            else f"as the power {self.exponent:.1f} of the players (one size timed)"
        )
        return f"its LASSO timed on {self.anchor_players} players and scaled {how}"


def ame_estimation_model(timing: dict[str, Any]) -> AmeEstimationModel:
    """The estimation model of :class:`AmeEstimationModel` from :func:`_time_ame`'s timings.

    A timing of one size only (a table of fewer rows, or a cost result of an earlier version)
    scales as the square of the players, the long side of the measured range.
    """
    sizes = timing.get("sizes") or [
        {"players": timing["players"], "subsets": timing["subsets"], "seconds": timing["seconds"]}
    ]
    base = min(size["subsets"] for size in sizes)
    at_base = sorted((s for s in sizes if s["subsets"] == base), key=lambda s: s["players"])
    small, large = at_base[0], at_base[-1]
    low, high = AME_EXPONENT_RANGE
    measured = large["players"] > small["players"]
    exponent = high
    if measured:
        ratio = max(large["seconds"], 1e-9) / max(small["seconds"], 1e-9)
        exponent = math.log(ratio) / math.log(large["players"] / small["players"])
        exponent = min(max(exponent, low), high)
    per_subset = 0.0
    more = [s for s in sizes if s["players"] == large["players"] and s["subsets"] > base]
    if more:
        top = max(more, key=lambda s: s["subsets"])
        grew = (top["seconds"] - large["seconds"]) / (top["subsets"] - base)
        per_subset = max(grew, top["seconds"] / top["subsets"])
    return AmeEstimationModel(
        anchor_players=int(large["players"]),
        anchor_subsets=int(base),
        anchor_seconds=float(large["seconds"]),
        exponent=float(exponent),
        per_subset_anchor=float(per_subset),
        measured=measured,
    )


def ame_estimation_seconds(
    timing: dict[str, Any], players: int, subsets: int | None = None
) -> float:
    """Seconds of AME's flat estimation for one target on ``players`` players.

    With ``subsets`` None, at the smallest number timed (:data:`AME_SUBSETS`); see
    :class:`AmeEstimationModel`.
    """
    return ame_estimation_model(timing).seconds(players, subsets)
