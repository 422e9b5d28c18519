"""TMC-Shapley benchmark: the engine against the same algorithm refitting scikit-learn per prefix.

Run with ``python benchmarks/bench_tmc.py`` (``--quick`` for a smaller run). Prints, in one run:

1. breast cancer, 400 training rows, logistic regression, 10 permutations, for accuracy and
   negative log-loss: ``dw.tmc_shapley`` against a plain loop that walks the same permutations
   with the same truncation rule and refits ``sklearn.linear_model.LogisticRegression`` (tightly
   converged) on every prefix; times, fits made by each, the ratio (target: at least 30x), and the
   largest difference of the values. Ours runs with chains (each prefix warm-started from the one
   before, compiled with Numba: the ``fast`` extra) and, for comparison, with every prefix fitted
   independently from the full-data solution (what runs without Numba).
2. 10 permutations on synthetic tasks of 1,000 to 10,000 training rows: time, fits and peak
   memory, to show how the cost grows (target at 10,000 rows: under 10 minutes, under 4 GB).
3. Multiclass chains: 10 permutations on a synthetic 5-class task of 2,000 training rows and 20
   features, with chains (the compiled softmax chain solver) against every prefix fitted
   independently, in the same run: wall and CPU seconds, the ratio, and the largest difference of
   the values. ``--part multiclass`` runs this part alone.
4. ``--part tables`` only (not in the default run): seconds per TMC permutation on the 5-class
   tables of ``benchmarks/tables.py`` (``mixed5``, ``numeric5``; ``--rows``, 70% of them train),
   wall and CPU, chains on one thread and on every usable core.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import dataworth as dw
from dataworth.learners.degenerate import is_degenerate, prior_predictions
from dataworth.learners.logreg.chains import chain_kernel
from dataworth.learners.logreg.learner import BatchedLogisticRegression
from dataworth.methods.shapley.tmc import _permutation
from dataworth.metrics import get_metric


def _sklearn_score(task, mask, metric, tight: bool = True) -> float:
    if is_degenerate(task.y_train, mask[None], task.n_classes)[0]:
        proba, labels = prior_predictions(task.y_train, mask[None], task.n_classes, task.n_test)
        return float(metric(proba, labels, task.y_test)[0])
    if tight:
        model = LogisticRegression(C=1.0, tol=1e-12, max_iter=1000, solver="newton-cholesky")
    else:
        model = LogisticRegression(C=1.0)  # scikit-learn's defaults: lbfgs, tol 1e-4
    model.fit(task.X_train[mask], task.y_train[mask])
    proba = np.zeros((task.n_test, task.n_classes))
    proba[:, model.classes_] = model.predict_proba(task.X_test)
    return float(metric(proba[None], proba.argmax(1)[None], task.y_test)[0])


def sklearn_tmc(
    task, metric_name: str, permutations: int, tol: float, seed: int, tight: bool = True
):
    """Ghorbani and Zou's Algorithm 1, written plainly: one scikit-learn fit per prefix."""
    metric = get_metric(metric_name)
    n = task.n_train
    full = _sklearn_score(task, np.ones(n, bool), metric, tight)
    empty = _sklearn_score(task, np.zeros(n, bool), metric, tight)
    fits = 2
    total = np.zeros(n)
    for t in range(permutations):
        order = _permutation(seed, t, n)
        mask = np.zeros(n, bool)
        previous = empty
        for j, player in enumerate(order):
            if abs(full - previous) < tol * abs(full):
                break
            mask[player] = True
            value = _sklearn_score(task, mask, metric, tight) if j < n - 1 else full
            fits += j < n - 1
            total[player] += value - previous
            previous = value
    return total / permutations, fits


