"""Two-level AME: groups first, then the points of the groups selected at the first level."""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import numpy as np

from dataworth.engine.group_game import GroupGame, parse_groups
from dataworth.errors import DataworthError
from dataworth.methods._common import point_ids
from dataworth.methods.ame.estimate import _Config, _estimate, _single, _size
from dataworth.methods.ame.flat import flat_ame
from dataworth.methods.ame.lasso.cv import DEFAULT_FOLDS
from dataworth.methods.ame.subsets import ProgressCallback
from dataworth.methods.result import ValuationResult
from dataworth.methods.sampler import STREAM_LEVEL2, PLaw, make_law


def _within_budget(chosen, values, members, names, side: str, max_points: int):
    """The selected groups of largest value on ``side`` whose points fit in ``max_points``."""
    sign = 1.0 if side == "positive" else -1.0
    order = chosen[np.argsort(-sign * values[chosen], kind="stable")]
    kept, dropped, total = [], [], 0
    for g in order:
        size = len(members[g])
        if total + size <= max_points:
            kept.append(g)
            total += size
        else:
            dropped.append(names[g])
    return np.sort(np.array(kept, dtype=np.int64)), dropped


@dataclass
class HierarchicalResult:
    """The two levels of :func:`ame_hierarchical`.

    Attributes
    ----------
    groups : ValuationResult
        Level 1: one value per group, with ``extra["selected"]`` (and ``extra["w"]`` when an
        FDR was asked for).
    points : ValuationResult or None
        Level 2: one value per point of the selected groups, with ``extra["position"]`` and
        ``extra["group"]`` (the first selected group holding the point); None when no group
        was selected.
    selected_groups : list of str
        Names of the groups selected at level 1.
    """

    groups: ValuationResult
    points: ValuationResult | None
    selected_groups: list[str]


