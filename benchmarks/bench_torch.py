"""PyTorch learner benchmark: submodels per second, side by side against one at a time.

Run with ``python benchmarks/bench_torch.py`` (``--quick`` for a smaller run; ``--poison`` adds
the poisoned-digits experiment with the CNN). Prints, for the MLP and the CNN on scikit-learn's
digits (training rows as in the AME experiment), the submodels trained and predicted per second:

* side by side (``torch.func`` ``vmap``) with ``K`` = 1, 16, 64, 256 submodels per call;
* one at a time (the same models, same seeds, same minibatches, plain autograd), ``K`` = 16;

and the ratio of each side-by-side rate to the one-at-a-time rate. Every submodel takes the same
fixed number of optimisation steps. Each configuration is timed after one warm-up call (the first
``vmap`` call traces Python code). The device is CUDA when ``torch.cuda.is_available()``, else
the CPU; the output says which.

The poisoned-digits experiment (``--poison``): ``k`` training images get a bright 3x3 patch in
the top-left corner and the label 0; the targets are patched test images of other digits. AME
with Knockoff+ (q = 0.2) against the true poisons, on three kinds of target computed from one
set of fits: the metric (the Brier score of the targets, the utility's metric), the log-loss of
the targets (the same fits, read through a game), and each target's probability of class 0 (the
AME paper's per-prediction target). Two sizes: the CI test's (80 rows, 8 poisons, tests/
test_torch_learner.py) and a larger one (300 rows, 10 poisons); ``--quick`` runs only the first.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits

from dataworth import Game, Task, Utility
from dataworth.data.poison import poisoned_digits
from dataworth.learners.torch.learner import TorchLearner, mlp, small_cnn
from dataworth.methods.ame import ame


def digits_task(n_train: int, n_test: int, seed: int = 0) -> Task:
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(X))
    train, test = order[:n_train], order[n_train : n_train + n_test]
    return Task.from_arrays(X[train] / 16.0, y[train], X[test] / 16.0, y[test], name="digits")


def _rate(learner: TorchLearner, task: Task, masks: np.ndarray, repeats: int) -> float:
    """Submodels per second (train and predict), best of ``repeats`` after a warm-up call."""
    learner.predict_proba_batch(task, masks[: min(2, len(masks))])  # warm-up (vmap tracing)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        learner.predict_proba_batch(task, masks)
        best = min(best, time.perf_counter() - start)
    return len(masks) / best


def throughput(n_train: int, steps: int, ks, sequential_k: int, repeats: int, threads: int) -> None:
    task = digits_task(n_train, 300)
    masks = np.random.default_rng(0).random((max(ks), n_train)) < 0.5
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"Device: {device}"
        + ("" if device == "cuda" else " (no GPU available: CPU only)")
        + f", torch {torch.__version__}, {threads} torch thread(s), "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"digits: {n_train} training rows, {task.n_test} test rows; {steps} Adam steps of "
        f"32 rows per submodel; rates are submodels trained + predicted per second"
    )
    print(f"{'model':<6} {'mode':<20} {'K':>5} {'models/s':>10} {'ratio':>7}")
    for label, factory in (("MLP", mlp((64,))), ("CNN", small_cnn())):
        alone = TorchLearner(factory, steps=steps, vectorized=False, n_threads=threads)
        base = _rate(alone, task, masks[:sequential_k], repeats)
        print(f"{label:<6} {'one at a time':<20} {sequential_k:>5} {base:>10.1f} {1.0:>7.2f}")
        for k in ks:
            side = TorchLearner(factory, steps=steps, max_parallel=max(ks), n_threads=threads)
            rate = _rate(side, task, masks[:k], repeats)
            print(f"{label:<6} {'side by side':<20} {k:>5} {rate:>10.1f} {rate / base:>7.2f}")
    print("(K = 1 trains the lone subset beside a copy of itself, for bitwise determinism)")


def _pr(selected: np.ndarray, poisons: np.ndarray) -> tuple[float, float]:
    hits = np.isin(np.flatnonzero(selected), poisons).sum()
    return (hits / selected.sum() if selected.sum() else np.nan), hits / len(poisons)


def _top_k(values: np.ndarray, poisons: np.ndarray) -> float:
    """Share of poisons among the ``k`` highest values."""
    return float(np.isin(np.argsort(-values)[: len(poisons)], poisons).mean())


def poisoning(
    n_train: int, k: int, n_targets: int, steps: int, sizes, cv: int, threads: int
) -> None:
    task, poisons = poisoned_digits(n_train, k, n_targets, patch_size=3)
    # The small CNN of the tests, every submodel from one initialisation (common random
    # numbers): with a fresh initialisation per subset, Knockoff+ selected nothing at m = 400
    # (measured on the earlier 2x2-patch setup).
    learner = TorchLearner(
        small_cnn(channels=(4, 8), hidden=16),
        steps=steps,
        lr=0.03,
        shared_init=True,
        n_threads=threads,
    )
    u = Utility(task, learner=learner, metric="neg_brier")

    def log_loss(masks: np.ndarray) -> np.ndarray:
        # The targets are all labelled 0: their log-loss is the mean log-probability of class 0,
        # read from the fits the utility has stored (nothing is refitted).
        proba = u.evaluate(masks, per_prediction=True).per_prediction
        return np.log(np.clip(proba, np.finfo(np.float64).eps, 1.0)).mean(axis=1)

    log_game = Game(log_loss, n_players=n_train, name="neg_log_loss")
    full = u.evaluate(np.ones((1, n_train), bool), per_prediction=True)
    clean = np.ones((1, n_train), bool)
    clean[0, poisons] = False
    without = u.evaluate(clean, per_prediction=True)
    print(
        f"\nPoisoned digits, CNN ({steps} Adam steps, lr 0.03, shared init): n={n_train}, "
        f"k={k} poisons (3x3 patch), {n_targets} patched targets; mean P(class 0) "
        f"{full.per_prediction.mean():.3f} with the poisons, {without.per_prediction.mean():.4f} "
        f"without; Knockoff+ q=0.2, {cv}-fold CV"
    )
    print(
        f"{'m':>5} {'fit s':>6} {'LASSO s':>8} {'Brier P/R':>10} {'log-loss P/R':>13} "
        f"{'rows P/R':>10} {'nonempty':>9} {'good':>6} {'top-k Brier':>12} {'top-k rows':>11}"
    )
    for m in sizes:
        start = time.perf_counter()
        ame(u, n_subsets=m, seed=0, target=[0], cv=2, n_alphas=2)  # the fits alone
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        per_row = ame(u, n_subsets=m, fdr=0.2, target=list(range(task.n_test)), seed=0, cv=cv)
        metric = ame(u, n_subsets=m, fdr=0.2, seed=0, cv=cv)
        logged = ame(log_game, n_subsets=m, fdr=0.2, seed=0, cv=cv)
        lasso_seconds = time.perf_counter() - start
        rows = [_pr(r.extra["selected"], poisons) for r in per_row.values()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # precision of empty selections
            mean_p = np.nanmean([p for p, _ in rows])
        mean_r = np.mean([r for _, r in rows])
        nonempty = sum(not np.isnan(p) for p, _ in rows)
        good = sum(r >= 0.5 and p >= 0.75 for p, r in rows)
        mp, mr = _pr(metric.extra["selected"], poisons)
        lp, lr = _pr(logged.extra["selected"], poisons)
        row_mean = np.mean([r.values for r in per_row.values()], axis=0)
        print(
            f"{m:>5} {fit_seconds:>6.1f} {lasso_seconds:>8.1f} {mp:>4.2f}/{mr:<5.2f} "
            f"{lp:>7.2f}/{lr:<5.2f} {mean_p:>4.2f}/{mean_r:<5.2f} {nonempty:>6}/{len(rows):<2} "
            f"{good:>3}/{len(rows):<2} {_top_k(metric.values, poisons):>12.2f} "
            f"{_top_k(row_mean, poisons):>11.2f}"
        )
    print(
        "(fit s: fitting the subsets a smaller m has not stored; LASSO s: the per-row, Brier "
        "and log-loss regressions; P/R: precision/recall of the Knockoff+ selection against "
        "the poisons, precision nan when nothing is selected; rows: averaged over the per-row "
        "targets, precision over the non-empty selections; good: rows with recall >= 0.5 and "
        "precision >= 0.75; top-k: share of poisons among the k highest values, rows: of the "
        "values averaged over the rows)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--poison", action="store_true", help="also the poisoning experiment")
    # One thread by default: on a shared machine, torch's OpenMP threads waiting on each other
    # slow tiny one-at-a-time steps far more than big vectorised ones, inflating the ratios.
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fit")
    args = parser.parse_args()
    if args.quick:
        throughput(300, steps=50, ks=(1, 16, 64), sequential_k=8, repeats=1, threads=args.threads)
    else:
        throughput(
            300, steps=100, ks=(1, 16, 64, 256), sequential_k=16, repeats=2, threads=args.threads
        )
    if args.poison:
        # The CI test's size (tests/test_torch_learner.py), then a larger one.
        poisoning(80, 8, 10, steps=60, sizes=(400, 1000), cv=5, threads=args.threads)
        if not args.quick:
            poisoning(300, 10, 10, steps=60, sizes=(1000, 2000), cv=20, threads=args.threads)


if __name__ == "__main__":
    main()
