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

import warnings
from dataclasses import replace
from time import perf_counter
from typing import Any

import numpy as np

from dataworth.data.task import Task
from dataworth.machine import usable_cpus

ONE_OUT_BATCH = 256
"""One-out subsets timed through the engine per core: as many as the one-out solver steps side by
side in one pass over the rows, on every core, so the timing sees the batching and the threads the
real run gets (fewer overstate it)."""
CHAIN_PREFIXES = 32
"""Nested prefixes of one permutation, timed as one chain around half the training rows."""
OOB_MODELS = 4
"""Bootstrap models timed for Data-OOB; its cost grows linearly with the number of models."""
KNN_TEST_ROWS = 128
"""Test rows timed for KNN-Shapley (after one untimed row that loads its compiled kernel); its
cost grows linearly with the test rows."""
TRUNCATION_PERMUTATIONS = 2
"""TMC's first permutations whose truncation point is searched (see :func:`_truncation`)."""
_SEARCH_BATCH = 4
"""Prefix sizes of the truncation search fitted together (one batch of the engine)."""
AME_PLAYERS = 100
AME_SUBSETS = 100
"""AME's estimation (its cross-validated LASSO, not the fits) is timed on a subsample of this many
players with this many subsets, its fits already stored; see :func:`ame_estimation_seconds`."""


def time_paths(
    task: Task,
    learner: str,
    metric: str,
    *,
    seed: int = 0,
    knn_k: int = 10,
    tmc_tol: float = 0.01,
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
    from dataworth.methods.bagged_trees import warm_up as warm_up_trees
    from dataworth.methods.data_oob import TREES_MIN_ROWS, data_oob
    from dataworth.methods.influence import influence
    from dataworth.methods.knn_shapley import knn_shapley

    n = task.n_train
    rng = np.random.default_rng([seed, 91])
    paths: dict[str, dict[str, Any]] = {}
    with Utility(task, learner=learner, metric=metric, seed=seed) as utility:
        full = np.ones((1, n), dtype=bool)
        start = perf_counter()
        utility.evaluate(full)
        full_seconds = perf_counter() - start
        # Small tables time 32 subsets (the whole LOO costs little there); large ones a full batch.
        wide = min(ONE_OUT_BATCH * usable_cpus(), max(32, n // 20))
        batch = min(wide if utility.learner.batched else 2, n)
        out = rng.choice(n, size=batch, replace=False)
        masks = np.ones((batch, n), dtype=bool)
        masks[np.arange(batch), out] = False
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
                **truncation,
            }
        if getattr(utility.learner, "name", "") == "logreg" and metric in (
            "neg_log_loss",
            "neg_brier",
        ):
            start = perf_counter()
            influence(utility)
            paths["influence"] = {"seconds": perf_counter() - start}
    # Loading the compiled trees is paid once per process, not per bag; below their size the
    # trees are scikit-learn's, and compiling kernels no path uses would only cost time.
    if n >= TREES_MIN_ROWS:
        warm_up_trees()
    start = perf_counter()
    with warnings.catch_warnings():
        # A few bags leave some rows in every bag (no out-of-bag estimate): only timed here.
        warnings.simplefilter("ignore", RuntimeWarning)
        data_oob(task, OOB_MODELS, seed=seed)
    seconds = perf_counter() - start
    paths["data_oob"] = {
        "models": OOB_MODELS,
        "seconds": seconds,
        "per_model": seconds / OOB_MODELS,
    }
    paths["ame_estimation"] = _time_ame(task, learner, metric, seed)
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
    from dataworth.methods.shapley import _permutation

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


def _time_ame(task: Task, learner: str, metric: str, seed: int) -> dict[str, float]:
    """Seconds of AME's estimation alone (its fits already stored), on a small subsample."""
    from dataworth.engine.utility import Utility
    from dataworth.methods.ame import ame

    players = min(task.n_train, AME_PLAYERS)
    sub = task if players == task.n_train else task.subsample_train(players, seed=seed)
    with Utility(sub, learner=learner, metric=metric, seed=seed) as utility:
        ame(utility, n_subsets=AME_SUBSETS, fdr=0.1, seed=seed)  # the fits, stored
        start = perf_counter()
        ame(utility, n_subsets=AME_SUBSETS, fdr=0.1, seed=seed)
        seconds = perf_counter() - start
    return {"players": players, "subsets": AME_SUBSETS, "seconds": seconds}


def ame_estimation_seconds(timing: dict[str, float], players: int) -> float:
    """Seconds of AME's estimation for one target with its smallest useful number of subsets.

    Scaled from the timed subsample as the square of the players: each of them is a column of a
    cross-validated LASSO path whose passes also grow with the columns. Timings on this project's
    machines grew a little slower than that (about the power 1.8 from 400 to 2,000 players), so
    the estimate errs on the long side.
    """
    return timing["seconds"] * (max(players, 1) / timing["players"]) ** 2
