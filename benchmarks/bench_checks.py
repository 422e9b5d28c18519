"""The data checks on a large table: seconds, not minutes.

Builds a table of ``--rows`` rows (30 numeric columns, 5 categorical ones, one column that
restates the label, an increasing id), then times ``load_dataset`` with its data checks against
the same load with the checks switched off (the baseline, measured in the same run), and each
check alone. Prints the median of ``--repeats`` runs.

    python benchmarks/bench_checks.py            # 50,000 rows
    python benchmarks/bench_checks.py --rows 200000
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from unittest import mock

import numpy as np
import pandas as pd

from dataworth.data import checks, load_dataset
from dataworth.data import load as load_module
from dataworth.data.preprocess import encode_labels


def make_table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n_rows, 30)), columns=[f"x{j}" for j in range(30)])
    for j in range(5):
        frame[f"c{j}"] = rng.choice(list("abcdefgh"), size=n_rows)
    frame["y"] = np.where(frame["x0"] + frame["x1"] + rng.normal(size=n_rows) > 0, "yes", "no")
    frame["outcome"] = frame["y"].map({"yes": "kept", "no": "lost"})
    frame["record_id"] = np.arange(n_rows)
    return frame


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    frame = make_table(args.rows)
    warnings.simplefilter("ignore", checks.DataCheckWarning)

    def load():
        return load_dataset(frame=frame, target="y", seed=0)

    task = load()
    print(f"{args.rows} rows, {frame.shape[1] - 1} columns; findings:")
    for finding in task.metadata["checks"]:
        print(f"  {finding.severity}: {finding.check} {finding.columns}")
    with_checks = median_seconds(load, args.repeats)
    with mock.patch.object(load_module, "run_checks", lambda *a, **k: []):
        without = median_seconds(load, args.repeats)
    print(
        f"load_dataset with checks {with_checks:.2f} s, without {without:.2f} s "
        f"(ratio {with_checks / without:.2f}x; the checks add {with_checks - without:.2f} s)"
    )

    codes, _ = encode_labels(frame["y"])
    train = np.arange(int(0.7 * args.rows))
    test = np.arange(len(train), args.rows)
    features = frame.drop(columns="y")
    parts = {
        "identifiers": lambda: checks._identifier_findings(features),
        "constant columns": lambda: checks._constant_findings(features),
        "leakage": lambda: checks._leakage_findings(
            features.iloc[train], codes[train], 2, "y", {"record_id"}, 0
        ),
        "duplicate rows": lambda: checks._duplicate_findings(frame, train, test),
    }
    for name, run in parts.items():
        print(f"  {name}: {median_seconds(run, args.repeats):.2f} s")


if __name__ == "__main__":
    main()