def part_breast_cancer(permutations: int) -> None:
    task = dw.load_dataset("breast_cancer", train_size=400, seed=0)
    print(f"1. Breast cancer, 400 training rows, {permutations} permutations, tol 0.01")
    # One-time process costs are paid before timing, for both sides; ours is the median of 3
    # runs, each from a fresh Utility (so it includes the full-data fit).
    warm = dw.load_dataset("breast_cancer", train_size=40, seed=1)
    dw.tmc_shapley(dw.Utility(warm, metric="accuracy"), permutations=1, seed=0)
    sklearn_tmc(warm, "accuracy", 1, 0.01, 0)
    if chain_kernel() is None:
        print("   (Numba is not installed: both 'dataworth' lines fit every prefix independently)")
    for metric in ("accuracy", "neg_log_loss"):
        t_ours, ours = _median_time(task, metric, permutations, chains=True)
        t_alone, alone = _median_time(task, metric, permutations, chains=False)
        # BLAS on one thread for scikit-learn as for ours (threaded BLAS on these small
        # problems mostly waits on a shared machine).
        with threadpool_limits(limits=1, user_api="blas"):
            start = time.perf_counter()
            ref, ref_fits = sklearn_tmc(task, metric, permutations, 0.01, 0)
            t_ref = time.perf_counter() - start
            start = time.perf_counter()
            loose, loose_fits = sklearn_tmc(task, metric, permutations, 0.01, 0, tight=False)
            t_loose = time.perf_counter() - start
        print(
            f"   {metric:13s} dataworth {t_ours:6.3f} s ({ours.n_fitted} fits, "
            f"{ours.n_evaluations} used)\n"
            f"   {'':13s} dataworth, prefixes fitted independently {t_alone:6.3f} s "
            f"({alone.n_fitted} fits)   max |diff| {np.abs(ours.values - alone.values).max():.1e}\n"
            f"   {'':13s} sklearn newton-cholesky tol 1e-12 per prefix {t_ref:6.2f} s "
            f"({ref_fits} fits)   ratio {t_ref / t_ours:5.1f}x   "
            f"max |diff| {np.abs(ours.values - ref).max():.1e}\n"
            f"   {'':13s} sklearn defaults (lbfgs, tol 1e-4) per prefix {t_loose:6.2f} s "
            f"({loose_fits} fits)   ratio {t_loose / t_ours:5.1f}x   "
            f"max |diff| {np.abs(ours.values - loose).max():.1e}"
        )
    print(
        "   (target ratio >= 30x; 'used' counts the prefixes the algorithm needed, 'fits' "
        "includes prefixes fitted past a truncation point in the same batch)"
    )


def _median_time(task, metric: str, permutations: int, chains: bool):
    """Median of 3 runs, each from a fresh Utility (so the full-data fit is included)."""
    times = []
    for _ in range(3):
        learner = BatchedLogisticRegression()
        learner.supports_chains = chains  # False: the engine never passes chains to it
        start = time.perf_counter()
        result = dw.tmc_shapley(
            dw.Utility(task, learner=learner, metric=metric), permutations=permutations, seed=0
        )
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def _large_child(n: int, permutations: int) -> None:
    X, y = make_classification(
        n_samples=n + 2000, n_features=30, n_informative=10, flip_y=0.05, random_state=0
    )
    task = dw.Task.from_arrays(X[:n], y[:n], X[n:], y[n:], name=f"synthetic_{n}")
    start = time.perf_counter()
    result = dw.tmc_shapley(dw.Utility(task, metric="accuracy"), permutations=permutations)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": peak_mb,
                "fits": result.n_fitted,
                "truncated": result.params["truncated_share"],
            }
        )
    )


def part_scaling(sizes, permutations: int) -> None:
    print(f"2. Synthetic tasks, 30 features, accuracy, {permutations} permutations, tol 0.01")
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), str(permutations)],
            capture_output=True,
            text=True,
            check=True,
        )
        s = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"   n = {n:6d}: {s['seconds']:7.1f} s, {s['fits']:7d} fits, "
            f"{s['truncated']:.0%} of prefixes truncated, peak {s['peak_mb']:.0f} MB"
        )
    print("   (target at n = 10,000: under 600 s and 4,096 MB)")


