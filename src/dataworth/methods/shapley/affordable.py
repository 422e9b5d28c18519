"""Exact Shapley values beside an estimate, when the game is small enough to afford them.

Exact enumeration evaluates all ``2^n`` coalitions. With ``c`` seconds per evaluation (measured
by the estimate's own run) it fits a time allowance ``T`` when ``n <= log2(T / c)``; the ten
random groups of a study are 1,024 evaluations, a fraction of a second with a fast learner.
Then the estimate's distance to the truth can be stated, not only its noise.
"""

from __future__ import annotations

import math

import numpy as np

from dataworth.methods.result import ValuationResult
from dataworth.methods.shapley.exact import EXACT_MAX_PLAYERS, exact_shapley

# Seconds exact enumeration may take beside an estimate, unless the caller says otherwise.
EXACT_SECONDS = 60.0


def seconds_per_evaluation(result: ValuationResult) -> float:
    """Seconds one utility evaluation took in a sampled run (its evaluate time per evaluation)."""
    seconds = float(result.timings.get("evaluate", 0.0))
    return seconds / max(int(result.n_evaluations), 1)


def exact_player_limit(
    seconds_each: float, seconds: float = EXACT_SECONDS, *, cap: int = EXACT_MAX_PLAYERS
) -> int:
    """The most players whose ``2^n`` evaluations fit in ``seconds`` at ``seconds_each`` each."""
    if seconds_each <= 0:
        return cap
    if seconds <= seconds_each:
        return 0
    return int(min(cap, math.floor(math.log2(seconds / seconds_each))))


def exact_beside(
    utility,
    estimate: ValuationResult,
    *,
    groups=None,
    seconds: float = EXACT_SECONDS,
    seconds_each: float | None = None,
) -> ValuationResult | None:
    """Exact Shapley values of the estimate's game when they fit in ``seconds``, else None.

    The player limit comes from the estimate's measured cost per evaluation (see
    :func:`exact_player_limit`). When computed, ``estimate.extra["exact_value"]`` holds the exact
    values beside the estimates and ``estimate.params["exact_distance"]`` the summary of
    :func:`distance_to_exact`.

    Parameters
    ----------
    utility : Utility or Game
        The game the estimate valued.
    estimate : ValuationResult
        A sampled Shapley estimate (TMC) of that game.
    groups : dict or list, optional
        The groups, when the estimate's players are groups.
    seconds : float
        Time allowed for the enumeration.
    seconds_each : float, optional
        Seconds one evaluation is expected to take, when the caller knows better than the
        estimate's run (whose prefixes were warm-started chains, cheaper than cold fits of
        coalitions); the larger of the two is used.

    Returns
    -------
    ValuationResult or None
    """
    each = max(seconds_per_evaluation(estimate), seconds_each or 0.0)
    limit = exact_player_limit(each, seconds)
    if len(estimate) > limit:
        return None
    exact = exact_shapley(utility, groups=groups)
    exact.params["player_limit"] = limit
    estimate.extra["exact_value"] = exact.values
    estimate.params["exact_distance"] = distance_to_exact(estimate, exact)
    return exact


def distance_to_exact(estimate: ValuationResult, exact: ValuationResult) -> dict:
    """How far an estimate is from the exact values of the same players.

    Returns
    -------
    dict
        ``max_abs_error`` and ``mean_abs_error``; ``outside_2se``, the number of players whose
        exact value lies outside the estimate +- 2 standard errors; ``outside_ci`` and
        ``with_ci``, the same for the confidence intervals and how many players have one;
        ``exact_range``, the smallest and largest exact values.
    """
    error = estimate.values - exact.values
    out = {
        "players": len(exact),
        "max_abs_error": float(np.max(np.abs(error))),
        "mean_abs_error": float(np.mean(np.abs(error))),
        "exact_range": [float(exact.values.min()), float(exact.values.max())],
        "estimate_range": [float(estimate.values.min()), float(estimate.values.max())],
    }
    if estimate.stderr is not None:
        out["outside_2se"] = int(np.sum(np.abs(error) > 2 * estimate.stderr))
    if estimate.ci_low is not None:
        has = np.isfinite(estimate.ci_low)
        outside = (exact.values < estimate.ci_low) | (exact.values > estimate.ci_high)
        out["with_ci"] = int(has.sum())
        out["outside_ci"] = int(np.sum(outside & has))
    return out
