"""Shapley values by Truncated Monte Carlo (Ghorbani and Zou, ICML 2019).

TMC follows Algorithm 1 of the paper: for each random permutation, walk its prefixes from the
empty set; once ``|U(D) - v_{j-1}| < tol * |U(D)|`` the remaining prefixes are truncated
(``v_j = v_{j-1}``, no fit); each player's marginal contribution ``v_j - v_{j-1}`` is averaged
over permutations. Prefixes are asked of the engine in blocks, many permutations at once: a
block may reach past the truncation point (those fits are wasted, never used), so the values are
exactly the paper's and the batching only changes the cost. Each block is passed as a *chain* of
nested subsets, so a learner that supports chains warm-starts every prefix from the one before
(docs/design.md, section 4); a block is fixed by its permutation alone, so the values do not
depend on how permutations are batched, chunked or spread over workers.
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from dataworth.engine.game import accepts_chains
from dataworth.errors import DataworthError
from dataworth.methods._common import Timer, manifest, point_ids
from dataworth.methods.intervals import LEVEL, MIN_PERMUTATIONS, sampled_interval
from dataworth.methods.result import ValuationResult
from dataworth.methods.shapley.exact import players_game
from dataworth.methods.shapley.stopping import (
    AnyOf,
    Convergence,
    MaxSamples,
    RankStable,
    RunState,
    StoppingRule,
    TimeBudget,
)
from dataworth.methods.stability import SAMPLE_LIMIT

# Prefix blocks start short and grow by half while a permutation is not truncated, so at most
# about a third of the fits of a permutation are wasted, and long untruncated walks still get big
# batches. (Doubling wasted 50% more fits on breast cancer; growing by a quarter saved fits but
# the extra rounds of small batches cost more time than they saved.)
_FIRST_BLOCK = 16
_BLOCK_GROWTH = 1.5
_MAX_BLOCK = 512
_TARGET_BATCH_MASKS = 2048
# Permutations per batch when stopping by convergence or time, so the rule is checked often.
_OPEN_ENDED_BATCH = 8


def _permutation(seed: int, index: int, n: int) -> np.ndarray:
    """Permutation ``index`` of the run: a pure function of the seed and its index."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,))).permutation(n)


def _run_key(game, params: dict) -> str | None:
    fingerprint = getattr(game, "fingerprint", None)
    if fingerprint is None:
        return None
    text = json.dumps({"fp": fingerprint, **params}, sort_keys=True)
    return "tmc:" + hashlib.sha256(text.encode()).hexdigest()[:24]


class _Walk:
    """One permutation's walk through its prefixes."""

    def __init__(self, order: np.ndarray, empty_value: float) -> None:
        self.order = order
        self.j = 0  # prefixes 1..j are decided
        self.values = [empty_value]  # v_0 .. v_j
        self.truncated = False
        self.block = _FIRST_BLOCK

    @property
    def done(self) -> bool:
        return self.truncated or self.j == len(self.order)

    def next_masks(self, n: int) -> np.ndarray:
        """Masks of the next block of prefixes ``j+1 .. j+L``."""
        length = min(self.block, len(self.order) - self.j)
        masks = np.zeros((length, n), dtype=bool)
        masks[:, self.order[: self.j]] = True
        # Row r adds the players at positions j .. j+r of the permutation.
        masks[:, self.order[self.j : self.j + length]] = np.tri(length, dtype=bool)
        self.block = min(round(_BLOCK_GROWTH * self.block), _MAX_BLOCK)
        return masks

    def consume(self, scores: np.ndarray, full_value: float, tol: float) -> None:
        for score in scores:
            if abs(full_value - self.values[-1]) < tol * abs(full_value):
                self.truncated = True
                break
            self.values.append(float(score))
            self.j += 1

    def marginals(self, size_weights: np.ndarray | None = None) -> np.ndarray:
        """Marginal contribution of each player; zero after the truncation point.

        ``size_weights[s]`` multiplies the contribution to a coalition of ``s`` players (the
        player at position ``s`` of the permutation), for semivalues other than Shapley.
        """
        out = np.zeros(len(self.order))
        diffs = np.diff(self.values)
        if size_weights is not None:
            diffs = diffs * size_weights[: self.j]
        out[self.order[: self.j]] = diffs
        return out


