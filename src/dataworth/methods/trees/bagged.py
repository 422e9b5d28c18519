"""Data-OOB's bagged decision trees grown by compiled kernels, the features sorted once.

Each bag is the per-bag path's bootstrap sample (:func:`bootstrap_counts` of the seed and the bag
index) and its tree is an unpruned CART with scikit-learn's ``DecisionTreeClassifier`` defaults
(:mod:`dataworth.methods.trees.kernels`): Gini on the bootstrap counts as weights, every feature at
every split, float32 features, split until pure. Two things make it cheaper than scikit-learn's
trees, which sort the rows of every node again for every feature: the features are sorted once
for all the bags, and each tree is grown a level at a time by one pass per feature over those
orders. Trees are grown on a pool of threads (the kernels release the GIL), each a pure function
of its bag, so the values do not depend on the threads.

The trees are scikit-learn's up to how equal best splits are broken (both take the lowest
threshold within a feature and a random order among features, drawn differently); a tree on one
feature is scikit-learn's exactly.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dataworth.learners.degenerate import prior_predictions
from dataworth.learners.memory import CHUNK_SHARE, available_memory
from dataworth.machine import usable_threads

__all__ = ["bootstrap_counts", "compiled_trees", "open_bag", "tree_oob_bags"]


def bootstrap_counts(seed: int, index: int, n: int) -> tuple[np.ndarray, int]:
    """Copies of each row in bootstrap sample ``index``, and that bag's model seed.

    A pure function of ``(seed, index)`` through ``SeedSequence(seed, spawn_key=(index,))``, so
    a bag is the same whatever the number of workers or the order in which bags are fitted.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    counts = np.bincount(rng.integers(0, n, size=n), minlength=n)
    model_seed = int(rng.integers(0, 2**31 - 1))
    return counts, model_seed


def open_bag(
    seed: int, index: int, y: np.ndarray, n_classes: int
) -> tuple[np.ndarray, int, np.ndarray, tuple[np.ndarray, np.ndarray, bool] | None]:
    """Bag ``index``: its counts, model seed, out-of-bag rows, and its result if it needs no model.

    A bag with no out-of-bag row scores nothing. A bag of one class cannot be fitted by most
    classifiers; as everywhere else in the product, the prior-only model of its labels (the
    degenerate-subset policy) predicts instead, and the result is marked as such a fallback.
    """
    counts, model_seed = bootstrap_counts(seed, index, len(y))
    in_bag = counts > 0
    oob = np.flatnonzero(~in_bag)
    if oob.size == 0:
        return counts, model_seed, oob, (oob, np.zeros(0, dtype=bool), False)
    if np.unique(y[in_bag]).size < 2:
        _, labels = prior_predictions(y, in_bag[None, :], n_classes, oob.size)
        return counts, model_seed, oob, (oob, labels[0] == y[oob], True)
    return counts, model_seed, oob, None


@functools.cache
def compiled_trees():
    """The compiled tree kernels (:mod:`.tree_kernels`), or ``None`` without Numba."""
    try:
        import dataworth.methods.trees.kernels as tree_kernels
    except ImportError:  # Numba is not installed
        return None
    return tree_kernels


def warm_up() -> None:
    """Load the kernels' machine code now (compiled once per machine, then read from disk)."""
    kernels = compiled_trees()
    if kernels is None:
        return
    X = np.array([[0.0], [1.0], [2.0]], dtype=np.float32)
    order = np.arange(3, dtype=np.int32)[None, :]
    y = np.array([0, 1, 1])
    tree = kernels.grow_tree(X, order, y, np.ones(3), 2, 0)
    kernels.predict_rows(X, np.arange(3), *tree)


def tree_bytes(n: int, d: int) -> int:
    """Working memory of one growing tree: its rows in every feature's order, and per-row and
    per-node arrays (the order and the features themselves are shared by all the trees)."""
    return 8 * n * d + 64 * n


def _threads_for_memory(threads: int, n: int, d: int) -> int:
    """At most ``threads``, fewer when their trees would pass a quarter of the free memory."""
    available = available_memory()
    if available is None:
        return threads
    return max(1, min(threads, int(CHUNK_SHARE * available) // tree_bytes(n, d)))


def _sorted_features(X32: np.ndarray) -> np.ndarray:
    """``order[f]``: the rows sorted by feature ``f`` (stable), as int32, one row per feature."""
    order = np.empty(X32.shape[::-1], dtype=np.int32)
    for f in range(X32.shape[1]):
        order[f] = np.argsort(X32[:, f], kind="stable")
    return order


def tree_oob_bags(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    n_estimators: int,
    seed: int,
    n_jobs: int | None,
) -> list[tuple[np.ndarray, np.ndarray, bool]] | None:
    """Out-of-bag rows of each bagged tree and whether it predicts each one correctly.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of int, shape (n,)
        Class codes ``0 .. n_classes - 1``.
    n_classes : int
    n_estimators : int
    seed : int
    n_jobs : int, optional
        Threads growing trees; ``None``: the cores this process may use (threads change no
        value). Fewer when their working memory (:func:`tree_bytes` each) would pass a quarter
        of the memory available.

    Returns
    -------
    list of (oob, correct, fallback) in bag order, or None
        None without Numba or with non-finite features (scikit-learn's trees then grow them).
    """
    kernels = compiled_trees()
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    if kernels is None or not np.isfinite(X32).all():
        return None
    codes = np.ascontiguousarray(y, dtype=np.int64)
    order = _sorted_features(X32)

    def bag(index: int) -> tuple[np.ndarray, np.ndarray, bool]:
        counts, model_seed, oob, done = open_bag(seed, index, codes, n_classes)
        if done is not None:
            return done
        tree = kernels.grow_tree(
            X32, order, codes, counts.astype(np.float64), n_classes, model_seed
        )
        predicted = kernels.predict_rows(X32, oob, *tree)
        return oob, predicted == codes[oob], False

    requested = None if n_jobs is None or n_jobs < 1 else n_jobs
    threads = max(1, min(usable_threads(requested), n_estimators))
    threads = _threads_for_memory(threads, *X32.shape)
    if threads == 1:
        return [bag(b) for b in range(n_estimators)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(bag, range(n_estimators)))
