"""What every side of the peer benchmark shares: the budget, the tasks' file format, timing.

Imported by the scripts of all three environments (the project's, pyDVL's, OpenDataVal's), so
it uses only numpy and the standard library.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TASKS = ("breast_cancer", "synthetic")

# The same budget for every library.
PERMUTATIONS_SMALL = 10  # the course setting
PERMUTATIONS_LARGE = 30  # "a larger budget"
N_SUBSETS = 2000  # Banzhaf and AME: one model per subset
TMC_TOL = 0.01  # truncation tolerance, relative to |U(D)| (Ghorbani and Zou's 1%)
SEED = 0
METRIC = "accuracy"  # the peers' default


def load_task(name: str) -> dict[str, np.ndarray]:
    """The arrays written by ``make_tasks.py``."""
    with np.load(OUT / f"task_{name}.npz") as data:
        return {k: data[k] for k in data.files}


def write_run(library: str, task: str, runs: list[dict]) -> None:
    """Save one library's runs on one task as JSON (values as lists)."""
    path = OUT / f"values_{library}_{task}.json"
    path.write_text(json.dumps(runs))


class Stopwatch:
    """``with Stopwatch() as s: ...`` then ``s.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
