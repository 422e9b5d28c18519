"""Shapley and Banzhaf values from AME's subsets: AMESV, and Banzhaf by maximum sample reuse."""

from __future__ import annotations

import numpy as np

from dataworth.methods._common import Timer, manifest
from dataworth.methods.ame.estimate import _Config, _each, _estimate, _single, _size
from dataworth.methods.ame.explain import ame
from dataworth.methods.ame.lasso.cv import DEFAULT_FOLDS
from dataworth.methods.ame.players import _players
from dataworth.methods.ame.subsets import (
    ProgressCallback,
    Target,
    _evaluate_design,
    _resolve_target,
)
from dataworth.methods.intervals import banzhaf_interval
from dataworth.methods.result import ValuationResult
from dataworth.methods.sampler import LogitUniform, SubsetSampler, make_law


def ame_shapley(
    utility,
    *,
    n_subsets: int | None = None,
    k: int | None = None,
    size_factor: float = 8.0,
    eps: float = 0.01,
    target: Target = "metric",
    estimator: str = "lasso",
    groups=None,
    p_bins: int | None = None,
    cv: int = DEFAULT_FOLDS,
    n_alphas: int = 100,
    n_jobs: int | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    intervals: bool = False,
    n_boot: int | None = None,
) -> ValuationResult | dict[int, ValuationResult]:
    """Shapley values by the AME estimator (AMESV).

    ``logit(p)`` is drawn uniform on ``[logit(eps), logit(1-eps)]`` (density proportional to
    ``1/(p(1-p))``), subsets ``S ~ Bernoulli(p)``, memberships encoded ``x - p``. The
    importance weight cancels the encoding's variance ``p(1-p)``, so the regression
    coefficient is ``AME`` for ``p ~ Uniform(eps, 1-eps)`` directly (no rescaling); it differs
    from the Shapley value by at most ``4 * eps * max|marginal|`` (reported as
    ``params["bias_bound"]`` with the observed range of the utility for ``max|marginal|``).

    Parameters
    ----------
    utility : Utility or Game
        The game to value.
    n_subsets, k, size_factor : see :func:`ame`
    eps : float, default=0.01
        Truncation of ``p`` away from 0 and 1.
    target, estimator, groups, cv, n_alphas, n_jobs, seed, progress : see :func:`ame`
        The LASSO's values use the CV-minimum alpha.
    intervals, n_boot : see :func:`ame`
    p_bins : int, optional
        Number of quantile bins of ``p`` whose means are removed (an unpenalised intercept per
        bin); ``1`` is the single intercept of the authors' code. Default:
        ``clip(m // 100, 1, 10)``.

    Returns
    -------
    ValuationResult or dict of int to ValuationResult

    References
    ----------
    Lin et al., ICML 2022 (the AME-based Shapley value estimator).
    """
    game, ids, extra = _players(utility, groups)
    m, sizing = _size(n_subsets, k, size_factor, game.n_players)
    config = _Config(
        "ame_shapley",
        LogitUniform(eps),
        "centred",
        estimator,
        cv=cv,
        n_alphas=n_alphas,
        p_bins=p_bins,
        n_jobs=n_jobs,
        intervals=intervals,
        n_boot=n_boot,
    )
    out = _estimate(
        game,
        config,
        m=m,
        sizing=sizing,
        target=target,
        seed=seed,
        player_ids=ids,
        extra_columns=extra,
        progress=progress,
    )
    for result in _each(out):
        # max|U(S+i) - U(S)| <= range of U; the range over the drawn subsets stands in for it
        # (a lower estimate of the range, so the bound is indicative).
        result.params["eps"] = eps
        result.params["bias_bound"] = 4.0 * eps * result.params["y_range"]
        result.params["bias_bound_note"] = "|AME_eps - Shapley| <= 4 * eps * max|U(S+i) - U(S)|"
    return out


