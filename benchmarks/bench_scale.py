"""Scale benchmark: every method on all rows of tables of 10,000 to 100,000 training rows.

Run with ``python benchmarks/bench_scale.py`` (defaults: ``--sizes 10000,50000 --classes 2,5``,
plus the mixed-type table); ``--quick`` for a small run (5,000 rows, fewer trees and permutations).

Tables:

* synthetic, ``make_classification`` with 20 features (10 informative), binary or 5 classes,
  ``n`` training rows and ``n / 4`` test rows;
* ``mixed``: shaped like a real table (7 numeric and 2 categorical columns, 5 unequal classes from
  40% down to 8%), through the product's own loader (imputation, scaling, one-hot encoding).

Methods, each on every training row (``logreg`` learner, ``neg_log_loss`` metric, the defaults):
exact LOO, influence functions (first order, the study's default), KNN-Shapley (k = 10),
Data-OOB (200 trees), TMC-Shapley (10 permutations), leave-group-out of 10 groups (a random
partition) and TMC of those groups. KNN-Shapley and Data-OOB use ``--jobs`` threads; exact LOO's
one-out solver runs its batches on threads of its own (every core the process may use), so
report CPU seconds beside wall seconds.

Each method runs in its own process after a warm-up on a tiny table (imports, Numba's compiled
kernels loaded from its cache), so its time excludes one-time costs and its peak memory (the
process's maximum resident set, which includes the Python process and the table) is its own.
Baselines are measured in the same run, in the same way: one scikit-learn ``LogisticRegression``
fit on all training rows (``newton-cholesky``, tol 1e-12: the solver whose solutions ours equal)
and one ``RandomForestClassifier`` of 200 bagged trees (``max_features=None``). Ratios:

* LOO: ``n`` refits (what refitting per row would cost) over our time, i.e. the speed-up;
* TMC and groups: refits of the subsets we fitted over our time;
* Data-OOB: one forest's time over ours (the issue asked for about 1: bagging at the cost of one
  forest; the compiled trees do better);
* influence and KNN-Shapley: our time in units of one refit.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

METHODS = ("loo", "influence", "knn", "data_oob", "tmc", "lgo", "group_tmc")
BASELINES = ("refit", "forest")


# ---------------------------------------------------------------------- tables


def _synthetic(n: int, classes: int, seed: int = 0):
    from sklearn.datasets import make_classification

    from dataworth import Task

    n_test = max(n // 4, 50)
    X, y = make_classification(
        n_samples=n + n_test,
        n_features=20,
        n_informative=10,
        n_redundant=4,
        n_classes=classes,
        random_state=seed,
    )
    return Task.from_arrays(X[:n], y[:n], X[n:], y[n:], name=f"synthetic {n} x 20, {classes}")


def _mixed(n: int, seed: int = 0):
    """7 numeric and 2 categorical columns, 5 classes of 40/25/15/12/8%, via the loader."""
    import pandas as pd
    from sklearn.datasets import make_classification

    import dataworth as dw

    total = n + max(n // 4, 50)
    X, y = make_classification(
        n_samples=total,
        n_features=9,
        n_informative=6,
        n_redundant=1,
        n_classes=5,
        weights=[0.40, 0.25, 0.15, 0.12, 0.08],
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(X[:, :7], columns=[f"num{j}" for j in range(7)])
    # Categorical columns carry signal (binned features) and noise (a share relabelled).
    for name, col, levels in (("soil", 7, 6), ("area", 8, 4)):
        codes = np.digitize(X[:, col], np.quantile(X[:, col], np.linspace(0, 1, levels + 1)[1:-1]))
        noise = rng.random(total) < 0.2
        codes[noise] = rng.integers(0, levels, noise.sum())
        frame[name] = np.array([f"{name}_{c}" for c in range(levels)])[codes]
    frame["label"] = np.array(["a", "b", "c", "d", "e"])[y]
    return dw.load_dataset(frame=frame, target="label", train_size=n, seed=seed)


def make_table(kind: str, n: int):
    if kind == "mixed":
        return _mixed(n)
    return _synthetic(n, int(kind))


# ---------------------------------------------------------------------- one measurement


def _groups(n: int, count: int = 10) -> dict[str, np.ndarray]:
    order = np.random.default_rng(0).permutation(n)
    return {f"g{g}": np.sort(part) for g, part in enumerate(np.array_split(order, count))}


def run_method(method: str, task, jobs: int, quick: bool) -> dict:
    """Run one method (or baseline) on all training rows; returns what it did."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    import dataworth as dw
    from dataworth.methods.influence import influence
    from dataworth.methods.knn.shapley import knn_shapley
    from dataworth.methods.trees.oob import data_oob

    trees = 50 if quick else 200
    perms = 3 if quick else 10
    utility = dw.Utility(task)
    if method == "refit":
        with threadpool_limits(limits=1, user_api="blas"):
            LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000, solver="newton-cholesky").fit(
                task.X_train, task.y_train
            )
        return {}
    if method == "forest":
        RandomForestClassifier(
            n_estimators=trees, max_features=None, bootstrap=True, random_state=0, n_jobs=jobs
        ).fit(task.X_train, task.y_train)
        return {}
    if method == "loo":
        result = dw.loo(utility)
    elif method == "influence":
        result = influence(utility)  # first order, the study's default
    elif method == "knn":
        result = knn_shapley(task, k=10, n_jobs=jobs)
    elif method == "data_oob":
        result = data_oob(task, trees, seed=0, n_jobs=jobs)
    elif method == "tmc":
        result = dw.tmc_shapley(utility, permutations=perms, seed=0)
    elif method == "lgo":
        result = dw.leave_group_out(utility, _groups(task.n_train))
    elif method == "group_tmc":
        result = dw.tmc_shapley(utility, permutations=perms, seed=0, groups=_groups(task.n_train))
    else:
        raise ValueError(method)
    return {
        "valued": int(np.isfinite(result.values).sum()),
        "fitted": int(result.n_fitted),
        "path": result.params.get("path", ""),
    }


