"""Time the group methods on the groups the study will value: leave-group-out and TMC of groups.

A generic refit at the full size overstates both: the study's default groups hold 10% to 100% of
the rows, so the subsets left after removing one hold from 90% down to none of them, and TMC of
groups warm-starts each union of groups from the one before. Both are timed here on the real
groups, on a small piece of the real work, and scaled up (see :func:`time_group_paths`).
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

import numpy as np

LEAVE_OUT_TIMED = 2
"""Leave-group-out subsets timed (the smallest group's and the median group's removal)."""


def time_group_paths(
    utility, groups: dict[str, np.ndarray], *, seed: int, tol: float
) -> dict[str, dict[str, Any]]:
    """Seconds of leave-group-out (per kept row) and of one TMC permutation of the groups.

    Leave-group-out refits ``D \\ G`` for every group; its cost grows with the kept rows, so two
    removals (the smallest group's, the most rows kept, and the median group's) give the seconds
    per kept row, and the estimate sums the kept rows of every group (a removal that keeps no
    row is the prior, free). TMC of groups is timed on one permutation of its own, through the
    same estimator the study runs (its chain of unions, truncation included).

    Parameters
    ----------
    utility : Utility
        The cost study's utility (the full fit already stored, as in the study).
    groups : dict of str to ndarray
        The study's groups, as integer positions.
    seed, tol : int, float
        TMC's seed and truncation tolerance.

    Returns
    -------
    dict
        ``leave_group_out``: ``seconds``, ``kept_rows`` (timed), ``per_kept_row`` and
        ``total_kept_rows`` (of every group); ``tmc_groups``: ``seconds`` of one permutation.
    """
    from dataworth.methods.shapley import tmc_shapley

    n = utility.n_players
    members = [np.unique(np.asarray(g, dtype=np.int64)) for g in groups.values()]
    kept = np.array([n - len(m) for m in members])
    by_size = np.argsort(-kept, kind="stable")
    timed = [int(by_size[0]), int(by_size[len(by_size) // 2])][:LEAVE_OUT_TIMED]
    timed = [g for g in dict.fromkeys(timed) if kept[g] > 0]
    paths: dict[str, dict[str, Any]] = {}
    if timed:
        masks = np.ones((len(timed), n), dtype=bool)
        for row, g in enumerate(timed):
            masks[row, members[g]] = False
        start = perf_counter()
        utility.evaluate(masks)
        seconds = perf_counter() - start
        rows = int(kept[timed].sum())
        paths["leave_group_out"] = {
            "seconds": seconds,
            "kept_rows": rows,
            "per_kept_row": seconds / rows,
            "total_kept_rows": int(kept.sum()),
        }
    start = perf_counter()
    tmc_shapley(utility, permutations=1, tol=tol, seed=seed, groups=groups)
    paths["tmc_groups"] = {"permutations": 1, "seconds": perf_counter() - start}
    return paths


def estimate_leave_group_out(path: dict[str, Any]) -> float:
    """Seconds of leave-group-out of every group, from :func:`time_group_paths`'s timing."""
    return path["per_kept_row"] * path["total_kept_rows"]