def banzhaf(
    utility,
    *,
    n_subsets: int,
    target: Target = "metric",
    estimator: str = "msr",
    groups=None,
    cv: int = DEFAULT_FOLDS,
    n_alphas: int = 100,
    n_jobs: int | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    intervals: bool = False,
    n_boot: int | None = None,
) -> ValuationResult | dict[int, ValuationResult]:
    """Banzhaf values: the AME for ``p = 1/2``, by maximum sample reuse.

    Every subset holds each player with probability 1/2 and serves every player: the value of
    ``i`` is the mean utility of the subsets that contain ``i`` minus the mean of those that do
    not (the MSR estimator of Wang and Jia), with its standard error.

    Parameters
    ----------
    utility : Utility or Game
        The game to value.
    n_subsets : int
        Number of subsets.
    target, groups, cv, n_alphas, n_jobs, seed, progress : see :func:`ame`
    intervals, n_boot : see :func:`ame`
        For the regression estimators only; the MSR interval is Welch's t across subsets.
    estimator : {"msr", "lasso", "ols", "moment"}, default="msr"
        The difference of means, or one of :func:`ame`'s regressions with ``P = {1/2}``.

    Returns
    -------
    ValuationResult or dict of int to ValuationResult

    References
    ----------
    Wang and Jia, "Data Banzhaf: A Robust Data Valuation Framework for Machine Learning",
    AISTATS 2023.
    """
    if estimator != "msr":
        out = ame(
            utility,
            n_subsets=n_subsets,
            law="banzhaf",
            target=target,
            estimator=estimator,
            groups=groups,
            cv=cv,
            n_alphas=n_alphas,
            n_jobs=n_jobs,
            seed=seed,
            progress=progress,
            intervals=intervals,
            n_boot=n_boot,
        )
        for result in _each(out):
            result.method = "banzhaf"
        return out
    game, ids, extra = _players(utility, groups)
    m, _ = _size(n_subsets, None, 1.0, game.n_players)
    keys, per_prediction = _resolve_target(game, target)
    sampler = SubsetSampler(game.n_players, make_law("banzhaf"))
    timer = Timer()
    with timer.phase("evaluate"):
        ev = _evaluate_design(
            game,
            sampler,
            seed,
            m,
            per_prediction,
            keys if per_prediction else [0],
            "banzhaf",
            progress,
        )
    with timer.phase("estimate"):
        inside = ev.masks.astype(np.float64)
        n_in = inside.sum(axis=0)
        n_out = m - n_in
        sum_in = inside.T @ ev.y
        sq_in = inside.T @ ev.y**2
        sum_out = ev.y.sum(axis=0) - sum_in
        sq_out = (ev.y**2).sum(axis=0) - sq_in
    distinct = len(np.unique(np.packbits(ev.masks, axis=1), axis=0))
    described = manifest(game)
    results = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for t, key in enumerate(keys):
            mean_in = sum_in[:, t] / n_in
            mean_out = sum_out[:, t] / n_out
            var_in = (sq_in[:, t] - n_in * mean_in**2) / (n_in - 1)
            var_out = (sq_out[:, t] - n_out * mean_out**2) / (n_out - 1)
            stderr = np.sqrt(np.maximum(var_in, 0) / n_in + np.maximum(var_out, 0) / n_out)
            ci_low, ci_high, ci_note, samples = banzhaf_interval(
                mean_in - mean_out, stderr, var_in, var_out, n_in, n_out, ev.masks, ev.y[:, t]
            )
            results[key] = ValuationResult(
                method="banzhaf",
                values=mean_in - mean_out,  # NaN for a player never in (or never out)
                player_ids=ids,
                stderr=stderr,
                counts=np.full(game.n_players, m),
                params={
                    "n_subsets": m,
                    "estimator": "msr",
                    "target": key if key == "metric" else f"test:{key}",
                    "resumed_subsets": ev.resumed,
                },
                seed=seed,
                n_evaluations=distinct,
                n_fitted=ev.n_fitted,
                n_fallback=ev.n_fallback,
                timings=dict(timer.seconds),
                manifest=described,
                extra=dict(extra) | {"n_in": n_in.astype(np.int64)},
                ci_low=ci_low,
                ci_high=ci_high,
                ci_note=ci_note,
                samples=samples,
            )
    return results[keys[0]] if _single(target) else results