def tmc_shapley(
    utility,
    *,
    permutations: int | None = 10,
    tol: float = 0.01,
    seed: int = 0,
    groups=None,
    convergence: float | None = None,
    time_budget: float | None = None,
    max_permutations: int = 100_000,
    progress=None,
    size_weights=None,
    until: str | StoppingRule | None = None,
    rank_k: int = 10,
    rank_level: float = 0.9,
) -> ValuationResult:
    """Truncated Monte Carlo Shapley values (Ghorbani and Zou, ICML 2019, Algorithm 1).

    Parameters
    ----------
    utility : Utility or Game
        The game to value.
    permutations : int or None, default=10
        A fixed number of permutations (the course setting is exactly 10). ``None`` to stop by
        ``convergence`` or ``time_budget`` only.
    tol : float, default=0.01
        Truncation tolerance: a permutation stops once a prefix is within
        ``tol * |U(D)|`` of ``U(D)``. ``0`` disables truncation.
    seed : int, default=0
        Permutation ``t`` is drawn from ``SeedSequence(seed, spawn_key=(t,))``.
    groups : dict or list of array-like, optional
        Value groups of training points instead of points (the group game).
    convergence : float, optional
        The paper's rule: stop once the mean relative change of the values over the last 100
        permutations is below this (the paper uses 0.05).
    time_budget : float, optional
        Stop once this many seconds have passed. Batches are sized from the measured seconds
        per permutation so that they fit the time left, no permutation starts that the time left
        cannot pay for (but the first), and past the deadline the permutations in flight are
        dropped after the current round of prefixes: the run overruns by at most one round.
        The permutations kept are always the first ones, so the values equal those of a
        fixed-count run of as many permutations.
    max_permutations : int
        Upper bound when stopping by convergence or time.
    progress : callable, optional
        ``progress(done, total)`` as permutations finish (``total`` is ``None`` when open-ended).
    size_weights : tuple of (str, callable), optional
        ``(name, weights)`` to estimate another semivalue from the same permutations:
        ``weights(n)[s]`` multiplies every marginal contribution to a coalition of size ``s``.
        A semivalue giving one coalition of size ``s`` the weight ``w(s)`` is the Shapley
        permutation average reweighted by ``n * C(n-1, s) * w(s)`` (used by Beta Shapley).
    until : "ranks" or StoppingRule, optional
        Run until a rule says the answer is enough, instead of a fixed count: ``"ranks"``
        stops once the top and bottom ``rank_k`` values are stable at ``rank_level`` (see
        :class:`~dataworth.methods.shapley.stopping.RankStable`); a
        :class:`~dataworth.methods.shapley.stopping.StoppingRule` is used as it is. ``time_budget``,
        ``convergence`` and ``max_permutations`` still stop the run, whichever comes first;
        ``permutations`` is then ignored.
    rank_k, rank_level : int, float
        The size of the top and bottom and the stability level of ``until="ranks"``.

    Returns
    -------
    ValuationResult
        Values, standard errors across permutations, and in ``extra`` the number of
        permutations each player's value averages. ``params["truncated_share"]`` is the share
        of prefixes not fitted thanks to truncation; ``params["stopped_by"]`` names the rule
        that ended the run. ``ci_low``/``ci_high`` are 95% Student-t intervals across
        permutations for the expectation of this (truncated) estimator, each standard error at
        least the players' pooled one (heavy tails), NaN below 10 permutations (see
        :mod:`dataworth.methods.intervals`). ``samples`` keeps each
        permutation's marginal contributions (while permutations times players stays below
        :data:`~dataworth.methods.stability.SAMPLE_LIMIT`) for
        :func:`~dataworth.methods.stability.rank_stability`.

    References
    ----------
    Ghorbani, A. and Zou, J. "Data Shapley: Equitable Valuation of Data for Machine Learning",
    ICML 2019.

    Examples
    --------
    >>> import numpy as np, dataworth as dw
    >>> g = dw.Game(lambda m: m @ np.array([1.0, 2.0, 3.0]), n_players=3)
    >>> dw.tmc_shapley(g, permutations=5, tol=0).values
    array([1., 2., 3.])
    """
    if until is not None:
        permutations = None
    if permutations is None and convergence is None and time_budget is None and until is None:
        raise DataworthError("Give a number of permutations, a convergence level or a time budget.")
    if permutations is not None and permutations < 1:
        raise DataworthError("The number of permutations must be at least 1.")
    if tol < 0:
        raise DataworthError("The truncation tolerance must be zero or positive.")
    game, kind = players_game(utility, groups)
    n = game.n_players
    limit = permutations if permutations is not None else max_permutations
    rule = _stopping_rule(limit, convergence, time_budget, until, rank_k, rank_level)
    timer = Timer()
    started = time.perf_counter()

    ends = game.evaluate(np.array([np.zeros(n, bool), np.ones(n, bool)]))
    empty_value, full_value = (float(v) for v in ends.scores)
    n_fitted, n_fallback = ends.n_fitted, ends.n_fallback
    params = {"tol": tol, "seed": seed, "players": kind}
    multipliers = None
    if size_weights is not None:
        name, weights = size_weights
        multipliers = np.asarray(weights(n), dtype=np.float64)
        params["semivalue"] = name  # part of the journal key: other weights, other values
    run_key = _run_key(game, params)
    store = getattr(game, "store", None)
    journal = store.journal_items(run_key) if store is not None and run_key else []

    chained = accepts_chains(game)
    stopped_by: str | None = None
    marginal_sum, marginal_sq, used = np.zeros(n), np.zeros(n), 0
    history: list[np.ndarray] = []
    rows: list[np.ndarray] | None = []  # each permutation's marginals, while memory allows
    evaluations = 2  # the empty and the full set
    prefixes_total = prefixes_fitted = 0

    def finish(walk_marginals: np.ndarray, walk: _Walk | None) -> None:
        nonlocal used, marginal_sum, marginal_sq, prefixes_total, prefixes_fitted, rows
        marginal_sum += walk_marginals
        marginal_sq += walk_marginals**2
        used += 1
        if rows is not None:
            rows.append(walk_marginals)
            if used * n > SAMPLE_LIMIT:
                rows = None
        history.append(marginal_sum / used)
        if walk is not None:
            prefixes_total += n
            prefixes_fitted += walk.j

    with timer.phase("evaluate"):
        for item in journal[:limit]:  # permutations finished by an earlier, interrupted run
            finish(np.asarray(item["marginals"], dtype=np.float64), None)
            prefixes_total += n
            prefixes_fitted += int(item["fitted"])
            evaluations += int(item["fitted"])
        per_batch = max(1, min(limit - used, _TARGET_BATCH_MASKS // max(1, min(n, _FIRST_BLOCK))))
        if convergence is not None or time_budget is not None or until is not None:
            per_batch = min(per_batch, _OPEN_ENDED_BATCH)  # check the rule often
        clock = _Clock(started, time_budget)
        # At least one permutation runs whatever the budget, so there is always a result.
        while used == 0 or not rule(_state(used, started, history, rows, seed)):
            # The rank rule checks when the run has grown by a tenth, so batches may grow too:
            # fewer, larger rounds of fits.
            size = per_batch if until is None else max(per_batch, min(used // 10, _MAX_BLOCK))
            size = clock.affordable(size, used)
            if size == 0:
                stopped_by = TimeBudget(float(time_budget)).describe()
                break
            batch = range(used, min(limit, used + size))
            walks = [_Walk(_permutation(seed, t, n), empty_value) for t in batch]
            batch_started = time.perf_counter()
            while not all(w.done for w in walks):
                # Past the deadline, the permutations in flight are dropped (their fits stay in
                # the store): the run stops within one round of prefixes of its budget.
                if clock.passed() and (used > 0 or walks[0].done):
                    break
                active = [w for w in walks if not w.done]
                blocks = [w.next_masks(n) for w in active]
                if chained:
                    # One chain per block: its prefixes are nested, each one row larger.
                    labels = np.repeat(np.arange(len(blocks)), [len(b) for b in blocks])
                    ev = game.evaluate(np.concatenate(blocks), chains=labels)
                else:
                    ev = game.evaluate(np.concatenate(blocks))
                n_fitted += ev.n_fitted
                n_fallback += ev.n_fallback
                offset = 0
                for w, block in zip(active, blocks, strict=True):
                    w.consume(ev.scores[offset : offset + len(block)], full_value, tol)
                    offset += len(block)
                if progress is not None:  # a sign of life within a long batch
                    progress(used, permutations)
            # Only the leading finished walks are kept, so the run holds permutations 0..used-1
            # exactly: the values are those of a fixed-count run of that many.
            kept = 0
            for t, w in zip(batch, walks, strict=True):
                if not w.done:
                    break
                m = w.marginals(multipliers)
                finish(m, w)
                evaluations += w.j
                kept += 1
                if store is not None and run_key:
                    store.journal_append(run_key, {"t": t, "marginals": m, "fitted": w.j})
            clock.record(time.perf_counter() - batch_started, kept)
            if progress is not None:
                progress(used, permutations)
            if kept < len(walks):
                stopped_by = TimeBudget(float(time_budget)).describe()
                break

    values = marginal_sum / used
    stderr = (
        np.sqrt(np.maximum(marginal_sq / used - values**2, 0.0) * used / (used - 1) / used)
        if used > 1
        else np.full(n, np.nan)
    )
    ci_low, ci_high, ci_note = sampled_interval(
        values, stderr, used, what="permutations", pooled_floor=True, min_samples=MIN_PERMUTATIONS
    )
    ids = game.names if kind == "groups" else point_ids(utility, np.arange(n))
    extra = {"permutations": np.full(n, used)}
    if kind == "groups":
        extra["size"] = game.sizes
    return ValuationResult(
        method="tmc_shapley",
        values=values,
        player_ids=ids,
        stderr=stderr,
        counts=np.full(n, used),
        params=params
        | {
            "permutations": used,
            "stopping": _stopping_name(permutations, convergence, time_budget),
            "stopped_by": stopped_by or rule.fired or f"{limit} permutations",
            "truncated_share": 1.0 - prefixes_fitted / max(prefixes_total, 1),
            "ci_level": LEVEL,
            "samples_kept": rows is not None,
        }
        | ({"until": rule.describe()} if until is not None else {}),
        seed=seed,
        n_evaluations=evaluations,
        n_fitted=n_fitted,
        n_fallback=n_fallback,
        timings=timer.seconds,
        manifest=manifest(game)
        | {
            "empty_value": empty_value,
            "full_value": full_value,
            "efficiency_gap": full_value - empty_value - float(values.sum()),
        },
        extra=extra,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_note=ci_note,
        samples=None if rows is None else {"kind": "mean", "rows": np.array(rows)},
    )


class _Clock:
    """A time budget's view of the run: how many permutations still fit, and when it is up.

    The seconds a permutation takes are measured on the batches so far; before the first, a
    batch of one permutation is the measurement. Permutations are independent of how they are
    batched, so sizing batches by the clock changes the cost, never a value.
    """

    def __init__(self, started: float, seconds: float | None) -> None:
        self.deadline = None if seconds is None else started + seconds
        self.per_permutation: float | None = None
        self._seconds, self._permutations = 0.0, 0

    def passed(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def affordable(self, size: int, used: int) -> int:
        """At most ``size`` permutations, as many as the time left pays for (0: stop now)."""
        if self.deadline is None:
            return size
        if self.per_permutation is None:
            return 1
        left = self.deadline - time.perf_counter()
        fit = int(left // max(self.per_permutation, 1e-9))
        return min(size, fit if used > 0 else max(fit, 1))

    def record(self, seconds: float, permutations: int) -> None:
        # Over every batch so far: one-time costs of the first (loading a kernel) fade out.
        self._seconds += seconds
        self._permutations += permutations
        if self._permutations > 0:
            self.per_permutation = self._seconds / self._permutations


def _state(used, started, history, rows, seed) -> RunState:
    values = history[-1] if history else np.zeros(0)
    return RunState(used, started, values, history, rows, seed)


def _stopping_rule(limit, convergence, time_budget, until, rank_k, rank_level) -> StoppingRule:
    """The run's rule: the count, the time budget, convergence and ``until``, whichever first."""
    rules: list[StoppingRule] = [MaxSamples(limit)]
    if until == "ranks":
        rules.insert(0, RankStable(k=rank_k, level=rank_level))
    elif isinstance(until, StoppingRule):
        rules.insert(0, until)
    elif until is not None:
        raise DataworthError(f"Unknown stopping rule {until!r}; use until='ranks' or a rule.")
    if convergence is not None:
        rules.insert(0, Convergence(convergence))
    if time_budget is not None:
        rules.insert(0, TimeBudget(time_budget))
    return AnyOf(*rules)


def _stopping_name(permutations, convergence, time_budget) -> str:
    parts = []
    if permutations is not None:
        parts.append(f"{permutations} permutations")
    if convergence is not None:
        parts.append(f"mean relative change < {convergence} over 100 permutations")
    if time_budget is not None:
        parts.append(f"time budget {time_budget:g} s")
    return " or ".join(parts)
