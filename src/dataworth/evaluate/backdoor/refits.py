"""Per-query LOO and TMC-Shapley on a budget of trained models (the backdoor's refit baselines).

The library's :func:`~dataworth.methods.loo.loo` and
:func:`~dataworth.methods.shapley.tmc_shapley` value one game. The backdoor experiment explains
20 queries at once and compares every method at the same number of trained models, so both are
written here over the utility's per-prediction scores: each fitted subset serves every query.

* :func:`budget_loo`: ``U(D) - U(D - i)`` per query for the first ``budget - 1`` points of a
  seeded random order (all of them once the budget reaches ``n + 1``); the others are not
  valued (``-inf``: ranked last).
* :func:`budget_tmc`: truncated Monte Carlo Shapley (Ghorbani and Zou, ICML 2019) with
  permutations shared by the queries: each prefix is fitted once, every query takes its own
  marginal contribution; a permutation is truncated once every query's score is within ``tol``
  of its full-data score; the run stops when ``budget`` prefixes have been fitted (the last
  permutation partly walked). A point no permutation reached is not valued (``-inf``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ScoresFn = Callable[[np.ndarray], np.ndarray]
"""``scores(masks) -> (K, n_queries)``: each subset's per-query score (its network fitted once,
then read from the utility's store)."""

_BLOCK = 64  # prefixes fitted together (one vectorised program of the PyTorch learner)


def budget_loo(scores: ScoresFn, n: int, budget: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """Leave-one-out values per query, as many points as ``budget`` trained models pay for.

    Parameters
    ----------
    scores : callable
        The per-query scores of a batch of subsets.
    n : int
        Training points.
    budget : int
        Trained models: the full set, then one removal per valued point.
    seed : int

    Returns
    -------
    values : ndarray of shape (n_queries, n_train)
        ``-inf`` for the points not valued.
    models : int
        Models trained (at most ``budget``).
    """
    order = np.random.default_rng([seed, 7]).permutation(n)[: max(0, min(n, budget - 1))]
    full = np.ones((1, n), dtype=bool)
    masks = np.repeat(full, len(order), axis=0)
    masks[np.arange(len(order)), order] = False
    base = scores(full)[0]
    values = np.full((len(base), n), -np.inf)
    for start in range(0, len(order), 1024):
        chunk = order[start : start + 1024]
        values[:, chunk] = (base[None, :] - scores(masks[start : start + 1024])).T
    return values, 1 + len(order)


def budget_tmc(
    scores: ScoresFn, n: int, budget: int, seed: int = 0, tol: float = 0.01
) -> tuple[np.ndarray, int]:
    """TMC-Shapley values per query from permutations shared by the queries, on a budget.

    Parameters
    ----------
    scores : callable
        The per-query scores of a batch of subsets.
    n : int
        Training points.
    budget : int
        Prefixes fitted (the full set's fit included).
    seed : int
        Permutation ``t`` comes from ``default_rng([seed, t])``.
    tol : float, default 0.01
        Truncation: a permutation stops once ``|U_q(D) - U_q(prefix)| <= tol * |U_q(D)|`` for
        every query ``q`` (its remaining points get a marginal contribution of 0).

    Returns
    -------
    values : ndarray of shape (n_queries, n_train)
        Mean marginal contributions; ``-inf`` for points no permutation reached.
    models : int
        Prefixes fitted (at most ``budget``).
    """
    full = scores(np.ones((1, n), dtype=bool))[0]
    empty = scores(np.zeros((1, n), dtype=bool))[0]
    totals = np.zeros((len(full), n))
    counts = np.zeros(n)
    used, t = 1, 0
    while used < budget:
        perm = np.random.default_rng([seed, t]).permutation(n)
        t += 1
        previous, position = empty, 0
        while position < n and used < budget:
            size = min(_BLOCK, n - position, budget - used)
            masks = np.zeros((size, n), dtype=bool)
            for j in range(size):
                masks[j, perm[: position + j + 1]] = True
            values = scores(masks)
            used += size
            steps = np.vstack([previous[None, :], values])
            marginals = np.diff(steps, axis=0)  # (size, queries)
            close = np.abs(full[None, :] - values) <= tol * np.abs(full[None, :])
            done = np.flatnonzero(close.all(axis=1))
            stop = done[0] + 1 if len(done) else size
            players = perm[position : position + stop]
            totals[:, players] += marginals[:stop].T
            counts[players] += 1
            position += stop
            previous = values[stop - 1]
            if len(done):  # truncated: the rest of the permutation contributes 0
                counts[perm[position:]] += 1
                position = n
    values = np.where(counts > 0, totals / np.maximum(counts, 1), -np.inf)
    return values, used
