"""The estimator the AME methods share: evaluate the design, regress, select, give intervals.

:func:`_estimate` turns a configuration (law, encoding, regression, Knockoffs) into one
:class:`~dataworth.methods.result.ValuationResult` per target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataworth.errors import DataworthError
from dataworth.methods._common import Timer, manifest
from dataworth.methods.ame.design_ahead import DesignAhead
from dataworth.methods.ame.encoding import _centre, _design, _p_strata
from dataworth.methods.ame.intervals import default_resamples, lasso_bootstrap
from dataworth.methods.ame.knockoffs import knockoff_threshold, w_statistics
from dataworth.methods.ame.lasso.cv import DEFAULT_FOLDS
from dataworth.methods.ame.plan import check_fits
from dataworth.methods.ame.regression import _ESTIMATORS, _lasso_cv, _moments, _ols
from dataworth.methods.ame.subsets import (
    _BLOCK,
    ProgressCallback,
    Target,
    _evaluate_design,
    _resolve_target,
)
from dataworth.methods.intervals import LEVEL, sampled_interval
from dataworth.methods.result import ValuationResult
from dataworth.methods.sampler import LogitUniform, PLaw, SubsetSampler, subsets_for


@dataclass
class _Config:
    method: str
    law: PLaw
    encoding: str  # "ipw" or "centred"
    estimator: str
    fdr: float | None = None
    knockoff_plus: bool = True
    side: str = "positive"
    cv: int = DEFAULT_FOLDS
    n_alphas: int = 100
    max_iter: int = 1000
    tol: float = 1e-4
    p_bins: int | None = None
    n_jobs: int | None = None
    intervals: bool = True
    n_boot: int | None = None

    @property
    def scale(self) -> float:
        """Regression coefficient -> AME: ``c`` for the ``1/p`` encoding, 1 for ``x - p``."""
        return self.law.ipw_variance if self.encoding == "ipw" else 1.0

    @property
    def moment_scale(self) -> float:
        """Moment ``E[x_i y]`` -> AME: 1 for ``1/p``; ``1 / E[p(1-p)]`` for ``x - p``."""
        if self.encoding == "ipw":
            return 1.0
        assert isinstance(self.law, LogitUniform)
        return 1.0 / self.law.centred_variance


def _size(n_subsets: int | None, k: int | None, factor: float, n: int) -> tuple[int, dict]:
    if n_subsets is not None and k is not None:
        raise DataworthError("Give either n_subsets or k (the assumed number of points), not both.")
    if n_subsets is None and k is None:
        raise DataworthError(
            "Say how many subsets to fit: n_subsets=M, or k=K influential points "
            "(then M = factor * K * log2(n))."
        )
    if k is not None:
        m = subsets_for(k, n, factor)
        return m, {"k": int(k), "size_factor": float(factor)}
    if n_subsets < 2:
        raise DataworthError(f"AME needs at least 2 subsets; got n_subsets={n_subsets}.")
    return int(n_subsets), {}


def _estimate(
    game,
    config: _Config,
    *,
    m: int,
    sizing: dict,
    target: Target,
    seed: int,
    player_ids: np.ndarray,
    extra_columns: dict,
    progress: ProgressCallback | None,
    deadline: float | None = None,
) -> ValuationResult | dict[int, ValuationResult]:
    if config.estimator not in _ESTIMATORS:
        raise DataworthError(f"Unknown estimator {config.estimator!r}; use one of {_ESTIMATORS}.")
    if config.fdr is not None and not 0.0 <= config.fdr <= 1.0:
        raise DataworthError(f"The target FDR must lie in [0, 1]; got {config.fdr}.")
    if config.cv < 2:
        raise DataworthError(f"cv must be at least 2 folds; got {config.cv}.")
    keys, per_prediction = _resolve_target(game, target)
    n = game.n_players
    # Before any fit: a regression that cannot fit in memory is refused now, not after the
    # subsets were paid for.
    check_fits(n, m, knockoffs=config.fdr is not None, n_targets=len(keys), n_jobs=config.n_jobs)
    sampler = SubsetSampler(n, config.law)
    timer = Timer()
    # The LASSO's design and Gram matrices need the subsets only: built while they are fitted.
    ahead = DesignAhead(sampler, seed, m, config, _BLOCK) if config.estimator == "lasso" else None
    with timer.phase("evaluate"):
        try:
            ev = _evaluate_design(
                game,
                sampler,
                seed,
                m,
                per_prediction,
                keys if per_prediction else [0],
                config.method,
                progress,
                predrawn=ahead.drawn if ahead is not None else None,
                deadline=deadline,
            )
        except BaseException:
            if ahead is not None:
                ahead.cancel()
            raise
    asked, m = m, len(ev.p)  # fewer when the deadline stopped the fits
    if ev.stopped_early and ahead is not None:
        ahead.cancel()  # built for all m samples: the ordinary path builds the design of m'
        ahead = None
    with timer.phase("regress"):
        built = ahead.result(ev.p, ev.masks) if ahead is not None else None
        del ahead
        prepared = None
        if built is not None:
            x, strata, prepared = built.x, built.strata, built.prepared
        else:
            strata = _p_strata(ev.p, config.law, config.p_bins)
            knock = sampler.knockoffs(seed, ev.p, 0) if config.fdr is not None else None
            x = _centre(_design(ev.masks, knock, ev.p, config.encoding), strata)
            del knock
        del built
        n_strata = int(strata.max()) + 1
        y = _centre(ev.y.copy(), strata)
        if config.estimator == "lasso":
            fits = _lasso_cv(
                x,
                y,
                cv=config.cv,
                n_alphas=config.n_alphas,
                seed=seed,
                max_iter=config.max_iter,
                tol=config.tol,
                n_jobs=config.n_jobs,
                prepared=prepared,
            )
            del prepared
            scale = config.scale
        elif config.estimator == "ols":
            fits = _ols(x, y, n_strata)
            scale = config.scale
        else:
            fits = _moments(x, y, n_strata)
            scale = config.moment_scale
    with timer.phase("intervals"):
        bounds = _intervals(config, x, y, strata, fits, scale, n=n, seed=seed)
    del x, y

    distinct = len(np.unique(np.packbits(ev.masks, axis=1), axis=0))
    params = {
        "n_subsets": m,
        **sizing,
        **({"n_subsets_asked": asked, "stopped_by": "time budget"} if ev.stopped_early else {}),
        "law": config.law.describe(),
        "encoding": config.encoding,
        "estimator": config.estimator,
        "scale_c": config.scale,
        "value_scale": scale,
        "p_strata": n_strata,
        "fdr": config.fdr,
        "knockoff_plus": config.knockoff_plus if config.fdr is not None else None,
        "side": config.side,
        "resumed_subsets": ev.resumed,
    }
    described = manifest(game)  # once: it reads package metadata
    results: dict = {}
    for key, fit in zip(keys, fits, strict=True):
        values = scale * fit.coef[:n]
        extra = dict(extra_columns)
        extra["value_1se"] = scale * fit.coef_select[:n]
        target_params = params | {"target": key if key == "metric" else f"test:{key}"} | fit.info
        column = ev.y[:, keys.index(key)]
        target_params["y_range"] = float(column.max() - column.min())
        if config.fdr is not None:
            w = w_statistics(fit.coef_select[:n], fit.coef_select[n:], side=config.side)
            threshold = knockoff_threshold(w, config.fdr, plus=config.knockoff_plus)
            extra["w"] = w
            extra["selected"] = w >= threshold
            target_params["knockoff_threshold"] = threshold
        else:
            sign = 1.0 if config.side == "positive" else -1.0
            # Without knockoffs the selection is the one-standard-error LASSO support on the
            # requested side (no error-rate guarantee; use fdr= for one).
            extra["selected"] = sign * fit.coef_select[:n] > 0
        target_params["n_selected"] = int(extra["selected"].sum())
        ci_low, ci_high, ci_note = bounds[keys.index(key)]
        target_params |= bounds.params
        results[key] = ValuationResult(
            method=config.method,
            values=values,
            player_ids=player_ids,
            stderr=None if fit.stderr is None else scale * fit.stderr[:n],
            counts=np.full(n, m),
            params=target_params,
            seed=seed,
            n_evaluations=distinct,
            n_fitted=ev.n_fitted,
            n_fallback=ev.n_fallback,
            timings=dict(timer.seconds),
            manifest=described,
            extra=extra,
            ci_low=ci_low,
            ci_high=ci_high,
            ci_note=ci_note,
        )
    return results[keys[0]] if _single(target) else results


class _Bounds(list):
    """Each target's ``(ci_low, ci_high, ci_note)``, with the parameters that made them."""

    params: dict


