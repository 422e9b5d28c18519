"""Shapley values by enumeration, and other semivalues with their own weights (small games).

Every subset is evaluated, so these are the references the sampled estimators are checked
against (Shapley 1953; a semivalue weighs each coalition by its size only, Dubey, Neyman and
Weber 1981).
"""

from __future__ import annotations

from math import comb

import numpy as np

from dataworth.engine.group_game import GroupGame, parse_groups
from dataworth.errors import DataworthError
from dataworth.methods._common import Timer, manifest, point_ids
from dataworth.methods.result import ValuationResult

EXACT_MAX_PLAYERS = 20


def players_game(utility, groups):
    """The game whose players are valued: the points of ``utility``, or its groups."""
    if groups is None:
        return utility, "points"
    return GroupGame(utility, groups), "groups"


def exact_shapley(utility, *, groups=None) -> ValuationResult:
    """Shapley values by enumerating every subset (small games only, up to 20 players).

    ``phi(i) = sum over S without i of |S|! (n-|S|-1)! / n! * (U(S + i) - U(S))``. All
    ``2^n`` subsets are evaluated in one batch through the engine.

    Parameters
    ----------
    utility : Utility or Game
        The game to value.
    groups : dict or list of array-like, optional
        Value groups of training points instead of points.

    Returns
    -------
    ValuationResult
    """
    return exact_semivalue(utility, shapley_weights, groups=groups, method="exact_shapley")


def shapley_weights(n: int) -> np.ndarray:
    """Weight of one coalition of size ``s`` (``s = 0..n-1``) of the others in the Shapley value."""
    return np.array([1.0 / (n * comb(n - 1, s)) for s in range(n)])


def exact_semivalue(
    utility, weights, *, groups=None, method: str = "exact_semivalue", params=None
) -> ValuationResult:
    """A semivalue by enumeration: ``phi(i) = sum_S w(|S|) (U(S + i) - U(S))``.

    Parameters
    ----------
    utility : Utility or Game
        The game to value (at most 20 players).
    weights : callable
        ``weights(n)`` gives the weight of one coalition of each size ``0..n-1`` of the other
        players (for the Shapley value, :func:`shapley_weights`).
    groups : dict or list of array-like, optional
        Value groups of training points instead of points.
    method : str
        The name recorded in the result.
    params : dict, optional
        Further parameters to record.

    Returns
    -------
    ValuationResult
    """
    game, kind = players_game(utility, groups)
    n = game.n_players
    if n > EXACT_MAX_PLAYERS:
        raise DataworthError(
            f"Exact enumeration evaluates 2^n subsets; {n} players is too many "
            f"(at most {EXACT_MAX_PLAYERS}). Use a sampling method instead."
        )
    timer = Timer()
    codes = np.arange(2**n, dtype=np.int64)
    masks = ((codes[:, None] >> np.arange(n)) & 1).astype(bool)
    with timer.phase("evaluate"):
        ev = game.evaluate(masks)
    v = ev.scores
    sizes = masks.sum(axis=1)
    w = np.asarray(weights(n), dtype=np.float64)
    values = np.empty(n)
    for i in range(n):
        without = codes[(codes >> i) & 1 == 0]
        values[i] = np.sum(w[sizes[without]] * (v[without | (1 << i)] - v[without]))
    ids = game.names if kind == "groups" else point_ids(utility, np.arange(n))
    extra = {"size": game.sizes} if kind == "groups" else {}
    return ValuationResult(
        method=method,
        values=values,
        player_ids=ids,
        counts=np.full(n, 2**n),
        params={"players": kind} | (params or {}),
        exact=True,
        n_evaluations=2**n,
        n_fitted=ev.n_fitted,
        n_fallback=ev.n_fallback,
        timings=timer.seconds,
        manifest=manifest(game) | {"empty_value": float(v[0]), "full_value": float(v[-1])},
        extra=extra,
    )


def group_sums(point_values: ValuationResult, groups) -> np.ndarray:
    """For each group, the sum of its members' point values (overlaps counted in each group).

    ``point_values`` holds one value per training point, in training order; ``groups`` takes
    every form of :func:`~dataworth.engine.group_game.parse_groups`.
    """
    _, members = parse_groups(groups, len(point_values.values))
    return np.array([point_values.values[positions].sum() for positions in members])
