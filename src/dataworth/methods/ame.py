"""Average marginal effects by randomized subsets and sparse regression (docs/design.md, section 5).

One set of subset evaluations serves three methods:

* :func:`ame` (Lin et al., ICML 2022, the "explain" mode): ``p`` from a law ``P`` (the grid
  {0.2, 0.4, 0.6, 0.8} by default), subsets ``S ~ Bernoulli(p)``, the encoding ``1/p`` for a
  member and ``-1/(1-p)`` for a non-member, per-``p`` centring, a cross-validated LASSO, and
  ``AME = c * beta`` with ``c = E_P[1/(p(1-p))]``; optionally Knockoffs for selection at a
  target false discovery rate.
* :func:`ame_shapley` (the paper's SV estimator): ``logit(p)`` uniform on
  ``[logit(eps), logit(1-eps)]``, the encoding ``x - p``; the coefficient is the AME for
  ``Uniform(eps, 1-eps)``, within ``4 * eps * max|marginal|`` of the Shapley value.
* :func:`banzhaf` (Wang and Jia, AISTATS 2023): ``p = 1/2``, the maximum-sample-reuse (MSR)
  difference of means.

:func:`ame_hierarchical` values groups first (a group in or out as a whole), then the points
of the groups selected at the first level.

Why ``c * beta``: given ``p`` the encoded columns have mean 0, are uncorrelated, have variance
``1/(p(1-p))`` and ``E[x_i y | p] = Delta_i(p)``, the expected marginal effect at ``p``. So the
population least-squares coefficient is ``E[x_i y] / E[x_i^2] = AME_P(i) / c``. (The authors'
released code divides by ``c`` instead and is off by ``c^2``; ours is in the metric's units.)

References
----------
Lin, Zhang, Lécuyer, Li, Panda and Sen, "Measuring the Effect of Training Data on Deep Learning
Predictions via Randomized Experiments", ICML 2022.
Wang and Jia, "Data Banzhaf: A Robust Data Valuation Framework for Machine Learning",
AISTATS 2023.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dataworth.engine.game import Evaluation, as_masks
from dataworth.errors import DataworthError
from dataworth.methods._common import Timer, manifest, point_ids
from dataworth.methods.ame_intervals import default_resamples, lasso_bootstrap
from dataworth.methods.ame_plan import check_fits
from dataworth.methods.intervals import LEVEL, banzhaf_interval, sampled_interval
from dataworth.methods.knockoffs import knockoff_threshold, w_statistics
from dataworth.methods.lasso import DEFAULT_FOLDS, lasso_cv
from dataworth.methods.result import ValuationResult
from dataworth.methods.sampler import (
    STREAM_FOLDS,
    STREAM_LEVEL2,
    LogitUniform,
    PLaw,
    SubsetSampler,
    make_law,
    subsets_for,
)

ProgressCallback = Callable[[int, int], None]
Target = str | int | Sequence[int]

# Subsets are drawn, evaluated and journaled this many at a time: small enough that an
# interrupted run loses little, large enough that a batched learner fits whole chunks.
_BLOCK = 256
_ESTIMATORS = ("lasso", "ols", "moment")
# Bumped whenever the sampler's stream layout changes, so a journal of an older design is
# never mistaken for the current one.
_DESIGN_VERSION = 1


# -- players -----------------------------------------------------------------------------------


class PlayerGame:
    """The game whose players are sets of training points: ``v(T) = U(union of T's members)``.

    A group is in or out as a whole (docs/design.md, section 1, "Players"). A point is a set of
    one, so one object also serves the mixed players of the second hierarchical level.

    Parameters
    ----------
    utility : Utility or Game
        The game on training points.
    members : sequence of array-like of int
        Training positions of each player (players may overlap).
    names : sequence of str
        One name per player.
    """

    def __init__(self, utility, members: Sequence, names: Sequence[str]) -> None:
        n = utility.n_players
        self.utility = utility
        self.members = [np.unique(np.asarray(m, dtype=np.int64).reshape(-1)) for m in members]
        self.names = [str(name) for name in names]
        if not self.members or len(self.names) != len(self.members):
            raise DataworthError("Give at least one group, and one name per group.")
        for name, member in zip(self.names, self.members, strict=True):
            if member.size == 0:
                raise DataworthError(f"Group {name!r} is empty; every group needs a point.")
            if member[0] < 0 or member[-1] >= n:
                raise DataworthError(f"Group {name!r} has positions outside 0..{n - 1}.")
        # float32 incidence: a matrix product counts members without integer overflow.
        self._incidence = np.zeros((len(self.members), n), dtype=np.float32)
        for g, member in enumerate(self.members):
            self._incidence[g, member] = 1.0
        self.store = getattr(utility, "store", None)
        self.task = getattr(utility, "task", None)

    @property
    def n_players(self) -> int:
        return len(self.members)

    @property
    def fingerprint(self) -> str | None:
        base = getattr(self.utility, "fingerprint", None)
        if base is None:
            return None
        digest = hashlib.sha256(base.encode())
        for member in self.members:
            digest.update(member.tobytes() + b"|")
        return digest.hexdigest()[:32]

    def point_masks(self, masks) -> np.ndarray:
        """Expand player masks ``(K, G)`` to training-point masks ``(K, n)``."""
        masks = as_masks(masks, self.n_players)
        return (masks.astype(np.float32) @ self._incidence) > 0.5

    def evaluate(self, masks, per_prediction: bool = False) -> Evaluation:
        return self.utility.evaluate(self.point_masks(masks), per_prediction=per_prediction)

    def describe(self) -> dict:
        described = self.utility.describe() if hasattr(self.utility, "describe") else {}
        return described | {"players": "groups", "n_groups": self.n_players}


def _as_group_lists(groups, n: int) -> tuple[list[str], list[np.ndarray]]:
    if isinstance(groups, Mapping):
        return [str(k) for k in groups], [np.asarray(v) for v in groups.values()]
    if isinstance(groups, Sequence | np.ndarray):
        return [f"group_{g}" for g in range(len(groups))], [np.asarray(v) for v in groups]
    raise DataworthError("Groups must be a dict name -> positions or a list of position arrays.")


# -- targets -----------------------------------------------------------------------------------


def _resolve_target(game, target: Target) -> tuple[list, bool]:
    """The list of target keys and whether per-prediction scores are needed."""
    if isinstance(target, str):
        if target == "metric":
            return ["metric"], False
        if target == "all-test":
            task = getattr(game, "task", None)
            if task is None:
                raise DataworthError("target='all-test' needs a Utility with test rows.")
            return list(range(task.n_test)), True
        raise DataworthError(
            f"Unknown target {target!r}; use 'metric', 'all-test', a test row or a list of rows."
        )
    rows = [target] if np.isscalar(target) else list(target)
    if not rows:
        raise DataworthError("Give at least one test row as the target.")
    task = getattr(game, "task", None)
    if task is None:
        raise DataworthError("Test-row targets need a Utility (a plain Game has no test rows).")
    out = []
    for row in rows:
        if isinstance(row, bool) or not isinstance(row, int | np.integer):
            raise DataworthError(f"Test rows are integer positions; got {row!r}.")
        if not 0 <= int(row) < task.n_test:
            raise DataworthError(f"Test row {row} does not exist; rows are 0..{task.n_test - 1}.")
        out.append(int(row))
    return out, True


# -- the design and its evaluation -------------------------------------------------------------


@dataclass
class _Evaluated:
    p: np.ndarray
    masks: np.ndarray
    y: np.ndarray  # (m, T)
    n_fitted: int = 0
    n_fallback: int = 0
    resumed: int = 0


def _run_key(method: str, game, sampler: SubsetSampler, seed: int) -> str:
    text = json.dumps(
        {
            "method": method,
            "utility": game.fingerprint,
            "n": sampler.n_players,
            "law": sampler.law.describe(),
            "seed": seed,
            "design": _DESIGN_VERSION,
        },
        sort_keys=True,
    )
    return "ame-design:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def _evaluate_design(
    game,
    sampler: SubsetSampler,
    seed: int,
    m: int,
    per_prediction: bool,
    columns: list,
    method: str,
    progress: ProgressCallback | None,
) -> _Evaluated:
    """Draw samples ``0 .. m-1`` block by block, evaluate them, journal the finished blocks.

    The utility's store caches every ``U(S)``, so a resumed or extended run refits nothing it
    has already fitted; the journal records which sample blocks are done with a digest of their
    subsets, so a design that changed under the same key is reported instead of mixed in.
    """
    store = getattr(game, "store", None)
    journal = store is not None and getattr(game, "fingerprint", None) is not None
    key = _run_key(method, game, sampler, seed) if journal else ""
    done: dict[tuple[int, int], str] = {}
    if journal:
        for item in store.journal_items(key):
            done[(int(item["start"]), int(item["stop"]))] = item["digest"]
    ps, masks_all, ys = [], [], []
    n_fitted = n_fallback = resumed = 0
    for start in range(0, m, _BLOCK):
        stop = min(m, start + _BLOCK)
        p, masks = sampler.draw(seed, start, stop)
        digest = hashlib.sha256(p.tobytes() + np.packbits(masks).tobytes()).hexdigest()[:16]
        previous = done.get((start, stop))
        if previous is not None and previous != digest:
            raise DataworthError(
                f"The journal of this run holds different subsets for samples {start}..{stop - 1};"
                " the store was written by another version of the sampler. Use a new store."
            )
        ev = game.evaluate(masks, per_prediction=per_prediction)
        if per_prediction:
            ys.append(ev.per_prediction[:, columns])
        else:
            ys.append(ev.scores[:, None])
        ps.append(p)
        masks_all.append(masks)
        n_fitted += ev.n_fitted
        n_fallback += ev.n_fallback
        if previous is not None:
            resumed += stop - start
        elif journal:
            store.journal_append(key, {"start": start, "stop": stop, "digest": digest})
            drawn = max(stop, (store.journal_get(key) or {}).get("drawn", 0))
            store.journal_put(key, {"drawn": drawn, "seed": seed, "law": sampler.law.describe()})
        if progress is not None:
            progress(stop, m)
    y = np.concatenate(ys, axis=0).astype(np.float64) if ys else np.empty((0, len(columns)))
    if not np.isfinite(y).all():
        raise DataworthError("The utility returned non-finite values; AME needs finite scores.")
    return _Evaluated(
        np.concatenate(ps), np.concatenate(masks_all, axis=0), y, n_fitted, n_fallback, resumed
    )


# -- encoding and centring ---------------------------------------------------------------------


def encode(masks: np.ndarray, p: np.ndarray, encoding: str = "ipw", out=None) -> np.ndarray:
    """The regression design of a set of subsets.

    Parameters
    ----------
    masks : ndarray of bool, shape (m, n)
    p : ndarray of shape (m,)
    encoding : {"ipw", "centred"}
        ``"ipw"``: ``1/p`` for a member, ``-1/(1-p)`` otherwise (AME); ``"centred"``:
        ``x - p`` (AMESV).
    out : ndarray of float64, shape (m, n), optional
        Where to write the design (a block of a wider one), instead of a new array.

    Returns
    -------
    ndarray of shape (m, n), Fortran-ordered (what coordinate descent walks through).
    """
    p = np.asarray(p, dtype=np.float64)[:, None]
    if encoding == "ipw":
        member, other = 1.0 / p, -1.0 / (1.0 - p)
    elif encoding == "centred":
        member, other = 1.0 - p, 0.0 - p
    else:
        raise DataworthError(f"Unknown encoding {encoding!r}; use 'ipw' or 'centred'.")
    x = np.empty(masks.shape, order="F") if out is None else out
    # Written in place (no temporary of the design's size): every non-member, then members.
    np.copyto(x, np.broadcast_to(other, masks.shape))
    np.copyto(x, np.broadcast_to(member, masks.shape), where=masks)
    return x


def _design(
    masks: np.ndarray, knockoffs: np.ndarray | None, p: np.ndarray, encoding: str
) -> np.ndarray:
    """The encoded design, with the knockoff columns after the players' when given."""
    m, n = masks.shape
    x = np.empty((m, n * (2 if knockoffs is not None else 1)), order="F")
    encode(masks, p, encoding, out=x[:, :n])
    if knockoffs is not None:
        encode(knockoffs, p, encoding, out=x[:, n:])
    return x


def _p_strata(p: np.ndarray, law: PLaw, p_bins: int | None) -> np.ndarray:
    """Stratum of each sample for the per-``p`` centring.

    A discrete law has one stratum per value (exactly the per-``p`` intercepts of the
    authors' code). A continuous law has no repeated values, so quantile bins of ``p`` stand in:
    ``E[x_i | p] = 0`` for every ``p``, so removing any function of ``p`` from ``y`` leaves the
    coefficients' target unchanged and only takes the between-size variance out of the noise.
    """
    if law.discrete:
        return np.unique(p, return_inverse=True)[1]
    bins = p_bins if p_bins is not None else int(np.clip(len(p) // 100, 1, 10))
    if bins < 1:
        raise DataworthError(f"p_bins must be at least 1; got {p_bins}.")
    if bins == 1:
        return np.zeros(len(p), dtype=np.int64)
    edges = np.quantile(p, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.searchsorted(edges, p, side="right")


def _centre(a: np.ndarray, strata: np.ndarray, block: int = 1024) -> np.ndarray:
    """Subtract each stratum's column means from ``a`` (in place; ``a`` is 2-D).

    Column blocks bound the temporary to ``m x block`` whatever the design's width.
    """
    n_strata = int(strata.max()) + 1 if len(strata) else 0
    onehot = np.zeros((len(strata), n_strata))
    onehot[np.arange(len(strata)), strata] = 1.0
    counts = np.maximum(onehot.sum(axis=0), 1.0)[:, None]
    for start in range(0, a.shape[1], block):
        part = a[:, start : start + block]
        part -= ((onehot.T @ part) / counts)[strata]
    return a


# -- the regression ----------------------------------------------------------------------------


@dataclass
class _Fit:
    """Coefficients of one target, in the encoding's units (before the ``c`` rescaling)."""

    coef: np.ndarray  # for values: CV-minimum LASSO, OLS or moments
    coef_select: np.ndarray  # for selection: one-standard-error LASSO, else the same as coef
    stderr: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def _folds(m: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_FOLDS, m)))
    return rng.permutation(np.arange(m) % k)


def _lasso_cv(
    x: np.ndarray,
    y: np.ndarray,
    *,
    cv: int,
    n_alphas: int,
    seed: int,
    max_iter: int,
    tol: float,
    n_jobs: int | None = None,
) -> list[_Fit]:
    """K-fold cross-validated LASSO paths, one per column of ``y`` (see :mod:`.lasso`).

    ``K = min(cv, m)`` folds, drawn from the seed; values at the CV-minimum alpha, selection
    at the one-standard-error alpha.
    """
    m = x.shape[0]
    k = min(cv, m)
    if k < 2:
        raise DataworthError("Cross-validation needs at least 2 subsets.")
    fits = lasso_cv(
        x, y, _folds(m, k, seed), n_alphas=n_alphas, max_iter=max_iter, tol=tol, n_jobs=n_jobs
    )
    return [_Fit(fit.coef_min, fit.coef_1se, info=fit.info) for fit in fits]


def _ols(x: np.ndarray, y: np.ndarray, n_strata: int) -> list[_Fit]:
    """Least squares on the centred design, with classical standard errors."""
    m, ncols = x.shape
    dof = m - ncols - n_strata
    if dof < 1:
        raise DataworthError(
            f"OLS needs more subsets than players: {m} subsets for {ncols} columns; "
            "use estimator='lasso' or draw more subsets."
        )
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    if rank < ncols:
        raise DataworthError("The subsets do not identify every player; draw more subsets.")
    inv_diag = np.diag(np.linalg.inv(x.T @ x))
    fits = []
    for t in range(y.shape[1]):
        sigma2 = float(np.sum((y[:, t] - x @ coef[:, t]) ** 2) / dof)
        se = np.sqrt(sigma2 * inv_diag)
        fits.append(_Fit(coef[:, t], coef[:, t].copy(), se))
    return fits


def _moments(x: np.ndarray, y: np.ndarray, n_strata: int) -> list[_Fit]:
    """The difference-in-means moment ``sum_j x_ji y_j / (m - strata)`` of each column.

    With per-stratum centred ``x`` and ``y`` this is the pooled within-stratum covariance,
    unbiased for ``E[x_i y | p]`` averaged over ``p`` (the randomized-experiment estimator).
    """
    m = x.shape[0]
    denom = max(m - n_strata, 1)
    moment = (x.T @ y) / denom
    fits = []
    for t in range(y.shape[1]):
        terms = x * y[:, t][:, None]
        se = terms.std(axis=0, ddof=1) / np.sqrt(m) if m > 1 else None
        fits.append(_Fit(moment[:, t], moment[:, t].copy(), se))
    return fits


# -- the shared estimator ----------------------------------------------------------------------


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
    with timer.phase("evaluate"):
        ev = _evaluate_design(
            game,
            sampler,
            seed,
            m,
            per_prediction,
            keys if per_prediction else [0],
            config.method,
            progress,
        )
    with timer.phase("regress"):
        strata = _p_strata(ev.p, config.law, config.p_bins)
        n_strata = int(strata.max()) + 1
        knock = sampler.knockoffs(seed, ev.p, 0) if config.fdr is not None else None
        x = _centre(_design(ev.masks, knock, ev.p, config.encoding), strata)
        del knock
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
            )
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


def _players(utility, groups) -> tuple[object, np.ndarray, dict]:
    """The game to sample and its players' ids: the points, or the groups."""
    n = utility.n_players
    if groups is None:
        positions = np.arange(n)
        return utility, point_ids(utility, positions), {"position": positions}
    names, members = _as_group_lists(groups, n)
    game = PlayerGame(utility, members, names)
    sizes = np.array([len(m) for m in game.members])
    return game, np.array(game.names, dtype=object), {"size": sizes}


# -- public methods ----------------------------------------------------------------------------


def ame(
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
) -> ValuationResult | dict[int, ValuationResult]:
    """Average marginal effect of each training point (or group) by randomized subsets.

    ``AME_P(i) = E[U(S + i) - U(S)]`` where ``p ~ P`` and ``S`` holds every other point with
    probability ``p``. Each of ``m`` subsets is evaluated once; the values come from one
    regression of the scores on the encoded memberships (``1/p`` in, ``-1/(1-p)`` out), centred
    per ``p``, rescaled by ``c = E_P[1/(p(1-p))]`` so they are in the metric's units.

    Parameters
    ----------
    utility : Utility or Game
        The game to value.
    n_subsets : int, optional
        Number of subsets ``m`` to draw and evaluate.
    k : int, optional
        Instead of ``n_subsets``: the assumed number of influential points; then
        ``m = ceil(size_factor * k * log2(n))`` (Lin et al. use factors 1 to 8).
    size_factor : float, default=8.0
        The factor of that sizing rule.
    law : str or PLaw, default="grid"
        The law of ``p``: ``"grid"`` (uniform on {0.2, 0.4, 0.6, 0.8}, ``c = 5.2083``),
        ``"uniform"`` (on ``[eps, 1-eps]``), ``"beta:A,B"``, ``"banzhaf"`` (``p = 1/2``), or a
        :class:`~dataworth.methods.sampler.PLaw`.
    eps : float, default=0.01
        Truncation of the continuous laws.
    target : "metric", "all-test", int or list of int, default="metric"
        What is explained: the test metric, or the per-prediction score (docs/design.md,
        section 1) of one or several test rows (positions in the test set). One set of subset
        fits serves every target; one LASSO is fitted per target.
    estimator : {"lasso", "ols", "moment"}, default="lasso"
        ``"lasso"``: K-fold CV LASSO; values at the CV-minimum alpha, selection at the
        one-standard-error alpha. ``"ols"``: least squares (needs ``m`` > players).
        ``"moment"``: the unbiased randomized-experiment estimator ``mean_j x_ji y_j``.
    fdr : float, optional
        Target false discovery rate ``q`` of a Knockoff selection. Knockoff columns (a second
        ``Bernoulli(p_j)`` draw per subset, never fitted) join the regression;
        ``extra["w"]`` holds the statistics and ``extra["selected"]`` the selection.
    knockoff_plus : bool, default=True
        Knockoff+ (FDR control; selects nothing when ``q < 1/#selected``) or plain Knockoff
        (the authors' default; more liberal).
    side : {"positive", "negative"}, default="positive"
        Select points that raise (``"positive"``) or lower the target.
    groups : dict or list, optional
        Value groups instead of points: each group is in or out of a subset as a whole.
    cv : int, default=10
        Folds of the cross-validation (at most ``m``). The authors used up to 20; 10 (glmnet's
        default) costs half as much and chose the same alphas on the benchmarked designs with
        4,000 subsets (with 1,000, a CV minimum one grid point away).
    n_alphas : int, default=100
        Points on the LASSO path.
    n_jobs : int, optional
        Threads for the cross-validation folds (default: one per core, at most ``cv``). The
        numbers do not depend on it.
    seed : int, default=0
        Subset ``j`` comes from ``SeedSequence(seed, spawn_key=(1, j))``; the same seed gives
        the same values on any backend, and a larger ``m`` extends the same design.
    progress : callable, optional
        ``progress(done, total)`` after each block of subsets.
    intervals : bool, default=False
        Give each value a 95% interval (``ci_low``, ``ci_high``). For the LASSO: the
        percentile interval of a bootstrap over the subsets, refitting at the chosen alpha
        (warm-started, no cross-validation per resample). It covers the estimate's sampling
        variability given that alpha, not the LASSO's shrinkage towards 0: a point shrunk to 0
        in most resamples gets an interval at or around 0 (its effect is not told from 0 at
        this many subsets). For ``"ols"`` and ``"moment"``: Student's t on the standard
        errors. ``False`` skips them (NaN bounds, ``ci_note`` says so); the values are the
        same either way. Off by default: on the breast cancer study's design (400 points,
        4,000 subsets, knockoffs) the default bootstrap took 2.6 to 4.9 times AME's own time
        (``benchmarks/bench_ame_intervals.py``).
    n_boot : int, optional
        Bootstrap resamples; by default from 200 (400 players, 4,000 subsets) down to 40 as
        subsets times players grows (a resample's refit costs about subsets times players).

    Returns
    -------
    ValuationResult or dict of int to ValuationResult
        One result for ``target="metric"`` or a single test row; for a list of rows or
        ``"all-test"``, a dict from each test row to its result. ``extra`` holds
        ``value_1se`` (values at the one-standard-error alpha), ``selected``, and ``w`` when
        ``fdr`` is given; ``params`` holds ``n_subsets``, the alphas and ``scale_c``.

    References
    ----------
    Lin, Zhang, Lécuyer, Li, Panda and Sen, "Measuring the Effect of Training Data on Deep
    Learning Predictions via Randomized Experiments", ICML 2022.

    Examples
    --------
    >>> import numpy as np, dataworth as dw
    >>> w = np.zeros(50); w[:3] = 1.0
    >>> game = dw.Game(lambda masks: masks @ w, n_players=50)
    >>> result = ame(game, n_subsets=400, seed=0)
    >>> np.round(result.values[:3], 1)
    array([1., 1., 1.])
    """
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
    )


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


