"""What AME's bootstrap intervals cost: their time against the run without them.

Each case runs :func:`dataworth.ame` twice on a fresh utility: without intervals (the
baseline: fits and the cross-validated LASSO), then with them (the fits come from the
utility's store, so only the regression and the bootstrap run again). Printed: the
bootstrap's seconds, the baseline's, and their ratio.

Run: ``PYTHONPATH=src python benchmarks/bench_ame_intervals.py [--quick]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import make_classification

from dataworth.data.load import load_dataset
from dataworth.data.task import Task
from dataworth.engine.utility import Utility
from dataworth.methods.ame import ame


def _case(name: str, task: Task, m: int, fdr: float | None) -> None:
    with Utility(task, learner="logreg", metric="neg_log_loss", seed=0) as u:
        start = time.perf_counter()
        base = ame(u, n_subsets=m, fdr=fdr, seed=0, intervals=False)
        baseline = time.perf_counter() - start
        full = ame(u, n_subsets=m, fdr=fdr, seed=0, intervals=True)
    assert np.array_equal(base.values, full.values)
    boot = full.timings["intervals"]
    width = np.nanmedian(full.ci_high - full.ci_low)
    print(
        f"{name}: n {task.n_train}, m {m}, knockoffs {fdr is not None}, "
        f"resamples {full.params['n_boot']}: bootstrap {boot:.2f} s, AME without intervals "
        f"{baseline:.2f} s (fits {base.timings['evaluate']:.2f} s, LASSO "
        f"{base.timings['regress']:.2f} s), ratio {boot / baseline:.2f}; median width "
        f"{width:.4f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the breast cancer case only")
    args = parser.parse_args()
    _case("breast cancer", load_dataset("breast_cancer", seed=0), 4000, 0.1)
    if not args.quick:
        x, y = make_classification(
            n_samples=2500, n_features=10, n_informative=5, flip_y=0.1, random_state=0
        )
        task = Task.from_arrays(x[:2000], y[:2000], x[2000:], y[2000:])
        _case("2,000 players", task, 4000, None)


if __name__ == "__main__":
    main()
