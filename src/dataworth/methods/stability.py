"""How stable a sampled ranking is: a bootstrap over the run's own permutations or subsets.

A person reading a valuation asks "are these really my most valuable rows?". Re-running the
method with another seed answers it, at the price of the whole run again. The bootstrap answers
it from the run at hand (Efron, 1979): draw the run's ``m`` permutations (or subsets) ``m`` times
with replacement, recompute every value, and see how often each row lands in the top (bottom)
``k``. Permutation methods keep each permutation's marginal contributions for this; the MSR
Banzhaf estimator keeps its subsets and scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dataworth.errors import DataworthError

# Bootstrap replicates: a probability of 0.95 is then known to about +-0.015.
N_BOOT = 200
# Per-sample rows kept only while rows * players stays below this (32 MB of float64).
SAMPLE_LIMIT = 4_000_000


def bootstrap_values(samples: dict, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Values recomputed on ``n_boot`` resamples of the run's draws, shape ``(n_boot, n)``.

    Parameters
    ----------
    samples : dict
        A result's ``samples``: ``{"kind": "mean", "rows": (m, n)}`` (the value is the mean of
        the rows) or ``{"kind": "msr", "masks": (m, n), "y": (m,)}`` (the value is the mean
        score of the subsets holding the player minus that of the others).
    n_boot : int
        Number of bootstrap replicates.
    seed : int
        Seed of the resampling.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    if samples["kind"] == "mean":
        rows = samples["rows"]
        m = len(rows)
        weights = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot).astype(np.float64)
        return weights @ rows / m
    if samples["kind"] == "msr":
        masks = samples["masks"].astype(np.float64)
        y = np.asarray(samples["y"], dtype=np.float64)
        m = len(y)
        weights = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot).astype(np.float64)
        n_in = weights @ masks
        sum_in = (weights * y) @ masks
        sum_all = (weights @ y)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            return sum_in / n_in - (sum_all - sum_in) / (m - n_in)
    raise DataworthError(f"Unknown kind of samples {samples['kind']!r}.")


@dataclass
class RankStability:
    """How often each row of a sampled result lands in its top or bottom ``k``.

    Attributes
    ----------
    k, level, n_boot : int, float, int
        The size of the top and bottom, the level of "distinguishable", the replicates.
    player_ids, values : ndarray of shape (n,)
        The result's players and values.
    top_prob, bottom_prob : ndarray of shape (n,)
        Bootstrap probability that each row is among the ``k`` highest (lowest) values.
    top, bottom : ndarray of shape (k,)
        Positions of the estimated ``k`` highest values (highest first) and ``k`` lowest.
    top_distinct, bottom_distinct : ndarray of bool, shape (k,)
        Whether each of them is above (below) the ``k+1``-th highest (lowest) in at least
        ``level`` of the replicates: a one-sided bootstrap test of their difference.
    top_overlap, bottom_overlap : float
        Mean share of a replicate's top (bottom) ``k`` that is in the estimated one: the
        stability the stopping rule watches.
    """

    k: int
    level: float
    n_boot: int
    player_ids: np.ndarray
    values: np.ndarray
    top_prob: np.ndarray
    bottom_prob: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    top_distinct: np.ndarray
    bottom_distinct: np.ndarray
    top_overlap: float
    bottom_overlap: float

    @property
    def stability(self) -> float:
        """The smaller of the top and bottom overlaps."""
        return min(self.top_overlap, self.bottom_overlap)

    def verdict(self) -> str:
        """One line a person can act on."""
        return (
            f"Of the {self.k} highest values, {int(self.top_distinct.sum())} are "
            f"distinguishable from the {_ordinal(self.k + 1)} at {self.level:.0%}; of the "
            f"{self.k} lowest, {int(self.bottom_distinct.sum())} from the "
            f"{_ordinal(self.k + 1)} lowest (bootstrap over {self.n_boot} resamples of the run)."
        )

    def to_frame(self) -> pd.DataFrame:
        """The top and bottom ``k`` rows: rank, id, value and their bootstrap probabilities."""
        parts = []
        for end, where, prob, distinct in (
            ("top", self.top, self.top_prob, self.top_distinct),
            ("bottom", self.bottom, self.bottom_prob, self.bottom_distinct),
        ):
            parts.append(
                pd.DataFrame(
                    {
                        "end": end,
                        "rank": np.arange(1, len(where) + 1),
                        "player_id": self.player_ids[where],
                        "value": self.values[where],
                        "probability": prob[where],
                        "distinguishable": distinct,
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)


def _ordinal(i: int) -> str:
    suffix = "th" if 10 <= i % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(i % 10, "th")
    return f"{i}{suffix}"


def rank_stability_of(
    values: np.ndarray,
    boot: np.ndarray,
    player_ids: np.ndarray | None = None,
    *,
    k: int = 10,
    level: float = 0.95,
) -> RankStability:
    """Rank stability from values and their bootstrap replicates ``boot`` (``(B, n)``)."""
    n = len(values)
    if n < 2:
        raise DataworthError("Rank stability needs at least 2 players.")
    k = int(min(k, n - 1))
    if k < 1:
        raise DataworthError(f"k must be at least 1; got {k}.")
    # A value that cannot be estimated (NaN) ranks at neither end.
    high = np.where(np.isnan(values), -np.inf, values)
    low = np.where(np.isnan(values), np.inf, values)
    order_high, order_low = np.argsort(-high, kind="stable"), np.argsort(low, kind="stable")
    top, bottom = order_high[:k], order_low[:k]
    boot_high = np.where(np.isnan(boot), -np.inf, boot)
    boot_low = np.where(np.isnan(boot), np.inf, boot)
    b = len(boot)
    top_sets = np.argpartition(-boot_high, k - 1, axis=1)[:, :k]
    bottom_sets = np.argpartition(boot_low, k - 1, axis=1)[:, :k]
    top_prob = np.bincount(top_sets.ravel(), minlength=n) / b
    bottom_prob = np.bincount(bottom_sets.ravel(), minlength=n) / b
    top_distinct = np.mean(boot_high[:, top] > boot_high[:, [order_high[k]]], axis=0) >= level
    bottom_distinct = np.mean(boot_low[:, bottom] < boot_low[:, [order_low[k]]], axis=0) >= level
    return RankStability(
        k=k,
        level=level,
        n_boot=b,
        player_ids=np.arange(n) if player_ids is None else np.asarray(player_ids),
        values=np.asarray(values),
        top_prob=top_prob,
        bottom_prob=bottom_prob,
        top=top,
        bottom=bottom,
        top_distinct=top_distinct,
        bottom_distinct=bottom_distinct,
        top_overlap=float(np.isin(top_sets, top).mean()),
        bottom_overlap=float(np.isin(bottom_sets, bottom).mean()),
    )


def rank_stability(
    result, *, k: int = 10, level: float = 0.95, n_boot: int = N_BOOT, seed: int | None = None
) -> RankStability:
    """Probability that each row of a sampled result is in its top or bottom ``k``.

    Parameters
    ----------
    result : ValuationResult
        A result that kept its samples (TMC-Shapley, permutation Beta Shapley, MSR Banzhaf).
    k : int, default=10
        Size of the top and the bottom.
    level : float, default=0.95
        A row is distinguishable from the ``k+1``-th when it beats it in this share of the
        bootstrap replicates.
    n_boot : int, default=200
        Bootstrap replicates.
    seed : int, optional
        Seed of the resampling; the result's seed by default.

    Returns
    -------
    RankStability

    Examples
    --------
    >>> import numpy as np, dataworth as dw
    >>> g = dw.Game(lambda m: m @ np.arange(12.0) + 0.3 * m[:, 0] * m[:, 1], n_players=12)
    >>> r = dw.tmc_shapley(g, permutations=40, tol=0)
    >>> rank_stability(r, k=3).verdict().split(";")[0]
    'Of the 3 highest values, 3 are distinguishable from the 4th at 95%'
    """
    if result.samples is None:
        raise DataworthError(
            f"This {result.method} result kept no per-sample draws (exact methods have none; "
            f"large runs drop them above {SAMPLE_LIMIT:,} numbers), so no rank stability."
        )
    seed = (result.seed or 0) if seed is None else seed
    boot = bootstrap_values(result.samples, n_boot, seed)
    return rank_stability_of(result.values, boot, result.player_ids, k=k, level=level)
