"""AME's submodel fits on one thread against every usable core, in the same run.

Run with ``python benchmarks/bench_fit_threads.py [--repeats 3] [--subsets 4000]``. The task is
``bench_ame.py``'s 2,000-row binary task (make_classification, 10 features, logistic regression,
neg_log_loss). Each repeat runs ``ame(u, n_subsets, seed=0, estimator="moment")`` from a fresh
``Utility`` twice, alternating: once with the fits kept to one thread
(``dataworth.machine.thread_share(1)``) and once with the default (the batched logistic
regression solves a batch's chunks on every usable core). Prints each run's fit time (AME's
``evaluate`` phase) and process CPU time, the medians, their ratio, and whether the two runs'
values are the same bits (they must be: a subset's arithmetic does not depend on its thread).
The ratio is same-run; on a machine shared with other work it understates an idle machine's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from dataworth.engine.utility import Utility
from dataworth.machine import thread_share, usable_cpus
from dataworth.methods.ame import ame


def _task(n_train: int):
    # bench_ame.py's _scale_task, imported by path so this script runs from any directory.
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_ame", Path(__file__).with_name("bench_ame.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._scale_task(n_train)


def _run(task, subsets: int, threads: int | None) -> tuple[float, float, np.ndarray]:
    with thread_share(threads), Utility(task, learner="logreg", metric="neg_log_loss") as u:
        cpu = time.process_time()
        result = ame(u, n_subsets=subsets, seed=0, estimator="moment")
        cpu = time.process_time() - cpu
    return result.timings["evaluate"], cpu, result.values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--subsets", type=int, default=4000)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    task = _task(args.rows)
    _run(task, 64, None)  # library scans and first calls, outside the timings
    runs: dict[str, list[tuple[float, float]]] = {"1 thread": [], "all cores": []}
    values: dict[str, np.ndarray] = {}
    print(f"AME fits, {args.rows} rows, {args.subsets} subsets; {usable_cpus()} usable CPUs")
    for repeat in range(args.repeats):
        for label, threads in (("1 thread", 1), ("all cores", None)):
            fits, cpu, values[label] = _run(task, args.subsets, threads)
            runs[label].append((fits, cpu))
            print(
                f"  repeat {repeat + 1}, {label:<9}: fits {fits:6.2f} s, process CPU {cpu:6.2f} s"
            )
    one = statistics.median(fits for fits, _ in runs["1 thread"])
    every = statistics.median(fits for fits, _ in runs["all cores"])
    same = np.array_equal(values["1 thread"].view(np.int64), values["all cores"].view(np.int64))
    print(
        f"median fits: 1 thread {one:.2f} s, all cores {every:.2f} s: {one / every:.2f}x; "
        f"values the same bits: {same}"
    )


if __name__ == "__main__":
    main()