def ame_hierarchical(
    utility,
    groups,
    *,
    n_subsets_groups: int | None = None,
    k_groups: int | None = None,
    n_subsets_points: int | None = None,
    k_points: int | None = None,
    size_factor: float = 8.0,
    law: str | PLaw = "grid",
    eps: float = 0.01,
    target: str | int = "metric",
    fdr: float | None = 0.1,
    knockoff_plus: bool = True,
    side: str = "positive",
    cv: int = DEFAULT_FOLDS,
    n_alphas: int = 100,
    n_jobs: int | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    max_points: int | None = None,
    time_budget: float | None = None,
) -> HierarchicalResult:
    """Two-level AME: groups first, then the points inside the selected groups.

    Level 1 samples groups (each in or out of a subset as a whole) and selects the groups
    that matter, by Knockoffs at ``fdr`` (or the one-standard-error LASSO support when ``fdr``
    is None). Level 2 samples anew with the points of the selected groups as players, each in
    or out on its own, while every other group stays a player in or out as a whole: the rest
    of the data keeps varying as at level 1, and its effect is absorbed by those group columns
    instead of inflating the noise. Level 2 uses its own seed stream, so its design is
    independent of level 1's.

    Parameters
    ----------
    utility : Utility or Game
        The game on training points.
    groups : dict or list
        Group name -> training positions (any builder of :mod:`dataworth.methods.groups`),
        or a list of position arrays.
    n_subsets_groups, k_groups : int, optional
        Level-1 size: ``m`` directly, or from an assumed number of influential groups.
    n_subsets_points, k_points : int, optional
        Level-2 size: ``m`` directly, or from an assumed number of influential points.
    size_factor, law, eps, fdr, knockoff_plus, side, cv, n_alphas, n_jobs : see
        :func:`~dataworth.methods.ame.explain.ame`
    target : "metric" or int, default="metric"
        One target: the metric or one test row.
    seed : int, default=0
        Level 1 uses ``seed``; level 2 a seed derived from it (recorded in its params).
    progress : callable, optional
        ``progress(done, total)`` within each level.
    max_points : int, optional
        At most this many points at level 2: when the selected groups hold more, the
        selected groups of largest level-1 value (on ``side``) are kept while they fit; the
        others are listed in the level-2 ``params["groups_dropped_for_size"]``.
    time_budget : float, optional
        Seconds the two levels' fits may take: level 1's stop at half of it, level 2's at all
        of it (see :func:`~dataworth.methods.ame.explain.ame`).

    Returns
    -------
    HierarchicalResult

    References
    ----------
    Lin et al., ICML 2022 (the hierarchical extension of AME).
    """
    if not _single(target):
        raise DataworthError("The hierarchical AME explains one target: 'metric' or one test row.")
    names, members = parse_groups(groups, utility.n_players)
    options = {
        "size_factor": size_factor,
        "law": law,
        "eps": eps,
        "target": target,
        "fdr": fdr,
        "knockoff_plus": knockoff_plus,
        "side": side,
        "cv": cv,
        "n_alphas": n_alphas,
        "n_jobs": n_jobs,
        "progress": progress,
    }
    started = perf_counter()
    # Both levels fit about as many subsets of about half the rows: half the time each.
    deadline = None if time_budget is None else started + time_budget
    level1 = flat_ame(
        utility,
        n_subsets=n_subsets_groups,
        k=k_groups,
        groups=dict(zip(names, members, strict=True)),
        seed=seed,
        deadline=None if time_budget is None else started + time_budget / 2,
        **options,
    )
    level1.method = "ame_hierarchical_groups"
    chosen = np.flatnonzero(level1.extra["selected"])
    dropped: list[str] = []
    if max_points is not None and len(chosen):
        chosen, dropped = _within_budget(chosen, level1.values, members, names, side, max_points)
    selected = [names[g] for g in chosen]
    if not len(chosen):
        return HierarchicalResult(level1, None, selected)

    points = np.unique(np.concatenate([members[g] for g in chosen]))
    owner = np.empty(len(points), dtype=object)
    for g in chosen[::-1]:  # the first selected group holding a point names it
        owner[np.isin(points, members[g])] = names[g]
    context_names, context_members = [], []
    for g in range(len(members)):
        if g in chosen:
            continue
        rest = np.setdiff1d(members[g], points)
        if rest.size:
            context_names.append(names[g])
            context_members.append(rest)
    # Keyed as level 1 is (see GroupGame's fingerprint_from), so a resumed run finds its journal.
    game = GroupGame(
        utility,
        [[i] for i in points] + context_members,
        names=[f"point:{i}" for i in points] + context_names,
        fingerprint_from="members",
    )
    seed2 = int(np.random.SeedSequence(seed, spawn_key=(STREAM_LEVEL2,)).generate_state(1)[0])
    m, sizing = _size(n_subsets_points, k_points, size_factor, game.n_players)
    config = _Config(
        "ame_hierarchical_points",
        make_law(law, eps=eps),
        "ipw",
        "lasso",
        fdr,
        knockoff_plus,
        side,
        cv,
        n_alphas,
        n_jobs=n_jobs,
        intervals=False,  # as level 1 (ame's default): the bootstrap only when asked for
    )
    full = _estimate(
        game,
        config,
        m=m,
        sizing=sizing,
        target=target,
        seed=seed2,
        player_ids=np.arange(game.n_players),
        extra_columns={},
        progress=progress,
        deadline=deadline,
    )
    # Keep the point players; the context groups only served to explain variance.
    head = slice(0, len(points))
    full.params |= {
        "level1_seed": seed,
        "selected_groups": selected,
        "groups_dropped_for_size": dropped,
        "context_groups": context_names,
    }
    level2 = ValuationResult(
        method=full.method,
        values=full.values[head],
        player_ids=point_ids(utility, points),
        stderr=None if full.stderr is None else full.stderr[head],
        counts=full.counts[head],
        params=full.params,
        seed=seed2,
        n_evaluations=full.n_evaluations,
        n_fitted=full.n_fitted,
        n_fallback=full.n_fallback,
        timings=full.timings,
        manifest=full.manifest,
        extra={name: col[head] for name, col in full.extra.items()}
        | {"position": points, "group": owner},
    )
    return HierarchicalResult(level1, level2, selected)
