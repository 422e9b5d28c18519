"""Bagged decision trees grown as scikit-learn random forests, with each tree's bootstrap sample.

A ``RandomForestClassifier`` with ``bootstrap=True`` and ``max_features=None`` is exactly bagging
of unpruned decision trees: tree ``b`` is fitted on all rows with ``sample_weight`` equal to the
number of times each row was drawn into its bootstrap sample. scikit-learn draws that sample from
the tree's own ``random_state`` (``RandomState(random_state).randint(0, n, n)``) and does not
store it; :func:`bootstrap_counts_of` draws it again through scikit-learn's helper for this
(a private function, so its presence and signature are checked, and every tree's recovered counts
are checked against the class totals the tree was trained on).

The forest builds its trees in threads over one shared copy of the data, so ``B`` bags cost about
one forest rather than ``B`` separate fits with the data sent to worker processes. Trees are grown
in forests of ``_TREES_PER_FOREST`` (each seeded from ``SeedSequence(seed, spawn_key=(chunk,))``)
and dropped once they have predicted their out-of-bag rows, so memory holds one such forest.
"""

from __future__ import annotations

import functools
import inspect
import warnings

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from dataworth.machine import usable_cpus

__all__ = ["bootstrap_counts_of", "forest_oob_bags"]

# Trees per forest: bounds memory (a fully grown tree on 50,000 rows holds a few MB).
_TREES_PER_FOREST = 25


@functools.cache
def _sample_indices():
    """scikit-learn's bootstrap-index helper and whether it takes ``sample_weight``, or None."""
    try:
        from sklearn.ensemble._forest import _generate_sample_indices
    except ImportError:
        return None
    params = list(inspect.signature(_generate_sample_indices).parameters)
    if params[:3] != ["random_state", "n_samples", "n_samples_bootstrap"]:
        return None
    return _generate_sample_indices, "sample_weight" in params


def bootstrap_counts_of(tree, n: int) -> np.ndarray | None:
    """How many times each of ``n`` rows is in the bootstrap sample of a forest's tree.

    Parameters
    ----------
    tree : DecisionTreeClassifier
        One of ``RandomForestClassifier(bootstrap=True, max_samples=None).estimators_``.
    n : int
        Rows the forest was fitted on.

    Returns
    -------
    ndarray of int, shape (n,), or None
        None when this scikit-learn has no compatible helper.
    """
    helper = _sample_indices()
    if helper is None:
        return None
    generate, takes_weight = helper
    args = (tree.random_state, n, n) + ((None,) if takes_weight else ())
    return np.bincount(generate(*args), minlength=n)


def _counts_match_tree(tree, counts: np.ndarray, y: np.ndarray, classes: np.ndarray) -> bool:
    """The root of a tree trained on ``counts`` holds these weighted class totals."""
    totals = np.bincount(y, weights=counts, minlength=int(classes.max()) + 1)[classes]
    weight = tree.tree_.weighted_n_node_samples[0]
    value = tree.tree_.value[0, 0]  # class fractions (scikit-learn >= 1.4) or weighted counts
    return weight == counts.sum() and (
        np.allclose(value * weight, totals, rtol=1e-12, atol=1e-9)
        or np.allclose(value, totals, rtol=1e-12, atol=1e-9)
    )


def forest_oob_bags(
    X: np.ndarray, y: np.ndarray, n_estimators: int, seed: int, n_jobs: int | None
) -> list[tuple[np.ndarray, np.ndarray, bool]] | None:
    """Out-of-bag rows of each bagged tree and whether it predicts each one correctly.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of int, shape (n,)
        Non-negative integer labels.
    n_estimators : int
    seed : int
    n_jobs : int, optional
        Threads of each forest; ``None``: every core this process may use (the trees, and so
        the values, do not depend on it).

    Returns
    -------
    list of (oob, correct, fallback) in tree order, or None
        None (with a warning) when the bootstrap samples cannot be recovered; the caller then
        fits the bags one by one.
    """
    n = len(y)
    bags: list[tuple[np.ndarray, np.ndarray, bool]] = []
    for chunk, start in enumerate(range(0, n_estimators, _TREES_PER_FOREST)):
        size = min(_TREES_PER_FOREST, n_estimators - start)
        state = int(np.random.SeedSequence(seed, spawn_key=(chunk,)).generate_state(1)[0])
        forest = RandomForestClassifier(
            n_estimators=size,
            max_features=None,
            bootstrap=True,
            random_state=state,
            n_jobs=usable_cpus() if n_jobs is None else n_jobs,
        ).fit(X, y)
        for tree in forest.estimators_:
            counts = bootstrap_counts_of(tree, n)
            if counts is None or not _counts_match_tree(tree, counts, y, forest.classes_):
                warnings.warn(
                    "Could not recover the random forest's bootstrap samples with this "
                    "scikit-learn; fitting the bags one by one instead (slower).",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return None
            oob = np.flatnonzero(counts == 0)
            if oob.size == 0:
                bags.append((oob, np.zeros(0, dtype=bool), False))
                continue
            predicted = forest.classes_[tree.predict(X[oob]).astype(np.int64)]
            bags.append((oob, predicted == y[oob], False))
        del forest
    return bags
