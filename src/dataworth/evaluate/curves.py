"""Point-removal curves: refit without the highest (or lowest) valued rows, against random removal.

A valuation that ranks rows well predicts what refitting does: removing the rows it values most
should hurt the test metric faster than removing rows at random, and removing the rows it values
least should hurt less (or help, when they are mislabelled). Every refit goes through
:meth:`dataworth.Utility.evaluate`, in one batch, so it is cached and batched like any method's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dataworth.errors import DataworthError
from dataworth.evaluate.measures import low_value_order
from dataworth.methods.result import ValuationResult

__all__ = ["DEFAULT_FRACTIONS", "RemovalCurves", "curve_area", "removal_curves", "removal_masks"]

#: Shares of the training rows removed: 0, 5%, ..., 50%.
DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(11))

# The random baseline's orders come from their own seed stream, so they are the same whichever
# method is being evaluated (and its fits are shared through the evaluation store).
_RANDOM_STREAM = 7919


@dataclass
class RemovalCurves:
    """The test metric after removing a share of the training rows, in three orders.

    Attributes
    ----------
    method : str
        The valuation whose order was followed.
    metric : str
        The test metric (higher is better).
    fractions : ndarray
        Shares of the training rows removed.
    n_removed : ndarray of int
        Rows removed at each share: ``round(fraction * n)``.
    high_first, low_first : ndarray
        The metric after removing the highest-valued (lowest-valued) rows first.
    random_mean, random_std : ndarray
        Mean and standard deviation of the metric over ``n_random`` seeded random orders.
    area_high : float
        ``integral of (random_mean - high_first) d fraction`` (trapezoid rule). Positive: removing
        the rows the method values most hurts more than removing random rows, as it should.
    area_low : float
        ``integral of (low_first - random_mean) d fraction``. Positive: removing the rows the
        method values least hurts less than random removal (or helps), as it should.
    n_fitted : int
        Subsets fitted for these curves (the rest came from the store).
    params : dict
        ``n_random`` and ``seed``.
    """

    method: str
    metric: str
    fractions: np.ndarray
    n_removed: np.ndarray
    high_first: np.ndarray
    low_first: np.ndarray
    random_mean: np.ndarray
    random_std: np.ndarray
    area_high: float
    area_low: float
    n_fitted: int = 0
    params: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per fraction: the three curves, tagged with the method."""
        return pd.DataFrame(
            {
                "method": self.method,
                "fraction": self.fractions,
                "n_removed": self.n_removed,
                "high_first": self.high_first,
                "low_first": self.low_first,
                "random_mean": self.random_mean,
                "random_std": self.random_std,
            }
        )


def curve_area(fractions, curve, baseline) -> float:
    """``integral of (curve - baseline) d fraction`` by the trapezoid rule."""
    x = np.asarray(fractions, dtype=np.float64)
    gap = np.asarray(curve, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    return float(np.sum((gap[1:] + gap[:-1]) * np.diff(x)) / 2.0)


def removal_masks(order: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    """Masks keeping all rows but the first ``counts[j]`` of ``order``, one row per count."""
    masks = np.ones((len(counts), n), dtype=bool)
    for j, k in enumerate(counts):
        masks[j, order[:k]] = False
    return masks


def _positions(utility, result: ValuationResult) -> np.ndarray:
    n = utility.n_players
    if len(result) != n:
        raise DataworthError(
            f"The {result.method} result values {len(result)} of {n} training rows; removal "
            "curves need a value for every row (value all points)."
        )
    if "position" in result.extra:
        positions = np.asarray(result.extra["position"], dtype=np.int64)
    elif hasattr(utility, "task"):
        positions = utility.task.positions_of(result.player_ids)
    else:  # a plain game: players are positions
        positions = np.asarray(result.player_ids, dtype=np.int64)
    if not np.array_equal(np.sort(positions), np.arange(n)):
        raise DataworthError(
            f"The {result.method} result does not hold each training row once; value all points."
        )
    return positions


def _check_fractions(fractions) -> np.ndarray:
    x = np.asarray(fractions, dtype=np.float64).reshape(-1)
    if x.size < 2 or np.any(np.diff(x) <= 0) or x[0] < 0 or x[-1] >= 1:
        raise DataworthError(
            "Removal fractions must be at least two increasing shares in [0, 1), "
            "e.g. 0, 0.05, ..., 0.5."
        )
    return x


def removal_curves(
    utility,
    result: ValuationResult,
    *,
    fractions=DEFAULT_FRACTIONS,
    n_random: int = 5,
    seed: int = 0,
) -> RemovalCurves:
    """Remove the highest- and the lowest-valued rows first, refit, and compare with random.

    Parameters
    ----------
    utility : Utility or Game
        The game whose score is the test metric after a refit (``U`` of the kept rows).
    result : ValuationResult
        A valuation of every training row of ``utility``.
    fractions : sequence of float, default=(0, 0.05, ..., 0.5)
        Shares of the rows removed; ``round(fraction * n)`` rows each.
    n_random : int, default=5
        Random removal orders averaged into the baseline.
    seed : int, default=0
        Seeds the random orders and the tie-break among equal values.

    Returns
    -------
    RemovalCurves

    Notes
    -----
    All ``(2 + n_random) * len(fractions)`` subsets go to ``utility.evaluate`` in one call:
    repeated subsets (every order's fraction 0 is the full set) are fitted once, and a store
    shared across methods fits the random baseline only once.

    Examples
    --------
    >>> import numpy as np, dataworth as dw
    >>> g = dw.Game(lambda m: m @ np.arange(10.0), n_players=10)
    >>> r = dw.ValuationResult("exact", np.arange(10.0), np.arange(10))
    >>> curves = removal_curves(g, r, fractions=[0, 0.2, 0.4])
    >>> curves.area_high > 0 and curves.area_low > 0
    True
    """
    if n_random < 1:
        raise DataworthError("n_random must be at least 1 random order for the baseline.")
    x = _check_fractions(fractions)
    n = utility.n_players
    positions = _positions(utility, result)
    values = np.empty(n)
    values[positions] = result.values
    counts = np.round(x * n).astype(np.int64)

    orders = [low_value_order(-values, seed), low_value_order(values, seed)]
    for r in range(n_random):
        rng = np.random.default_rng(np.random.SeedSequence([seed, _RANDOM_STREAM, r]))
        orders.append(rng.permutation(n))
    masks = np.concatenate([removal_masks(order, counts, n) for order in orders])
    evaluation = utility.evaluate(masks)
    scores = evaluation.scores.reshape(len(orders), len(x))
    high, low, rand = scores[0], scores[1], scores[2:]
    random_mean = rand.mean(axis=0)
    random_std = rand.std(axis=0, ddof=1) if n_random > 1 else np.zeros(len(x))
    metric = getattr(getattr(utility, "metric", None), "name", "score")
    return RemovalCurves(
        method=result.method,
        metric=metric,
        fractions=x,
        n_removed=counts,
        high_first=high,
        low_first=low,
        random_mean=random_mean,
        random_std=random_std,
        area_high=curve_area(x, random_mean, high),
        area_low=curve_area(x, low, random_mean),
        n_fitted=evaluation.n_fitted,
        params={"n_random": n_random, "seed": seed},
    )