def child(spec: dict) -> None:
    """Measure one (table, method) in this process and print one JSON line."""
    warm = make_table(spec["kind"], 400)
    if spec["method"] not in BASELINES:
        run_method(spec["method"], warm, spec["jobs"], True)  # imports and compiled kernels
        if spec["method"] == "data_oob":  # 400 rows take the per-bag path: load the trees too
            from dataworth.methods.trees.bagged import warm_up

            warm_up()
    task = make_table(spec["kind"], spec["n"])
    start, cpu = time.perf_counter(), _cpu_seconds()
    info = run_method(spec["method"], task, spec["jobs"], spec["quick"])
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info |= {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": peak_mb, "n_test": task.n_test}
    print(json.dumps(spec | info))


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (on a busy machine, wall time overstates work)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return spec | {"seconds": float("nan"), "peak_mb": float("nan"), "note": "timed out"}
    # Ratios use wall time: each side measured alike, in its own process, in the same run.
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["failed"])[-1]
        return spec | {"seconds": float("nan"), "peak_mb": float("nan"), "note": tail[:80]}
    return json.loads(lines[-1])


# ---------------------------------------------------------------------- report


def _ratio(row: dict, base: dict) -> str:
    refit, forest = base.get("refit"), base.get("forest")
    s, method = row["seconds"], row["method"]
    if not np.isfinite(s):
        return ""
    if method == "loo" and refit:
        return f"{row['valued'] * refit / s:,.0f}x faster than {row['valued']:,} refits"
    if method in ("tmc", "lgo", "group_tmc") and refit:
        return f"{row['fitted'] * refit / s:,.1f}x faster than {row['fitted']:,} refits"
    if method == "data_oob" and forest:
        return f"{forest / s:.1f}x faster than one forest ({forest:,.1f} s)"
    if method in ("influence", "knn") and refit:
        return f"{s / refit:.1f} refits"
    return ""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000", help="training rows, comma-separated")
    parser.add_argument("--classes", default="2,5", help="classes of the synthetic tables")
    parser.add_argument("--no-mixed", action="store_true", help="skip the mixed-type table")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--jobs", type=int, default=2, help="threads for Data-OOB, KNN-Shapley")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per method")
    parser.add_argument("--quick", action="store_true", help="5,000 rows, 50 trees, 3 perms")
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument(
        "--multiclass-tmc",
        action="store_true",
        help="also run TMC on multiclass tables (every prefix fitted on its own: slow)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return
    sizes = [5000] if args.quick else [int(s) for s in args.sizes.split(",")]
    kinds = args.classes.split(",") + ([] if args.no_mixed else ["mixed"])
    methods = args.methods.split(",")
    rows = []
    head = f"{'table':<10} {'rows':>7} {'method':<10} {'seconds':>9} {'cpu s':>8} {'peak MB':>8}"
    print(head + "  ratio")
    for n in sizes:
        for kind in kinds:
            base = {}
            baselines = ("refit", "forest") if "data_oob" in methods else ("refit",)
            for method in (*baselines, *methods):
                label = kind if kind == "mixed" else f"{kind} cls"
                if method in ("tmc", "group_tmc") and kind != "2" and not args.multiclass_tmc:
                    print(f"{label:<10} {n:>7} {method:<10} skipped: TMC's chains are binary only")
                    continue
                spec = {"kind": kind, "n": n, "method": method, "jobs": args.jobs}
                row = measure(spec | {"quick": args.quick}, args.timeout)
                rows.append(row)
                if method in BASELINES:
                    base[method] = row["seconds"]
                print(
                    f"{label:<10} {n:>7} {method:<10} {row['seconds']:>9.2f} "
                    f"{row.get('cpu_seconds', float('nan')):>8.1f} {row['peak_mb']:>8.0f}  "
                    f"{_ratio(row, base)} {row.get('note', '')}",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
