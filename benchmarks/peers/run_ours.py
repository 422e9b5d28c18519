"""dataworth's side of the peer benchmark (project venv): the same methods and budget."""

from __future__ import annotations

import numpy as np
from common import (
    METRIC,
    N_SUBSETS,
    PERMUTATIONS_LARGE,
    PERMUTATIONS_SMALL,
    SEED,
    TASKS,
    TMC_TOL,
    Stopwatch,
    load_task,
    write_run,
)

import dataworth as dw


def _warm_up(task: dw.Task) -> None:
    """Pay one-time process costs before timing, as the peers pay theirs at import: loading the
    compiled chain solver (Numba's on-disk cache) takes about 0.25 s at its first use."""
    with dw.Utility(task, learner="logreg", metric=METRIC, seed=SEED) as u:
        dw.tmc_shapley(u, permutations=1, tol=TMC_TOL, seed=SEED)


def _task(name: str) -> dw.Task:
    arrays = load_task(name)
    return dw.Task.from_arrays(
        arrays["X_train"], arrays["y_train"], arrays["X_test"], arrays["y_test"]
    )


def main() -> None:
    tasks = {name: _task(name) for name in TASKS}
    _warm_up(next(iter(tasks.values())))
    for name, task in tasks.items():
        methods = {
            "loo": lambda u: dw.loo(u),
            "tmc_10": lambda u: dw.tmc_shapley(
                u, permutations=PERMUTATIONS_SMALL, tol=TMC_TOL, seed=SEED
            ),
            "tmc_large": lambda u: dw.tmc_shapley(
                u, permutations=PERMUTATIONS_LARGE, tol=TMC_TOL, seed=SEED
            ),
            "banzhaf": lambda u: dw.banzhaf(u, n_subsets=N_SUBSETS, seed=SEED),
            "ame": lambda u: dw.ame(u, n_subsets=N_SUBSETS, seed=SEED),
        }
        runs = []
        for method, run in methods.items():
            # A fresh utility per method: its fits are its own, none come from another's cache.
            with dw.Utility(task, learner="logreg", metric=METRIC, seed=SEED) as u:
                with Stopwatch() as watch:
                    result = run(u)
            values = np.empty(task.n_train)
            values[result.extra.get("position", np.arange(task.n_train))] = result.values
            runs.append(
                {
                    "method": method,
                    "values": values.tolist(),
                    "seconds": watch.seconds,
                    "fits": int(result.n_fitted),
                    "note": "",
                }
            )
            print(f"dataworth {name} {method}: {watch.seconds:.2f} s, {result.n_fitted} fits")
        write_run("dataworth", name, runs)


if __name__ == "__main__":
    main()