def _intervals(config: _Config, x, y, strata, fits, scale: float, *, n: int, seed: int):
    """Each target's interval: a bootstrap over the subsets for the LASSO (at its chosen
    alpha, see :mod:`.ame_intervals`), Student's t on the standard errors otherwise."""
    m = x.shape[0]
    bounds = _Bounds()
    bounds.params = {}
    if not config.intervals:
        bounds.extend(
            (None, None, "no interval: not asked for (intervals=True computes them)") for _ in fits
        )
        return bounds
    if config.estimator != "lasso":
        df = m - x.shape[1] - (int(strata.max()) + 1) if config.estimator == "ols" else m - 1
        for fit in fits:
            values = scale * fit.coef[:n]
            stderr = None if fit.stderr is None else scale * fit.stderr[:n]
            bounds.append(sampled_interval(values, stderr, m, what="subsets", df=df, min_samples=2))
        bounds.params = {"ci_level": LEVEL}
        return bounds
    n_boot = config.n_boot if config.n_boot is not None else default_resamples(m, x.shape[1])
    alphas = [fit.info.get("alpha_min") for fit in fits]
    lows, highs, n_warnings = lasso_bootstrap(
        x,
        y,
        strata,
        _centre,
        [fit.coef for fit in fits],
        alphas,
        scale=scale,
        n_values=n,
        n_resamples=n_boot,
        seed=seed,
        max_iter=config.max_iter,
        tol=config.tol,
    )
    note = (
        f"{LEVEL:.0%} percentile bootstrap over the subsets ({n_boot} resamples, LASSO refitted "
        "at the chosen alpha): sampling variability, not the LASSO's shrinkage"
    )
    bounds.extend((low, high, note) for low, high in zip(lows, highs, strict=True))
    bounds.params = {
        "ci_level": LEVEL,
        "n_boot": n_boot,
        "bootstrap_convergence_warnings": n_warnings,
    }
    return bounds


def _single(target: Target) -> bool:
    """Whether a target gives one result (the metric, one row) or a dict (a list, all-test)."""
    if isinstance(target, str):
        return target == "metric"
    return np.isscalar(target)


def _each(out) -> list[ValuationResult]:
    return [out] if isinstance(out, ValuationResult) else list(out.values())
