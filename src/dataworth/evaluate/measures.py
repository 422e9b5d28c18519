"""How well low values flag rows whose label is wrong on purpose (noisy-label detection).

Every measure reads a valuation the same way: the lower a row's value, the more suspect the row.
The score of "row i is flipped" is therefore ``-value[i]``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from dataworth.errors import DataworthError
from dataworth.methods.result import ValuationResult

__all__ = [
    "average_precision",
    "detection_scores",
    "flipped_mask",
    "low_value_order",
    "recall_at",
    "roc_auc",
    "two_means_f1",
    "two_means_split",
]


def flipped_mask(result: ValuationResult, flipped_ids) -> np.ndarray:
    """Which players of ``result`` are flipped rows, matched by id.

    Parameters
    ----------
    result : ValuationResult
        A valuation of training points.
    flipped_ids : array-like
        Ids of the flipped rows (``task.metadata["flipped_ids"]``), or a boolean mask already
        aligned with ``result.values``.

    Returns
    -------
    ndarray of bool, shape (n_players,)
    """
    flipped_ids = np.asarray(flipped_ids)
    if flipped_ids.dtype == bool:
        if flipped_ids.shape != result.values.shape:
            raise DataworthError(
                f"The flipped mask has {flipped_ids.size} entries for {len(result)} values; "
                "give one entry per valued row, or the flipped ids."
            )
        return flipped_ids.copy()
    # Ids may be ints in one place and strings in another (CSV round trips): compare as text.
    wanted = {str(i) for i in flipped_ids.tolist()}
    return np.array([str(i) in wanted for i in result.player_ids.tolist()], dtype=bool)


def _check_labels(values: np.ndarray, flipped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    flipped = np.asarray(flipped, dtype=bool).reshape(-1)
    if values.shape != flipped.shape:
        raise DataworthError(
            f"{values.size} values but {flipped.size} flipped flags; give one flag per value."
        )
    if not np.isfinite(values).all():
        raise DataworthError("Some values are not finite; a detection score needs finite values.")
    n_flipped = int(flipped.sum())
    if n_flipped == 0:
        raise DataworthError(
            "No row is flipped, so there is nothing to detect; use --flip above 0 (e.g. 0.1) "
            "or a dataset with planted noise (synthetic)."
        )
    if n_flipped == flipped.size:
        raise DataworthError("Every row is flipped, so no clean row is left to tell them from.")
    return values, flipped


def roc_auc(values, flipped) -> float:
    """ROC AUC of ``-values`` as a score of "flipped": 1 when every flipped row is lowest.

    Ties count one half (the Mann-Whitney convention), so a constant valuation scores 0.5.
    """
    values, flipped = _check_labels(values, flipped)
    return float(roc_auc_score(flipped, -values))


def average_precision(values, flipped) -> float:
    """Average precision of ``-values`` as a score of "flipped" (chance level: the flip rate)."""
    values, flipped = _check_labels(values, flipped)
    return float(average_precision_score(flipped, -values))


def two_means_split(values) -> float:
    """Threshold of the optimal two-cluster 1-D k-means split of ``values``.

    OpenDataVal flags noisy rows by clustering the values with 2-means and taking the cluster
    with the lower centre. In one dimension the optimal 2-means partition is a cut of the sorted
    values, so instead of Lloyd's iterations (which depend on a random start and may stop at a
    local optimum) every cut between two distinct values is scored by its within-cluster sum of
    squares and the best is kept: exact and deterministic. The first of equally good cuts wins.

    Parameters
    ----------
    values : array-like of float

    Returns
    -------
    float
        Rows with a value ``<= threshold`` form the lower cluster; ``-inf`` when all values are
        equal (there is no split, nothing is flagged).
    """
    v = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    n = v.size
    if n < 2 or v[0] == v[-1]:
        return -math.inf
    # Within-cluster SSE of v[:k] and v[k:] from prefix sums: sum x^2 - (sum x)^2 / count.
    # Values are centred first so the subtraction loses no precision on large offsets.
    c = v - v.mean()
    s1, s2 = np.cumsum(c), np.cumsum(c * c)
    k = np.arange(1, n)
    left = s2[:-1] - s1[:-1] ** 2 / k
    right = (s2[-1] - s2[:-1]) - (s1[-1] - s1[:-1]) ** 2 / (n - k)
    sse = left + right
    # A cut between equal values would split one value over two clusters: not a partition
    # k-means can return, so those cuts are excluded.
    sse[v[1:] == v[:-1]] = np.inf
    best = int(np.argmin(sse))
    return float(v[best])


def two_means_f1(values, flipped) -> float:
    """F1 of flagging the lower cluster of a two-means split of the values as flipped.

    0 when the valuation is constant (no split, nothing flagged).
    """
    values, flipped = _check_labels(values, flipped)
    flagged = values <= two_means_split(values)
    true_positive = int((flagged & flipped).sum())
    denominator = int(flagged.sum()) + int(flipped.sum())
    return 2.0 * true_positive / denominator


def low_value_order(values, seed: int = 0) -> np.ndarray:
    """Positions from the lowest value to the highest, ties in a seeded random order.

    Some methods give many rows the same value (Data-OOB's out-of-bag accuracies, KNN-Shapley
    on duplicated rows); breaking those ties by position would let the row order of the
    dataset decide, so they are broken by a random permutation drawn from ``seed``.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    tie_break = np.random.default_rng(np.random.SeedSequence(seed)).permutation(values.size)
    return np.lexsort((tie_break, values))


