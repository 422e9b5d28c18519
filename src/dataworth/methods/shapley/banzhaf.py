"""MSR Banzhaf values run until their ranks are stable: a growing design, checked as it grows.

The subset design is a pure function of the seed and each subset's index, so a run with more
subsets extends the same design, and a utility's evaluation store returns the subsets already
scored without refitting them. The run therefore grows geometrically (``growth`` times more
subsets each round) and asks a stopping rule after each round.
"""

from __future__ import annotations

import math
import time

from dataworth.errors import DataworthError
from dataworth.methods.ame import banzhaf
from dataworth.methods.result import ValuationResult
from dataworth.methods.shapley.stopping import (
    AnyOf,
    MaxSamples,
    RankStable,
    RunState,
    StoppingRule,
    TimeBudget,
)


def banzhaf_until(
    utility,
    *,
    until: str | StoppingRule = "ranks",
    start: int = 64,
    growth: float = 1.5,
    max_subsets: int = 20_000,
    time_budget: float | None = None,
    rank_k: int = 10,
    rank_level: float = 0.9,
    groups=None,
    seed: int = 0,
) -> ValuationResult:
    """Banzhaf values (MSR) from a design grown until a rule says the answer is stable.

    Parameters
    ----------
    utility : Utility or Game
        The game to value.
    until : "ranks" or StoppingRule, default="ranks"
        ``"ranks"``: stop once the top and bottom ``rank_k`` are stable at ``rank_level``
        (:class:`~dataworth.methods.shapley.stopping.RankStable`, a bootstrap over the subsets).
    start, growth : int, float
        Subsets of the first round, and the factor by which each round grows.
    max_subsets : int
        The largest design.
    time_budget : float, optional
        Stop after the round that passes this many seconds.
    rank_k, rank_level : int, float
        The top and bottom size and the stability level of ``until="ranks"``.
    groups : dict or list, optional
        Value groups instead of points.
    seed : int
        Seed of the design.

    Returns
    -------
    ValuationResult
        The last round's result; ``params["stopped_by"]`` names the rule that ended it.
    """
    if start < 2 or growth <= 1.0:
        raise DataworthError(f"Need start >= 2 and growth > 1; got {start}, {growth}.")
    if until == "ranks":
        rule: StoppingRule = RankStable(k=rank_k, level=rank_level, growth=1.0)
    elif isinstance(until, StoppingRule):
        rule = until
    else:
        raise DataworthError(f"Unknown stopping rule {until!r}; use until='ranks' or a rule.")
    rules = [rule, MaxSamples(max_subsets, "subsets")]
    if time_budget is not None:
        rules.insert(0, TimeBudget(time_budget))
    rule = AnyOf(*rules)
    started = time.perf_counter()
    m = min(start, max_subsets)
    while True:
        result = banzhaf(utility, n_subsets=m, groups=groups, seed=seed)
        state = RunState(m, started, result.values, rows=result.samples, seed=seed)
        if rule(state):
            break
        m = min(max_subsets, math.ceil(m * growth))
    result.params |= {"stopped_by": rule.fired, "until": rule.describe()}
    return result