def _single(target: Target) -> bool:
    """Whether a target gives one result (the metric, one row) or a dict (a list, all-test)."""
    if isinstance(target, str):
        return target == "metric"
    return np.isscalar(target)


def _each(out) -> list[ValuationResult]:
    return [out] if isinstance(out, ValuationResult) else list(out.values())


# -- hierarchical ------------------------------------------------------------------------------


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
    size_factor, law, eps, fdr, knockoff_plus, side, cv, n_alphas, n_jobs : see :func:`ame`
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

    Returns
    -------
    HierarchicalResult

    References
    ----------
    Lin et al., ICML 2022 (the hierarchical extension of AME).
    """
    if not _single(target):
        raise DataworthError("The hierarchical AME explains one target: 'metric' or one test row.")
    n = utility.n_players
    names, members = _as_group_lists(groups, n)
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
    level1 = ame(
        utility,
        n_subsets=n_subsets_groups,
        k=k_groups,
        groups=dict(zip(names, members, strict=True)),
        seed=seed,
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

    points = np.unique(np.concatenate([np.asarray(members[g], dtype=np.int64) for g in chosen]))
    owner = np.empty(len(points), dtype=object)
    for g in chosen[::-1]:  # the first selected group holding a point names it
        owner[np.isin(points, members[g])] = names[g]
    context_names, context_members = [], []
    for g in range(len(members)):
        if g in chosen:
            continue
        rest = np.setdiff1d(np.asarray(members[g], dtype=np.int64), points)
        if rest.size:
            context_names.append(names[g])
            context_members.append(rest)
    game = PlayerGame(
        utility,
        [[i] for i in points] + context_members,
        [f"point:{i}" for i in points] + context_names,
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