def recall_at(values, flipped, share: float = 0.1, *, seed: int = 0) -> float:
    """Share of the flipped rows found among the ``ceil(share * n)`` lowest-valued rows.

    Ties at the cut are broken as in :func:`low_value_order`. Chance level is ``share``.
    """
    if not 0.0 < share <= 1.0:
        raise DataworthError(f"share={share!r} must be in (0, 1].")
    values, flipped = _check_labels(values, flipped)
    k = math.ceil(share * values.size)
    lowest = low_value_order(values, seed)[:k]
    return float(flipped[lowest].sum() / flipped.sum())


def detection_scores(
    result: ValuationResult | np.ndarray, flipped, *, share: float = 0.1, seed: int = 0
) -> dict[str, float]:
    """Every noisy-label detection measure of one valuation.

    Parameters
    ----------
    result : ValuationResult or array-like of float
        The valuation (its values, in player order).
    flipped : array-like
        Flipped ids (for a ValuationResult) or a boolean mask aligned with the values.
    share : float, default=0.1
        The bottom share whose recall is reported.
    seed : int, default=0
        Seed of the tie-break in the recall.

    Returns
    -------
    dict
        ``roc_auc``, ``average_precision``, ``f1_two_means``, ``recall_at_10`` (named after
        ``share`` in percent), ``n_flipped``, ``flip_rate`` (the chance level of AP and of the
        recall's precision), ``n_flagged_two_means``.

    Examples
    --------
    >>> import numpy as np
    >>> s = detection_scores(np.array([-1.0, -0.9, 0.5, 0.6, 0.7]), np.array([1, 1, 0, 0, 0], bool))
    >>> s["roc_auc"], s["f1_two_means"]
    (1.0, 1.0)
    """
    if isinstance(result, ValuationResult):
        mask = flipped_mask(result, flipped)
        values = result.values
    else:
        values = np.asarray(result, dtype=np.float64)
        mask = np.asarray(flipped, dtype=bool)
    values, mask = _check_labels(values, mask)
    return {
        "roc_auc": roc_auc(values, mask),
        "average_precision": average_precision(values, mask),
        "f1_two_means": two_means_f1(values, mask),
        f"recall_at_{round(share * 100)}": recall_at(values, mask, share, seed=seed),
        "n_flipped": int(mask.sum()),
        "flip_rate": float(mask.mean()),
        "n_flagged_two_means": int((values <= two_means_split(values)).sum()),
    }
