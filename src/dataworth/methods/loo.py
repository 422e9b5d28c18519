"""Exact leave-one-out and leave-group-out influence (docs/design.md, section 2)."""

from __future__ import annotations

from time import perf_counter

import numpy as np

from dataworth.engine.group_game import parse_groups
from dataworth.machine import one_blas_thread
from dataworth.methods._common import Timer, manifest, point_ids, resolve_points
from dataworth.methods.result import ValuationResult

# LOO masks are built and evaluated this many points at a time, so memory stays bounded
# (a full (n, n) mask matrix would be 100 MB at n = 10,000).
_BLOCK = 1024


def loo(
    utility,
    points=None,
    *,
    n_random: int | None = None,
    seed: int = 0,
    progress=None,
    time_budget: float | None = None,
) -> ValuationResult:
    """Exact leave-one-out influence ``U(D) - U(D \\ {i})``.

    Parameters
    ----------
    utility : Utility or Game
        The game to value.
    points : sequence, optional
        Ids of the points to value (source ids for a :class:`~dataworth.Utility`, positions for
        a plain :class:`~dataworth.Game`). Default: every training point.
    n_random : int, optional
        Instead of ``points``, value this many points drawn at random with ``seed``.
    seed : int, default=0
        Seed of the random draw.
    progress : callable, optional
        ``progress(done, total)`` after each block of points.
    time_budget : float, optional
        Stop after the block of points (1,024 at a time) that passes this many seconds; the
        points valued by then are kept, each value exact (``params["stopped_by"]`` says so).

    Returns
    -------
    ValuationResult
        Values in training order of the valued points; ``extra["position"]`` holds their
        positions in the training set.

    Examples
    --------
    >>> import dataworth as dw
    >>> task = dw.load_dataset("breast_cancer", train_size=200, seed=0)
    >>> result = dw.loo(dw.Utility(task), n_random=5, seed=0)
    >>> len(result)
    5
    """
    positions = resolve_points(utility, points, n_random, seed)
    n = utility.n_players
    timer = Timer()
    started = perf_counter()
    stopped_by = None
    # One BLAS thread: the batched learners run their subsets on threads of their own, and BLAS
    # threads on the many small products of scoring each subset (its (n_test, d) by (d, K)
    # logits) only add synchronisation (22x the CPU time at 12,500 test rows and 5 classes).
    # Below about 2,500 test rows BLAS uses one thread anyway, so small tasks' bits are as before.
    with timer.phase("evaluate"), one_blas_thread():
        full = utility.evaluate(np.ones((1, n), dtype=bool))
        values = np.empty(len(positions))
        n_fitted, n_fallback = full.n_fitted, full.n_fallback
        for start in range(0, len(positions), _BLOCK):
            block = positions[start : start + _BLOCK]
            masks = np.ones((len(block), n), dtype=bool)
            masks[np.arange(len(block)), block] = False
            ev = utility.evaluate(masks)
            values[start : start + len(block)] = full.scores[0] - ev.scores
            n_fitted += ev.n_fitted
            n_fallback += ev.n_fallback
            if progress is not None:
                progress(start + len(block), len(positions))
            done = start + len(block)
            if time_budget is not None and done < len(positions):
                if perf_counter() - started >= time_budget:
                    stopped_by = f"time budget {time_budget:g} s"
                    positions, values = positions[:done], values[:done]
                    break
    params = {"points": "all" if points is None and n_random is None else len(positions)}
    if stopped_by is not None:
        params |= {"points": len(positions), "stopped_by": stopped_by}
    return ValuationResult(
        method="loo",
        values=values,
        player_ids=point_ids(utility, positions),
        counts=np.full(len(positions), 2),
        exact=True,
        params=params,
        seed=seed if n_random is not None else None,
        n_evaluations=len(positions) + 1,
        n_fitted=n_fitted,
        n_fallback=n_fallback,
        timings=timer.seconds,
        manifest=manifest(utility) | {"full_score": float(full.scores[0])},
        extra={"position": positions},
    )


def leave_group_out(utility, groups, *, progress=None) -> ValuationResult:
    """Exact leave-group-out influence ``U(D) - U(D \\ G)`` of each group ``G``.

    Parameters
    ----------
    utility : Utility or Game
        The game to value.
    groups : dict of str to array-like, or list of array-like
        Training positions of each group (groups may overlap); every form of
        :func:`~dataworth.engine.group_game.parse_groups`.
    progress : callable, optional
        ``progress(done, total)`` as groups finish.

    Returns
    -------
    ValuationResult
        One value per group, with ``extra["size"]`` and ``extra["fraction"]``.
    """
    n = utility.n_players
    names, members = parse_groups(groups, n)
    timer = Timer()
    with timer.phase("evaluate"):
        masks = np.ones((len(members) + 1, n), dtype=bool)
        for g, positions in enumerate(members, start=1):
            masks[g, positions] = False
        ev = utility.evaluate(masks)
    if progress is not None:
        progress(len(members), len(members))
    sizes = np.array([len(m) for m in members])
    return ValuationResult(
        method="leave_group_out",
        values=ev.scores[0] - ev.scores[1:],
        player_ids=np.array(names, dtype=object),
        counts=np.full(len(members), 2),
        exact=True,
        params={"n_groups": len(members)},
        n_evaluations=len(members) + 1,
        n_fitted=ev.n_fitted,
        n_fallback=ev.n_fallback,
        timings=timer.seconds,
        manifest=manifest(utility) | {"full_score": float(ev.scores[0])},
        extra={"size": sizes, "fraction": sizes / n},
    )
