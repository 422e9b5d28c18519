"""The whole study at scale, and the same valuation on a local Dask cluster against serial.

Run with ``python benchmarks/bench_study_scale.py`` (``--quick`` for small sizes that finish in a
few minutes; ``--part study`` or ``--part dask`` for one part). Prints, in one run:

1. ``dataworth study`` end to end, as a user runs it, on synthetic CSV tables with 10,000 and
   50,000 training rows (20 features, binary, 30% more rows as the test split) and
   ``--budget 10m``: wall seconds, peak memory of the process, whether the study kept its budget,
   and which methods valued every training row (read back from the run folder's
   ``budget.json``, with each method's estimated against its actual seconds).
2. A local Dask cluster of 2 worker processes (1 thread each), reached through its scheduler
   address as ``--scheduler`` does, against serial: the generic path (random forest of 200
   trees, exact LOO of 8 points on 1,000 rows) and the batched path (logistic regression, exact
   LOO of all 10,000 rows); seconds, speed-up, and whether the values are identical.

The machine's load affects both sides of each comparison; say how loaded it was with the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification


def _table(n_train: int, seed: int = 0) -> pd.DataFrame:
    rows = round(n_train / 0.7)  # the study's default split keeps 70% for training
    X, y = make_classification(
        n_samples=rows, n_features=20, n_informative=10, flip_y=0.05, random_state=seed
    )
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame["y"] = np.where(y == 1, "yes", "no")
    return frame


def _child(argv: list[str]) -> None:
    """Run the CLI in this process, then print its wall time and peak memory as JSON."""
    from dataworth.cli import main

    start = time.perf_counter()
    code = 0
    try:
        main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH " + json.dumps({"seconds": seconds, "peak_mb": peak_mb, "code": code}))


def _study(n_train: int, budget: str, folder: Path, extra: list[str] | None = None) -> dict:
    csv = folder / f"synthetic_{n_train}.csv"
    if not csv.exists():
        _table(n_train).to_csv(csv, index=False)
    out = folder / f"run_{n_train}{'_' + '_'.join(extra).replace(':', '') if extra else ''}"
    argv = ["study", "--csv", str(csv), "--target", "y", "--budget", budget, "--out", str(out)]
    argv += extra or []
    done = subprocess.run(
        [sys.executable, __file__, "--child", *argv], capture_output=True, text=True, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"the study failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    outcome = json.loads(line[len("BENCH ") :])
    outcome["out"] = out
    outcome["budget"] = json.loads((out / "budget.json").read_text()) if out.exists() else None
    outcome["stderr_lines"] = len(done.stderr.splitlines())
    return outcome


def part_study(sizes: list[int], budget: str, extra: list[str] | None = None) -> None:
    from dataworth.study.config import parse_duration

    flags = " ".join(["--budget", budget, *(extra or [])])
    print(f"\n1. dataworth study {flags}, synthetic binary tables (20 features)")
    limit = parse_duration(budget)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            outcome = _study(n, budget, Path(tmp), extra)
            kept = "kept" if outcome["seconds"] <= limit * 1.05 else "NOT kept"
            print(
                f"   {n:>6} training rows: {outcome['seconds']:.0f} s (budget {limit:g} s, "
                f"{kept}), peak memory {outcome['peak_mb']:.0f} MB, exit code {outcome['code']}, "
                f"{outcome['stderr_lines']} progress lines"
            )
            budget_data = outcome["budget"]
            if budget_data is None:
                continue
            print(
                f"      data, baseline, cost study: {budget_data['spent_seconds']:.0f} s; "
                f"kept back for figures and report: {budget_data['reserve_seconds']:.0f} s"
            )
            for m in budget_data["methods"]:
                actual = "-" if m["actual"] is None else f"{m['actual']:.1f}"
                valued = m["valued"] or m["note"]
                print(
                    f"      {m['label']:<26} est. {m['estimate']:8.1f} s  given "
                    f"{m['allotted']:7.1f} s  took {actual:>7} s  {valued}"
                )


def _loo_values(task, learner: str, points, backend: str, scheduler: str | None):
    from dataworth.engine.utility import Utility
    from dataworth.methods.loo import loo

    with Utility(task, learner=learner, backend=backend, scheduler=scheduler) as utility:
        start = time.perf_counter()
        result = loo(utility, points=points)
        return result.values, time.perf_counter() - start


def part_dask(generic_rows: int, batched_rows: int) -> None:
    import logging

    from distributed import LocalCluster

    import dataworth as dw

    print("\n2. a local Dask cluster of 2 workers (1 thread each) against serial")
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    try:
        generic = dw.Task.from_arrays(*_split(generic_rows), name=f"synthetic_{generic_rows}")
        batched = dw.Task.from_arrays(*_split(batched_rows), name=f"synthetic_{batched_rows}")
        points = generic.train_ids[:8]
        for label, task, learner, chosen in (
            ("generic path: random forest, LOO of 8 points", generic, "random_forest", points),
            (
                f"batched path: logistic regression, LOO of all {batched_rows}",
                batched,
                "logreg",
                None,
            ),
        ):
            serial, t_serial = _loo_values(task, learner, chosen, "serial", None)
            on_dask, t_dask = _loo_values(task, learner, chosen, "dask", cluster.scheduler_address)
            same = np.array_equal(serial, on_dask)
            print(
                f"   {label} ({task.n_train} rows): serial {t_serial:.1f} s, Dask {t_dask:.1f} s "
                f"({t_serial / t_dask:.2f}x); values identical: {same} "
                f"(max difference {np.max(np.abs(serial - on_dask)):.1e})"
            )
    finally:
        cluster.close()


def _split(n_train: int):
    frame = _table(n_train, seed=1)
    X = frame.drop(columns="y").to_numpy()
    y = (frame["y"] == "yes").to_numpy().astype(int)
    X = (X - X[:n_train].mean(axis=0)) / X[:n_train].std(axis=0)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a short budget")
    parser.add_argument("--part", choices=("study", "dask", "all"), default="all")
    parser.add_argument("--sizes", help="training rows of the study part, e.g. 10000,50000")
    parser.add_argument("--baselines", help="passed to dataworth study (default: every model)")
    args = parser.parse_args()
    if args.part in ("study", "all"):
        extra = ["--baselines", args.baselines] if args.baselines else None
        sizes = [2000] if args.quick else [10_000, 50_000]
        if args.sizes:
            sizes = [int(x) for x in args.sizes.split(",")]
        part_study(sizes, "90s" if args.quick else "10m", extra)
    if args.part in ("dask", "all"):
        part_dask(300 if args.quick else 1000, 2000 if args.quick else 10_000)


if __name__ == "__main__":
    main()
