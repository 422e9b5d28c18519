"""The flat AME: one regression over every player (docs/design.md, section 5)."""

from __future__ import annotations

from dataworth.errors import DataworthError
from dataworth.methods.ame.estimate import _Config, _estimate, _size
from dataworth.methods.ame.lasso.cv import DEFAULT_FOLDS
from dataworth.methods.ame.players import _players
from dataworth.methods.ame.subsets import ProgressCallback, Target
from dataworth.methods.result import ValuationResult
from dataworth.methods.sampler import LogitUniform, PLaw, make_law


def flat_ame(
    utility,
    *,
    n_subsets: int | None = None,
    k: int | None = None,
    size_factor: float = 8.0,
    law: str | PLaw = "grid",
    eps: float = 0.01,
    target: Target = "metric",
    estimator: str = "lasso",
    fdr: float | None = None,
    knockoff_plus: bool = True,
    side: str = "positive",
    groups=None,
    cv: int = DEFAULT_FOLDS,
    n_alphas: int = 100,
    n_jobs: int | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    intervals: bool = False,
    n_boot: int | None = None,
    deadline: float | None = None,
) -> ValuationResult | dict[int, ValuationResult]:
    """The flat AME of every player: :func:`~dataworth.methods.ame.explain.ame` with
    ``mode="flat"``, which documents the parameters (the hierarchy's first level runs it on
    the groups); ``deadline`` is the :func:`time.perf_counter` time past which its fits stop
    (``ame``'s ``time_budget``)."""
    the_law = make_law(law, eps=eps)
    if isinstance(the_law, LogitUniform):
        raise DataworthError("The logit-uniform law is the AMESV design; use ame_shapley().")
    game, ids, extra = _players(utility, groups)
    m, sizing = _size(n_subsets, k, size_factor, game.n_players)
    config = _Config(
        "ame",
        the_law,
        "ipw",
        estimator,
        fdr,
        knockoff_plus,
        side,
        cv,
        n_alphas,
        n_jobs=n_jobs,
        intervals=intervals,
        n_boot=n_boot,
    )
    return _estimate(
        game,
        config,
        m=m,
        sizing=sizing,
        target=target,
        seed=seed,
        player_ids=ids,
        extra_columns=extra,
        progress=progress,
        deadline=deadline,
    )
