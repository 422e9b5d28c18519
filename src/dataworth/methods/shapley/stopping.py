"""Composable rules that stop a sampled valuation: counts, time, convergence, stable ranks.

A rule looks at the run's state after each batch of draws and says whether to stop. Rules
combine with ``|`` (stop when any says so) and ``&`` (stop when all do), and a rule that stopped
a run names itself in ``fired``, which the result records as ``params["stopped_by"]``. The
shape follows pyDVL's stopping criteria; the rank rule is this package's own: it stops once a
bootstrap over the draws so far says the top and bottom ``k`` are stable. A rule keeps
state between checks (when it last ran), so give each run a fresh one.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from dataworth.errors import DataworthError
from dataworth.methods.intervals import MIN_SAMPLES
from dataworth.methods.stability import N_BOOT, bootstrap_values, rank_stability_of


@dataclass
class RunState:
    """What a rule may look at: draws so far, seconds since the start, the running values.

    ``history`` holds the running values after each draw (for the convergence rule) and
    ``rows`` each draw's contributions (for the rank rule; ``None`` once dropped for memory),
    or a result's ``samples`` dict as it is.
    """

    used: int
    started: float
    values: np.ndarray
    history: list = field(default_factory=list)
    rows: list | dict | None = None
    seed: int = 0

    @property
    def samples(self) -> dict | None:
        """The draws as a bootstrap takes them (built on demand: it copies them)."""
        if isinstance(self.rows, dict) or not self.rows:
            return self.rows or None
        return {"kind": "mean", "rows": np.array(self.rows)}

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class StoppingRule(ABC):
    """A rule that says when a sampled run has done enough."""

    fired: str | None = None

    @abstractmethod
    def check(self, state: RunState) -> bool:
        """Whether to stop now."""

    @abstractmethod
    def describe(self) -> str:
        """The rule in a few words."""

    def __call__(self, state: RunState) -> bool:
        stop = self.check(state)
        self.fired = self.describe() if stop else None
        return stop

    def __or__(self, other: StoppingRule) -> StoppingRule:
        return AnyOf(self, other)

    def __and__(self, other: StoppingRule) -> StoppingRule:
        return AllOf(self, other)


class AnyOf(StoppingRule):
    """Stops when any of its rules does; ``fired`` names the first that did."""

    def __init__(self, *rules: StoppingRule) -> None:
        self.rules = [r for rule in rules for r in (rule.rules if type(rule) is AnyOf else [rule])]

    def check(self, state: RunState) -> bool:
        return any(rule(state) for rule in self.rules)

    def __call__(self, state: RunState) -> bool:
        for rule in self.rules:
            if rule(state):
                self.fired = rule.fired
                return True
        self.fired = None
        return False

    def describe(self) -> str:
        return " or ".join(rule.describe() for rule in self.rules)


class AllOf(StoppingRule):
    """Stops when all of its rules do."""

    def __init__(self, *rules: StoppingRule) -> None:
        self.rules = list(rules)

    def check(self, state: RunState) -> bool:
        return all([rule(state) for rule in self.rules])

    def describe(self) -> str:
        return " and ".join(rule.describe() for rule in self.rules)


@dataclass
class MaxSamples(StoppingRule):
    """Stop after ``count`` draws (permutations or subsets)."""

    count: int
    what: str = "permutations"

    def check(self, state: RunState) -> bool:
        return state.used >= self.count

    def describe(self) -> str:
        return f"{self.count} {self.what}"


@dataclass
class TimeBudget(StoppingRule):
    """Stop once ``seconds`` have passed since the run started."""

    seconds: float

    def check(self, state: RunState) -> bool:
        return state.elapsed >= self.seconds

    def describe(self) -> str:
        return f"time budget {self.seconds:g} s"


@dataclass
class Convergence(StoppingRule):
    """Ghorbani and Zou's rule: the mean relative change over ``window`` draws is below a level."""

    threshold: float
    window: int = 100

    def check(self, state: RunState) -> bool:
        history = state.history
        if len(history) <= self.window:
            return False
        now, before = history[-1], history[-1 - self.window]
        nonzero = now != 0
        if not nonzero.any():
            return False
        change = np.abs(now[nonzero] - before[nonzero]) / np.abs(now[nonzero])
        return bool(change.mean() < self.threshold)

    def describe(self) -> str:
        return f"mean relative change < {self.threshold} over {self.window} permutations"


@dataclass
class RankStable(StoppingRule):
    """Stop once the top and bottom ``k`` are stable at ``level``.

    Stable means: over a bootstrap of the draws so far, on average at least a share ``level``
    of a replicate's top ``k`` (and of its bottom ``k``) is in the current top (bottom) ``k``;
    a rerun would, by this estimate, agree on that share of both ends. Checked from
    ``min_samples`` draws on, then whenever the draws have grown by ``growth`` (so the
    bootstrap costs a bounded share of the run). Without kept samples it never fires.
    """

    k: int = 10
    level: float = 0.9
    n_boot: int = N_BOOT
    min_samples: int = MIN_SAMPLES
    growth: float = 1.1
    last: float = field(default=float("nan"), init=False)
    _next: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.level <= 1.0:
            raise DataworthError(f"The stability level must lie in (0, 1]; got {self.level}.")
        if self.k < 1:
            raise DataworthError(f"k must be at least 1; got {self.k}.")

    def check(self, state: RunState) -> bool:
        if state.samples is None or state.used < max(self.min_samples, self._next):
            return False
        self._next = int(np.ceil(state.used * self.growth))
        boot = bootstrap_values(state.samples, self.n_boot, state.seed)
        self.last = rank_stability_of(state.values, boot, k=self.k).stability
        return self.last >= self.level

    def describe(self) -> str:
        return f"top and bottom {self.k} stable at {self.level:.0%}"
