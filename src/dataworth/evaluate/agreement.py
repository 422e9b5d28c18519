"""Agreement of valuations: rank correlations between methods, and with exact Shapley values."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.methods.compare import compare_values
from dataworth.methods.result import ValuationResult
from dataworth.methods.shapley import exact_shapley

__all__ = ["EXACT_MAX_PLAYERS", "agreement_table", "exact_agreement", "tiny_task"]

#: Exact Shapley enumerates 2^n subsets; 14 players is 16,384 fits, seconds with batched models.
EXACT_MAX_PLAYERS = 14


def agreement_table(
    results: Mapping[str, ValuationResult], statistic: str = "spearman"
) -> pd.DataFrame:
    """Square table of rank correlations between every pair of valuations.

    Parameters
    ----------
    results : mapping of str to ValuationResult
        Valuations of the same players (matched by id through :func:`compare_values`).
    statistic : {"spearman", "kendall", "top_overlap", "bottom_overlap"}, default="spearman"

    Returns
    -------
    DataFrame
        Indexed and columned by method name; the diagonal is 1.
    """
    names = list(results)
    table = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            value = compare_values(results[a], results[b])[statistic]
            table.loc[a, b] = table.loc[b, a] = value
    table.index.name = "method"
    return table


def tiny_task(task: Task, n_players: int = 12, seed: int = 0) -> Task:
    """A stratified subsample of ``n_players`` training rows, small enough for exact Shapley.

    Flipped rows that fall into the subsample stay flipped; the test rows are unchanged.
    """
    if not 2 <= n_players <= EXACT_MAX_PLAYERS:
        raise DataworthError(
            f"Exact Shapley needs between 2 and {EXACT_MAX_PLAYERS} players; got {n_players}."
        )
    if task.n_train <= n_players:
        return task
    return task.subsample_train(n_players, seed=seed)


def exact_agreement(
    make_utility: Callable[[Task], object],
    task: Task,
    methods: Mapping[str, Callable[[object, Task], ValuationResult]],
) -> tuple[pd.DataFrame, ValuationResult]:
    """Rank agreement of each method with exact Shapley values on a task with few rows.

    Parameters
    ----------
    make_utility : callable
        ``make_utility(task)`` -> a fresh Utility (same learner and metric as the evaluation).
    task : Task
        At most :data:`EXACT_MAX_PLAYERS` training rows (see :func:`tiny_task`).
    methods : mapping of str to callable
        ``run(utility, task)`` -> ValuationResult, one per method.

    Returns
    -------
    (DataFrame, ValuationResult)
        One row per method with ``spearman`` and ``kendall`` against exact Shapley (NaN where
        either valuation is constant, or the method raised, with its message in ``note``), and
        the exact result.
    """
    if task.n_train > EXACT_MAX_PLAYERS:
        raise DataworthError(
            f"Exact Shapley of {task.n_train} rows would need 2^{task.n_train} fits; use at most "
            f"{EXACT_MAX_PLAYERS} rows (tiny_task)."
        )
    exact = exact_shapley(make_utility(task))
    rows = []
    for name, run in methods.items():
        try:
            result = run(make_utility(task), task)
            agreement = compare_values(result, exact)
            rows.append(
                {
                    "method": name,
                    "spearman": agreement["spearman"],
                    "kendall": agreement["kendall"],
                    "note": "",
                }
            )
        except DataworthError as error:  # a method that cannot run on so few rows says why
            rows.append({"method": name, "spearman": np.nan, "kendall": np.nan, "note": str(error)})
    return pd.DataFrame(rows).set_index("method"), exact
