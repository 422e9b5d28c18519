"""Leave-one-out timings of the batched logistic regression against scikit-learn refits.

Run with ``python benchmarks/bench_logreg_solver.py [--quick]``. Prints, for each task, the time
to fit all ``n`` leave-one-out subsets in one batched call, the time scikit-learn takes to refit
``LogisticRegression(tol=1e-10, max_iter=10000)`` on them (all of them, or a sample of them
scaled up), the ratio, the worst gradient at the solutions, the largest probability difference
from scikit-learn on the refitted subsets, and the peak memory of the batched call.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from dataworth.learners.logreg.learner import BatchedLogisticRegression


def _loo_masks(n: int) -> np.ndarray:
    return ~np.eye(n, dtype=bool)


def _bench(name: str, X: np.ndarray, y: np.ndarray, n_sklearn: int, repeats: int) -> None:
    n = len(y)
    masks = _loo_masks(n)
    # Fresh instance per timing: the full-data reference solution is part of the cost.
    times = []
    for _ in range(repeats):
        model = BatchedLogisticRegression()
        start = time.perf_counter()
        params, n_iter, converged = model.fit_batch(X, y, 2, masks)
        times.append(time.perf_counter() - start)
    ours = min(times)

    tracemalloc.start()
    BatchedLogisticRegression().fit_batch(X, y, 2, masks)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=min(n_sklearn, n), replace=False))
    model = BatchedLogisticRegression()
    worst_gap = 0.0
    start = time.perf_counter()
    fitted = []
    for i in sample:
        sk = LogisticRegression(tol=1e-10, max_iter=10000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted.append(sk.fit(X[masks[i]], y[masks[i]]))
    sk_time = (time.perf_counter() - start) * n / len(sample)
    for i, sk in zip(sample, fitted, strict=True):
        ours_p = model.predict_proba(params[i : i + 1], X)[0]
        worst_gap = max(worst_gap, float(np.abs(ours_p - sk.predict_proba(X)).max()))
    grad = np.abs(model.mean_gradient(params, X, y, 2, masks)).max()

    print(
        f"{name}: n={n} d={X.shape[1]}  batched LOO {ours:.3f} s (best of {repeats}); "
        f"sklearn {sk_time:.2f} s ({len(sample)} refits{' scaled up' if len(sample) < n else ''});"
        f"  ratio {sk_time / ours:.0f}x\n"
        f"    all converged: {bool(converged.all())}, steps mean {n_iter.mean():.2f} "
        f"max {n_iter.max()}, worst mean-gradient {grad:.1e}, "
        f"max |proba - sklearn| {worst_gap:.1e}, peak traced memory {peak / 2**20:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the n=10,000 task")
    args = parser.parse_args()

    X, y = load_breast_cancer(return_X_y=True)
    X_train = StandardScaler().fit_transform(X)[:400]
    _bench("breast_cancer", X_train, y[:400], n_sklearn=400, repeats=5)

    if not args.quick:
        X, y = make_classification(
            n_samples=10_000, n_features=30, n_informative=10, random_state=0
        )
        X = StandardScaler().fit_transform(X)
        _bench("synthetic", X, y, n_sklearn=50, repeats=1)


if __name__ == "__main__":
    main()
