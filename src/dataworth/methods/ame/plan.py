"""How much memory AME's regression needs, and whether to run it flat or hierarchically.

The subset fits of AME are cheap in memory (a block of subsets at a time); its regression is
not. With ``n`` players, ``m`` subsets and Knockoffs, the regression holds:

* the subsets' memberships, ``m x n`` booleans, and as many again for the knockoff draws;
* the encoded design, ``m x c`` float64 with ``c = n`` columns (``2n`` with Knockoffs);
* the Gram matrix ``c x c`` in float64 and a float32 copy, and the float32 fold Gram matrices:
  all ``K`` of them when they fit in 1.5 GB together (the folds walk the grid in lockstep), else
  one per worker thread (see :mod:`dataworth.methods.ame.lasso.cv`); above
  :data:`~dataworth.methods.ame.lasso.cv.GRAM_LIMIT` columns, each worker holds instead a float32
  copy of the training rows of the design.

:func:`ame_memory_bytes` adds these up; :func:`plan_ame` compares the total with the memory
available and chooses: the flat AME when it fits and the regression has at most
:data:`FLAT_COLUMN_LIMIT` columns (beyond, the n x n Gram matrix is the cost: forming it takes
``m c^2`` operations), else the hierarchical AME of Lin et al. (groups of points first, then the
points of the selected groups), whose regressions have about ``sqrt(n)`` columns at the first
level. Both are decided before any subset is fitted.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from dataworth.errors import DataworthError
from dataworth.learners.memory import available_memory as _available_memory
from dataworth.methods.ame.lasso.cv import DEFAULT_FOLDS, GRAM_LIMIT, fold_grams_bytes
from dataworth.methods.ame.lasso.folds import FOLD_GRAMS_BYTES, GRAM_BLOCK
from dataworth.methods.sampler import STREAM_PARTITION

# Regressions wider than this run hierarchically in the study (see the module docstring).
FLAT_COLUMN_LIMIT = GRAM_LIMIT
# Share of the available memory the regression may take (the fits' workers need the rest).
MEMORY_SHARE = 0.5
_GIB = 1024**3


def available_memory() -> int:
    """Bytes of memory available now: the learners' reading (Linux ``MemAvailable``, capped by
    ``DATAWORTH_MEMORY_LIMIT``), or 8 GiB, a small machine, when it cannot be told."""
    found = _available_memory()
    return 8 * _GIB if found is None else found


def ame_memory_bytes(
    n_players: int,
    n_subsets: int,
    knockoffs: bool = False,
    n_targets: int = 1,
    n_jobs: int | None = None,
) -> int:
    """Peak bytes of AME's regression (the design, its Gram matrices, the scores).

    Parameters
    ----------
    n_players : int
        Players (points, or groups when groups are valued).
    n_subsets : int
        Subsets ``m``.
    knockoffs : bool, default=False
        Whether Knockoff columns join the design (twice the columns).
    n_targets : int, default=1
        Targets explained by one regression (test rows share the design and Gram matrix).
    n_jobs : int, optional
        Threads over the folds (default: one per core).

    Returns
    -------
    int
        An upper estimate in bytes; the subset fits themselves are not included.

    Examples
    --------
    >>> round(ame_memory_bytes(2000, 4000) / 2**30, 2)
    0.39
    """
    n, m = int(n_players), int(n_subsets)
    cols = n * (2 if knockoffs else 1)
    # Threads over folds: at most one per fold (the default 10 folds).
    workers = min(n_jobs if n_jobs is not None else (os.cpu_count() or 1), DEFAULT_FOLDS)
    masks = m * n * (2 if knockoffs else 1) * 2  # drawn blocks, then joined
    design = 8 * m * cols + 8 * m * min(cols, 1024)  # the design, and its centring by blocks
    fold_grams = fold_grams_bytes(cols, DEFAULT_FOLDS)
    if cols <= GRAM_LIMIT and fold_grams <= FOLD_GRAMS_BYTES:
        # Folds in lockstep: every fold's float32 Gram matrix and float64 validation rows
        # (together one copy of the design) at once; per worker while they are formed, a copy
        # of its validation rows and a float64 block of GRAM_BLOCK columns; each fold's
        # targets, coefficients and G w.
        per_target = 4 * DEFAULT_FOLDS * (m + 6 * cols)
        forming = (8 * (m // DEFAULT_FOLDS + 1) + 16 * GRAM_BLOCK) * cols * workers
        grams = 8 * cols * cols + fold_grams + 8 * m * cols + forming
        grams += per_target * n_targets
    else:
        # Each worker also copies its validation rows (at most half the rows, float64 and
        # float32).
        val_rows = (6 * m + 12) * cols * workers
        if cols <= GRAM_LIMIT:
            grams = 12 * cols * cols + min(4 * cols * cols * workers, FOLD_GRAMS_BYTES) + val_rows
        else:  # covariance-free: each worker copies its training rows in float32
            grams = 4 * m * cols * workers + val_rows
    scores = 8 * m * n_targets * 4 + 8 * cols * n_targets * 4
    return int(masks + design + grams + scores)


@dataclass(frozen=True)
class AmePlan:
    """The estimator AME will run, decided before any fit.

    Attributes
    ----------
    mode : {"flat", "hierarchical"}
    n_players, n_subsets : int
    knockoffs : bool
    flat_bytes : int
        :func:`ame_memory_bytes` of the flat regression.
    memory_limit : int
        Bytes the regression may take.
    n_groups : int or None
        Groups of the first hierarchical level.
    reason : str
        One sentence for the terminal and the report.
    """

    mode: str
    n_players: int
    n_subsets: int
    knockoffs: bool
    flat_bytes: int
    memory_limit: int
    n_groups: int | None
    reason: str

    def describe(self) -> dict:
        return {
            "mode": self.mode,
            "flat_gib": round(self.flat_bytes / _GIB, 2),
            "limit_gib": round(self.memory_limit / _GIB, 2),
            "n_groups": self.n_groups,
            "reason": self.reason,
        }


def _default_limit(memory_limit: int | None) -> int:
    return int(memory_limit if memory_limit is not None else MEMORY_SHARE * available_memory())


def max_subsets(
    n_players: int, knockoffs: bool, memory_limit: int, n_targets: int = 1, n_jobs=None
) -> int:
    """The most subsets whose flat regression fits in ``memory_limit`` bytes (0 if none)."""
    fixed = ame_memory_bytes(n_players, 0, knockoffs, n_targets, n_jobs)
    per_subset = ame_memory_bytes(n_players, 1, knockoffs, n_targets, n_jobs) - fixed
    if fixed >= memory_limit:
        return 0
    return int((memory_limit - fixed) // max(per_subset, 1))


def check_fits(
    n_players: int,
    n_subsets: int,
    *,
    knockoffs: bool,
    n_targets: int = 1,
    n_jobs: int | None = None,
    memory_limit: int | None = None,
) -> int:
    """Raise a :class:`DataworthError` before any fit when the regression cannot fit in memory.

    Returns the estimated bytes when it fits.
    """
    limit = _default_limit(memory_limit)
    needed = ame_memory_bytes(n_players, n_subsets, knockoffs, n_targets, n_jobs)
    if needed <= limit:
        return needed
    most = max_subsets(n_players, knockoffs, limit, n_targets, n_jobs)
    fits = (
        f"at most {most} subsets would fit"
        if most >= 2
        else "no number of subsets fits for so many players"
    )
    raise DataworthError(
        f"AME's regression on {n_players} players with {n_subsets} subsets"
        f"{' and knockoffs' if knockoffs else ''} needs about {needed / _GIB:.1f} GiB but "
        f"{limit / _GIB:.1f} GiB are available; {fits}. Use fewer subsets, value groups "
        "(groups=...), or ame_hierarchical (groups first, then their points)."
    )


def hierarchy_size(n_players: int) -> int:
    """Groups of the first level: about ``sqrt(n)`` groups of about ``sqrt(n)`` points."""
    return max(2, round(math.sqrt(n_players)))


def plan_ame(
    n_players: int,
    n_subsets: int,
    *,
    knockoffs: bool = False,
    n_targets: int = 1,
    n_jobs: int | None = None,
    memory_limit: int | None = None,
) -> AmePlan:
    """Choose between the flat and the hierarchical AME for a design of this size.

    Flat when the regression fits in ``memory_limit`` (default: half the memory available now)
    and has at most :data:`FLAT_COLUMN_LIMIT` columns; hierarchical otherwise, with
    :func:`hierarchy_size` groups. Raises a :class:`DataworthError` when even the first
    hierarchical level would not fit.

    Parameters
    ----------
    n_players, n_subsets, knockoffs, n_targets, n_jobs : see :func:`ame_memory_bytes`
    memory_limit : int, optional
        Bytes the regression may take.

    Returns
    -------
    AmePlan
    """
    limit = _default_limit(memory_limit)
    needed = ame_memory_bytes(n_players, n_subsets, knockoffs, n_targets, n_jobs)
    cols = n_players * (2 if knockoffs else 1)
    common = {
        "n_players": n_players,
        "n_subsets": n_subsets,
        "knockoffs": knockoffs,
        "flat_bytes": needed,
        "memory_limit": limit,
    }
    if needed <= limit and cols <= FLAT_COLUMN_LIMIT:
        reason = (
            f"flat AME: the regression on {cols} columns needs about {needed / _GIB:.2f} GiB "
            f"of {limit / _GIB:.1f} GiB"
        )
        return AmePlan("flat", n_groups=None, reason=reason, **common)
    groups = hierarchy_size(n_players)
    check_fits(
        groups, n_subsets, knockoffs=knockoffs, n_jobs=n_jobs, memory_limit=limit, n_targets=1
    )
    why = (
        f"needs about {needed / _GIB:.1f} GiB of {limit / _GIB:.1f} GiB"
        if needed > limit
        else f"has {cols} columns (more than {FLAT_COLUMN_LIMIT}: its Gram matrix alone "
        f"takes {cols * cols * 8 / _GIB:.1f} GiB and {n_subsets * cols * cols:.1e} operations)"
    )
    reason = (
        f"hierarchical AME: the flat regression {why}; {groups} groups of about "
        f"{n_players // groups} points first, then the points of the selected groups"
    )
    return AmePlan("hierarchical", n_groups=groups, reason=reason, **common)


def random_partition(n_players: int, n_groups: int, seed: int) -> dict[str, np.ndarray]:
    """``n_groups`` groups of nearly equal size, drawn at random from the seed."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_PARTITION,)))
    order = rng.permutation(n_players)
    return {f"part_{g}": np.sort(part) for g, part in enumerate(np.array_split(order, n_groups))}
