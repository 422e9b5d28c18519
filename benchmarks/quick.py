"""The headline figures in a few minutes: run it before closing a performance change.

Run with ``python benchmarks/quick.py`` (about 3 minutes on the project's 2-core machine;
``--skip-large`` leaves out the 50,000-row LOO). Each line times ours and a baseline in the same
run and prints their ratio, beside the figure recorded in ``benchmarks/README.md`` (the
``RECORDED`` table below mirrors it: update both together). It does not gate CI.

1. Exact LOO of all 400 breast-cancer rows (logistic regression, neg_log_loss, median of 3
   runs from a fresh utility) against refitting scikit-learn's Newton solver (tol 1e-12) per
   row, one BLAS thread for both.
2. TMC-Shapley, 10 permutations of breast cancer (accuracy) against the same algorithm fitting
   scikit-learn per prefix, as pyDVL's TMC loop does.
3. AME with 4,000 subsets on 2,000 and 10,000 binary rows (``dw.ame``'s defaults, the path it
   chooses): against OpenDataVal's recipe, one scikit-learn fit per subset and ``LassoCV``,
   timed here on 100 subsets and scaled to 4,000 (the fits) and on the real design (LassoCV,
   2,000 rows only).
4. Binary exact LOO of every row at 50,000 rows (35,000 training rows, 20 features) against a
   scikit-learn refit loop timed on 3 rows and scaled.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LassoCV, LogisticRegression
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))

import dataworth as dw
from bench_loo import _sklearn_loo
from bench_tmc import _median_time, sklearn_tmc

RECORDED = {
    "loo400": "0.04 s, 55.6x (2026-12-07); 0.024-0.033 s, 53x-69x (2026-11-24)",
    "tmc": "0.03 s, 48.4x (2026-12-07); 0.029 s, 46.6x-46.9x (2026-11-24)",
    "ame2000": "2.38 s, 10.5x the recipe (2026-12-07); 4.99 s, 22.0x OpenDataVal (2026-11-29)",
    "ame10000": "18.9 s by default (2026-12-07); 264 s flat by default (issue 26)",
    "loo50000": "24.3 s binary, 37.2x (2026-12-07); 103 s (2026-11-29)",
}


def _line(name: str, ours: float, base: float | None, what: str) -> None:
    ratio = f"{base / ours:6.1f}x" if base else "   -  "
    based = f"{base:8.2f} s" if base else "        -"
    print(f"{name:<10} ours {ours:8.2f} s   {what:<34} {based}   {ratio}")
    print(f"{'':<10} recorded: {RECORDED[name]}")


def loo_400() -> None:
    task = dw.load_dataset("breast_cancer", train_size=400, seed=0)
    warm = dw.load_dataset("breast_cancer", train_size=40, seed=1)
    dw.loo(dw.Utility(warm, learner="logreg", metric="neg_log_loss"))
    LogisticRegression(solver="newton-cholesky").fit(warm.X_train, warm.y_train)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        dw.loo(dw.Utility(task, learner="logreg", metric="neg_log_loss"))
        times.append(time.perf_counter() - start)
    with threadpool_limits(limits=1, user_api="blas"):
        _, base = _sklearn_loo(task, tol=1e-12, solver="newton-cholesky")
    _line("loo400", float(np.median(times)), base, "scikit-learn refit per row")


def tmc() -> None:
    task = dw.load_dataset("breast_cancer", train_size=400, seed=0)
    warm = dw.load_dataset("breast_cancer", train_size=40, seed=1)
    dw.tmc_shapley(dw.Utility(warm, metric="accuracy"), permutations=1, seed=0)
    sklearn_tmc(warm, "accuracy", 1, 0.01, 0)
    ours, _ = _median_time(task, "accuracy", 10, chains=True)
    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        sklearn_tmc(task, "accuracy", 10, 0.01, 0)
        base = time.perf_counter() - start
    _line("tmc", ours, base, "scikit-learn fit per prefix")


def _binary(n_train: int, n_test: int, features: int, seed: int = 0) -> dw.Task:
    X, y = make_classification(
        n_samples=n_train + n_test,
        n_features=features,
        n_informative=features // 2,
        flip_y=0.05,
        random_state=seed,
    )
    return dw.Task.from_arrays(X[:n_train], y[:n_train], X[n_train:], y[n_train:])


def _opendataval_recipe(task: dw.Task, subsets: int, design=None) -> float:
    """Seconds of one scikit-learn fit per subset (100 timed, scaled) and LassoCV."""
    rng = np.random.default_rng(0)
    timed = 100
    start = time.perf_counter()
    for _ in range(timed):
        mask = rng.random(task.n_train) < rng.choice([0.2, 0.4, 0.6, 0.8])
        LogisticRegression(max_iter=1000).fit(task.X_train[mask], task.y_train[mask])
    seconds = (time.perf_counter() - start) * subsets / timed
    if design is not None:
        x, y = design
        start = time.perf_counter()
        LassoCV(cv=5, alphas=100).fit(x, y)
        seconds += time.perf_counter() - start
    return seconds


def ame(n_train: int) -> None:
    task = _binary(n_train, 500, 20 if n_train > 2000 else 10)
    u = dw.Utility(task, learner="logreg", metric="neg_log_loss")
    start = time.perf_counter()
    result = dw.ame(u, n_subsets=4000, seed=0)
    ours = time.perf_counter() - start
    design = None
    if n_train <= 2000:  # LassoCV on the real design: players x 4,000 subsets
        rng = np.random.default_rng(1)
        p = rng.choice([0.2, 0.4, 0.6, 0.8], size=4000)
        masks = rng.random((4000, n_train)) < p[:, None]
        x = np.where(masks, 1 / p[:, None], -1 / (1 - p[:, None]))
        design = (x, rng.normal(size=4000))
    with threadpool_limits(limits=1, user_api="blas"):
        base = _opendataval_recipe(task, 4000, design)
    path = result.params.get("path", "flat")
    _line(f"ame{n_train}", ours, base, f"OpenDataVal's recipe ({path} path)")


def loo_large() -> None:
    task = _binary(35_000, 15_000, 20)
    u = dw.Utility(task, learner="logreg", metric="neg_log_loss")
    start = time.perf_counter()
    dw.loo(u)
    ours = time.perf_counter() - start
    with threadpool_limits(limits=1, user_api="blas"):
        start = time.perf_counter()
        for i in range(3):
            keep = np.ones(task.n_train, bool)
            keep[i] = False
            LogisticRegression(solver="newton-cholesky", tol=1e-12).fit(
                task.X_train[keep], task.y_train[keep]
            )
        base = (time.perf_counter() - start) / 3 * (task.n_train + 1)
    _line("loo50000", ours, base, "scikit-learn refit per row (scaled)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true", help="leave out LOO at 50,000 rows")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"{'figure':<10} {'':5}{'':8}     {'baseline, same run':<34} {'':>10}   ratio")
    loo_400()
    tmc()
    ame(2000)
    ame(10_000)
    if not args.skip_large:
        loo_large()
    print(f"({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