def part_multiclass(n: int, permutations: int) -> None:
    X, y = make_classification(
        n_samples=n + 1000,
        n_features=20,
        n_informative=10,
        n_classes=5,
        flip_y=0.05,
        random_state=0,
    )
    task = dw.Task.from_arrays(X[:n], y[:n], X[n:], y[n:], name=f"synthetic_{n}_5_classes")
    print(f"3. Multiclass chains: synthetic, {n} rows, 5 classes, 20 features, accuracy, ")
    print(f"   {permutations} permutations, tol 0.01")
    if chain_kernel() is None:
        print("   (Numba is not installed: chains are ignored, both lines fit independently)")
    # Compile (or load) the chain solvers and pay the library scans before timing.
    warm = dw.Task.from_arrays(X[:60], y[:60], X[n:], y[n:], name="warm")
    dw.tmc_shapley(dw.Utility(warm), permutations=1, seed=0)
    timings = {}
    for chains in (True, False):
        learner = BatchedLogisticRegression()
        learner.supports_chains = chains
        wall, cpu = time.perf_counter(), time.process_time()
        result = dw.tmc_shapley(dw.Utility(task, learner=learner), permutations=permutations)
        timings[chains] = (time.perf_counter() - wall, time.process_time() - cpu, result)
    (w1, c1, r1), (w0, c0, r0) = timings[True], timings[False]
    print(f"   chains              {w1:7.1f} s (CPU {c1:7.1f} s), {r1.n_fitted} fits")
    print(f"   prefixes alone      {w0:7.1f} s (CPU {c0:7.1f} s), {r0.n_fitted} fits")
    print(
        f"   ratio {w0 / w1:.1f}x wall, {c0 / c1:.1f}x CPU; "
        f"max |diff| of the values {np.abs(r1.values - r0.values).max():.1e}"
    )


def part_tables(rows: list[int], permutations: int) -> None:
    """Seconds per permutation on the 5-class tables of ``benchmarks/tables.py``."""
    from dataworth.machine import thread_share
    from tables import make_frame

    print(f"4. 5-class tables (benchmarks/tables.py), neg_log_loss, {permutations} permutation(s)")
    print("   per permutation, tol 0.01; chains fitted on one thread and on every usable core")
    warm = dw.load_dataset("wine", seed=0)
    dw.tmc_shapley(dw.Utility(warm, metric="neg_log_loss"), permutations=1, seed=0)
    for kind in ("mixed5", "numeric5"):
        for n in rows:
            task = dw.load_dataset(frame=make_frame(kind, n), target="label", seed=0)
            line = f"   {kind:8s} {n:6d} rows: {task.n_train} train x {task.n_features}, "
            line += f"{task.n_test} test"
            for threads in (1, None):
                utility = dw.Utility(task, metric="neg_log_loss")
                utility.evaluate(np.ones((1, task.n_train), bool))  # the full-data fit
                with thread_share(threads):
                    wall, cpu = time.perf_counter(), time.process_time()
                    result = dw.tmc_shapley(utility, permutations=permutations, seed=0)
                    wall = (time.perf_counter() - wall) / permutations
                    cpu = (time.process_time() - cpu) / permutations
                label = "1 thread" if threads == 1 else "threads"
                line += f"; {label} {wall:6.1f} s (CPU {cpu:6.1f} s)"
            print(line + f"; {result.n_fitted} fits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--part", choices=("all", "multiclass", "tables"), default="all", help="run one part only"
    )
    parser.add_argument(
        "--permutations", type=int, default=None, help="for --part multiclass (10) or tables (1)"
    )
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[7_143, 20_000, 54_000],
        help="table rows for --part tables (70%% train)",
    )
    args = parser.parse_args()
    if args.child:
        _large_child(*args.child)
        return
    if args.part == "multiclass":
        part_multiclass(2000, args.permutations or 10)
        return
    if args.part == "tables":
        part_tables(args.rows, args.permutations or 1)
        return
    part_breast_cancer(3 if args.quick else 10)
    part_scaling([1000, 2000] if args.quick else [1000, 3000, 10_000], 10)
    part_multiclass(500 if args.quick else 2000, 3 if args.quick else 10)


if __name__ == "__main__":
    main()
