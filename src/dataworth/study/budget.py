"""The study's time budget: what each valuation method may spend, and what it then valued.

``dataworth study --budget 10m`` finishes within its budget plus a small margin on any input.
After the baseline and the cost study, the time left is shared out from the cost study's
estimates (each taken from the path the method really takes, see :mod:`dataworth.study.cost.paths`):

- Methods whose cost grows gently with the rows (exact LOO of chosen points, leave-group-out,
  exact LOO of every point for the batched logistic regression, KNN-Shapley, Data-OOB,
  influence functions) value every training row when their estimate fits what is left;
  otherwise they are skipped and say why (LOO of chosen points values as many random points as
  fit instead).
- Sampled methods (TMC-Shapley of points, of groups, and AME) share the rest. Each stops at its
  share: TMC after the last permutation that fits (the permutations done are kept, counted and
  reported with their standard errors), AME with as many random subsets as the measured seconds
  per fit allow. When all of them fit as configured they run exactly as configured.
- A small reserve is kept for writing the summary, the figures and the report.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from time import perf_counter
from typing import Any

from dataworth.errors import DataworthError
from dataworth.learners.memory import available_memory
from dataworth.methods.registry import REGISTRY, budget_label
from dataworth.study.cost.groups import estimate_leave_group_out
from dataworth.study.cost.plan import (
    ame_level_sizes,
    estimate_ame,
    estimate_data_oob,
    estimate_influence,
    estimate_knn_shapley,
    estimate_loo,
    estimate_tmc,
)
from dataworth.study.cost.result import CostResult

RESERVE_SHARE = 0.03
RESERVE_MIN_SECONDS = 3.0
"""Kept for the summary and report: this share of the budget, at least this long."""
FIGURES_TO_COME = 16
"""Figures the valuation steps and the report still draw after the budget is shared (LOO, groups,
TMC's four, AME's up to eight); kept back at the pace the baseline's figures were drawn."""
AME_MIN_SUBSETS = 100
"""Fewer random subsets than this give AME's LASSO too little to select anything."""
AME_BYTES_PER_CELL = 8 * 4
"""AME holds about four float64 copies of its (subsets x players) design at once."""
INFLUENCE_NOT_APPLIED = (
    "skipped: influence functions differentiate the logistic regression's loss; they need "
    "--model logreg and the log-loss or Brier metric."
)
SAMPLED = ("tmc", "tmc_groups", "ame")
FULL_ROWS = ("groups", "knn_shapley", "influence", "loo_all", "data_oob")


@dataclass
class MethodBudget:
    """The plan and the outcome of one valuation method under the budget.

    Attributes
    ----------
    name : str
        ``loo``, ``groups``, ``tmc``, ``tmc_groups``, ``loo_all``, ``ame``, ``knn_shapley``,
        ``data_oob`` or ``influence``.
    label : str
        How people call it.
    estimate : float
        Seconds the configured work on all training rows would take (the cost study's estimate).
    allotted : float
        Seconds the budget gives it (0 when it does not run).
    run : bool
        Whether it runs.
    units : int or None
        Points, permutations or subsets planned (``wanted`` were asked for).
    wanted : int or None
    unit : str
        What a unit is (``points``, ``permutations``, ``subsets``).
    note : str
        Why it runs as it does, in a sentence.
    fixed : float
        Seconds of a sampled method that do not depend on its units (AME's LASSO has a part
        that grows with the players only).
    actual : float or None
        Seconds it took (filled in as the study runs).
    valued : str
        What it valued, in words (filled in as the study runs).
    """

    name: str
    label: str
    estimate: float
    allotted: float = 0.0
    run: bool = True
    units: int | None = None
    wanted: int | None = None
    unit: str = ""
    note: str = ""
    actual: float | None = None
    valued: str = ""
    fixed: float = 0.0


@dataclass
class StudyBudget:
    """How the study's budget is shared among its valuation methods.

    Attributes
    ----------
    budget_seconds : float
    spent_seconds : float
        Seconds already spent (data, baseline, cost study) when the budget was shared.
    reserve_seconds : float
        Kept for the summary, figures and report.
    methods : dict of str to MethodBudget
        In the order the study runs them.
    deadline : float
        ``perf_counter()`` value by which the valuation should be done: the allotments, and the
        time kept for the figures the valuation steps draw as they go (the summary and report
        come after it).
    """

    budget_seconds: float
    spent_seconds: float
    reserve_seconds: float
    methods: dict[str, MethodBudget] = field(default_factory=dict)
    deadline: float = 0.0

    def left(self) -> float:
        """Seconds left before the valuation's deadline."""
        return self.deadline - perf_counter()

    def allowed(self, name: str) -> float:
        """Seconds ``name`` may take now: its allotment, less any overrun of earlier methods.

        The time still owed to the methods after it (their estimates, or their allotments for
        sampled methods) is kept back, so an early overrun shrinks the sampled methods rather
        than pushing the study past its budget.
        """
        return max(0.0, min(self.methods[name].allotted, self.available(name)))

    def available(self, name: str) -> float:
        """Seconds left for ``name`` and its slack: the time left less what is owed to the
        methods after it (their allotments).

        A run capped by its own count (TMC's permutations) takes this as its clock: it may use
        slack nobody else is owed (a first permutation slower than the cost study's timing, say)
        but never the time of the methods still to come.
        """
        names = list(self.methods)
        later = names[names.index(name) + 1 :]
        owed = sum(self.methods[m].allotted for m in later if self.methods[m].run)
        return max(0.0, self.left() - owed)

    def spare(self) -> float:
        """Seconds an unplanned extra (the stable TMC run) may take now without delaying the
        methods still to run: the time left less their allotments."""
        owed = sum(m.allotted for m in self.methods.values() if m.run and m.actual is None)
        return max(0.0, self.left() - owed)

    def record(self, name: str, seconds: float, valued: str) -> None:
        """Store what a method took and what it valued."""
        method = self.methods.get(name)
        if method is not None:
            method.actual = seconds
            method.valued = valued

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the budget and one record per method."""
        return {
            "budget_seconds": self.budget_seconds,
            "spent_seconds": self.spent_seconds,
            "reserve_seconds": self.reserve_seconds,
            "methods": [asdict(m) for m in self.methods.values()],
        }


def reserve_seconds(budget_seconds: float, seconds_per_figure: float | None = None) -> float:
    """Seconds kept back for the summary, the figures and the report."""
    figures = FIGURES_TO_COME * seconds_per_figure if seconds_per_figure else 0.0
    return max(RESERVE_MIN_SECONDS, RESERVE_SHARE * budget_seconds) + figures


def available_memory_bytes() -> int | None:
    """Memory the system can still give this process, if known.

    The learners' reading (:func:`dataworth.learners.memory.available_memory`): Linux
    ``MemAvailable``, capped by ``DATAWORTH_MEMORY_LIMIT`` when that is set.
    """
    return available_memory()


def ame_memory_limit(n_players: int, memory_bytes: int | None) -> int | None:
    """Most AME subsets whose design matrices fit in half the available memory."""
    if memory_bytes is None:
        return None
    return max(2, int(0.5 * memory_bytes // (AME_BYTES_PER_CELL * max(n_players, 1))))


@dataclass
class StudyShape:
    """What the study will run, as the budget needs to know it.

    Attributes
    ----------
    n_train, n_test : int
    loo_points : int
        Points LOO values (``n_train`` for all).
    n_groups : int
        Groups of leave-group-out and of group TMC.
    permutations : int
    ame_subsets : int
        AME's random subsets as configured.
    ame_players : int
        AME's players (points or groups).
    ame_targets : int
        What AME explains: the metric and single predictions, one regression each.
    oob_estimators : int
    steps : set of str
        The study's step names (``groups``, ``tmc``, ``ame``, ``methods``...).
    tmc_points, tmc_groups : bool
        Whether TMC values points, groups.
    batched : bool
        The learner refits many subsets at once (then LOO of every point is cheap).
    influence : bool
        Influence functions apply (logistic regression with a differentiable metric).
    """

    n_train: int
    n_test: int
    loo_points: int
    n_groups: int
    permutations: int
    ame_subsets: int
    ame_players: int
    oob_estimators: int
    steps: set[str]
    ame_targets: int = 1
    tmc_points: bool = True
    tmc_groups: bool = True
    batched: bool = False
    influence: bool = False


def share_budget(
    cost: CostResult,
    shape: StudyShape,
    budget_seconds: float,
    spent_seconds: float,
    *,
    memory_bytes: int | None = None,
    seconds_per_figure: float | None = None,
    now: float | None = None,
    kept_seconds: float = 0.0,
) -> StudyBudget:
    """Share what is left of the budget among the study's valuation methods.

    Parameters
    ----------
    cost : CostResult
        The cost study, with each method's path timed where it could be.
    shape : StudyShape
        What the study runs.
    budget_seconds : float
        The whole study's budget.
    spent_seconds : float
        Already spent by the steps before valuation.
    memory_bytes : int, optional
        Memory available; caps AME's subsets so its design matrices fit.
    seconds_per_figure : float, optional
        Measured seconds per figure so far; time is kept back for the figures to come.
    now : float, optional
        ``perf_counter()`` now (the deadline is counted from it).
    kept_seconds : float, default=0
        Kept for a step after the valuation (the clean step), out of every method's share.

    Returns
    -------
    StudyBudget

    Raises
    ------
    DataworthError
        When the time left cannot pay even for LOO of the chosen points and the report: the
        message says how long the steps so far took and what budget would fit.
    """
    n = shape.n_train
    reserve = reserve_seconds(budget_seconds, seconds_per_figure)
    left = budget_seconds - spent_seconds - reserve - kept_seconds
    first_points = min(shape.loo_points, 10)
    cheapest = estimate_loo(cost, first_points)
    if left < cheapest:
        need = (spent_seconds + reserve + cheapest) / (1 - kept_seconds / budget_seconds)
        raise DataworthError(
            f"The budget of {budget_seconds:g} s is too small even for the baseline: data, "
            f"baseline models and cost study took {spent_seconds:.1f} s, and LOO of "
            f"{first_points} points{', the cleaning' if kept_seconds else ''} and the report "
            f"need about {cheapest + reserve + kept_seconds:.1f} s more; "
            f"raise --budget to at least {math.ceil(need)} s (e.g. --budget {math.ceil(need)}s)."
        )
    budget = StudyBudget(budget_seconds, spent_seconds, reserve)
    # The valuation steps draw their figures as they go: the time kept for those figures comes
    # before the valuation's deadline, not after it (the allotments below share ``left`` only).
    figures = reserve - reserve_seconds(budget_seconds)
    budget.deadline = (perf_counter() if now is None else now) + left + figures
    methods: dict[str, MethodBudget] = {}

    # LOO of the chosen points runs first and always: as many of them as fit half of the time.
    loo = MethodBudget(
        "loo",
        budget_label("loo"),
        estimate_loo(cost, shape.loo_points),
        units=shape.loo_points,
        wanted=shape.loo_points,
        unit="points",
        note="values the chosen points.",
    )
    if loo.estimate > left:
        points = first_points
        while points * 2 <= shape.loo_points and estimate_loo(cost, points * 2) <= left / 2:
            points *= 2
        loo.units = points
        loo.note = (
            f"LOO of all {shape.loo_points} points asked for would take about "
            f"{loo.estimate:.0f} s; {points} random points fit the budget."
        )
    loo.allotted = estimate_loo(cost, loo.units)
    methods["loo"] = loo
    left -= loo.allotted

    # Full-row methods, cheapest first: each runs on every row when its estimate fits.
    full: list[MethodBudget] = []
    not_applied: list[MethodBudget] = []
    if "groups" in shape.steps:
        timed = cost.paths.get("leave_group_out")
        seconds = (
            (shape.n_groups + 1) * cost.seconds_per_fit(n)
            if timed is None
            else estimate_leave_group_out(timed)
        )
        full.append(MethodBudget("groups", budget_label("groups"), seconds, unit="groups"))
    if "tmc" in shape.steps and shape.batched:
        full.append(MethodBudget("loo_all", budget_label("loo_all"), estimate_loo(cost, n)))
    if "methods" in shape.steps:
        # The registry's methods of the study's "methods" step, each from its timed path.
        estimates = {
            "knn_shapley": lambda: estimate_knn_shapley(cost),
            "data_oob": lambda: estimate_data_oob(cost, shape.oob_estimators),
            "influence": lambda: estimate_influence(cost),
        }
        for spec in REGISTRY:
            # (exact LOO of every point is planned above, as loo_all)
            if spec.name not in estimates or "methods" not in spec.study_steps:
                continue
            if spec.name == "influence" and not shape.influence:
                # Said, not silently left out: a network or a tree has no loss to differentiate.
                not_applied.append(
                    MethodBudget(
                        spec.name,
                        budget_label(spec.name),
                        0.0,
                        run=False,
                        note=INFLUENCE_NOT_APPLIED,
                    )
                )
                continue
            seconds = estimates[spec.name]()
            full.append(
                MethodBudget(
                    spec.name, budget_label(spec.name), 0.0 if seconds is None else seconds
                )
            )
    for method in sorted(full, key=lambda m: m.estimate):
        if method.estimate <= left:
            method.allotted = method.estimate
            method.note = "values every training row."
            left -= method.estimate
        else:
            method.run = False
            method.note = (
                f"skipped: about {method.estimate:.0f} s on all {n} rows, more than the "
                f"{max(left, 0):.0f} s left of the budget."
            )

    sampled = _sampled_methods(cost, shape, memory_bytes)
    _share_sampled(sampled, max(left, 0.0))

    # The order the study runs them in (the allowance of each looks at those after it): the
    # methods whose cost is known in advance first, the ones that stop by the clock last.
    order = (
        "loo",
        "groups",
        "loo_all",
        "knn_shapley",
        "data_oob",
        "influence",
        "tmc",
        "tmc_groups",
        "ame",
    )
    by_name = {m.name: m for m in [*full, *not_applied, *sampled]}
    for name in order:
        if name in by_name:
            methods[name] = by_name[name]
    budget.methods = methods
    return budget


def _sampled_methods(
    cost: CostResult, shape: StudyShape, memory_bytes: int | None
) -> list[MethodBudget]:
    n = shape.n_train
    out: list[MethodBudget] = []
    if "tmc" in shape.steps and shape.tmc_points:
        out.append(
            MethodBudget(
                "tmc",
                budget_label("tmc"),
                estimate_tmc(cost, shape.permutations),
                units=shape.permutations,
                wanted=shape.permutations,
                unit="permutations",
            )
        )
    if "tmc" in shape.steps and shape.tmc_groups:
        timed = cost.paths.get("tmc_groups")
        per_permutation = (
            shape.n_groups * cost.seconds_per_fit(n) if timed is None else timed["seconds"]
        )
        out.append(
            MethodBudget(
                "tmc_groups",
                budget_label("tmc_groups"),
                shape.permutations * per_permutation,
                units=shape.permutations,
                wanted=shape.permutations,
                unit="permutations",
            )
        )
    if "ame" in shape.steps:
        wanted = shape.ame_subsets
        # The hierarchy's regressions (above the flat column limit) are its two levels'.
        levels = ame_level_sizes(shape.ame_players)
        widest = shape.ame_players if levels is None else max(levels)
        limit = ame_memory_limit(widest, memory_bytes)
        fixed, per_subset = estimate_ame(cost, shape.ame_players, shape.ame_targets)
        method = MethodBudget(
            "ame",
            budget_label("ame"),
            fixed + wanted * per_subset,
            units=wanted,
            wanted=wanted,
            unit="subsets",
            fixed=fixed,
        )
        if limit is not None and limit < wanted:
            method.units = limit
            method.note = (
                f"{wanted} subsets of {shape.ame_players} players would not fit in memory; "
                f"at most {limit}."
            )
        out.append(method)
    return out


def unit_seconds(method: MethodBudget) -> float:
    """Estimated seconds of one unit (a permutation, a subset) of a sampled method."""
    return (method.estimate - method.fixed) / max(method.wanted or 1, 1)


def units_within(method: MethodBudget, seconds: float) -> int:
    """How many units of a sampled method fit in ``seconds``."""
    # A hair of slack: seconds equal to the estimate must not lose a unit to rounding.
    spare = (seconds - method.fixed) * (1 + 1e-9)
    return max(0, int(spare // max(unit_seconds(method), 1e-12)))


def smallest_run_seconds(method: MethodBudget) -> float:
    """Seconds of a sampled method's smallest useful run."""
    return method.fixed + _minimum_units(method) * unit_seconds(method)


def _want(method: MethodBudget) -> float:
    """Seconds for the units a sampled method may run at most (memory may cap them)."""
    return method.fixed + unit_seconds(method) * (method.units or 0)


def _minimum_units(method: MethodBudget) -> int:
    return AME_MIN_SUBSETS if method.name == "ame" else 1


def _share_sampled(methods: list[MethodBudget], left: float) -> None:
    """Give each sampled method what it needs, or an equal share of what is left (water-filling).

    A method whose share cannot pay for its smallest useful run (one permutation, a hundred AME
    subsets) is skipped and its share goes to the others.
    """
    active = list(methods)
    while True:
        shares = _water_fill([_want(m) for m in active], left)
        short = [(m, s) for m, s in zip(active, shares, strict=True) if s < smallest_run_seconds(m)]
        if not short:
            break
        # Drop the method furthest from its smallest run, then share again.
        worst, share = max(short, key=lambda ms: smallest_run_seconds(ms[0]))
        worst.run, worst.allotted = False, 0.0
        worst.note = (
            f"skipped: its smallest run ({_minimum_units(worst)} {worst.unit}) would take about "
            f"{smallest_run_seconds(worst):.0f} s, more than its share of {share:.0f} s."
        )
        active.remove(worst)
    total = sum(_want(m) for m in active)
    for method, share in zip(active, _water_fill([_want(m) for m in active], left), strict=True):
        if total <= left:
            # Everything fits: each runs as configured, with the slack shared as a safety margin.
            method.allotted = share
            method.note = method.note or "runs as configured."
            continue
        method.allotted = share
        fit = units_within(method, share)
        if fit < (method.units or 0):
            method.units = max(_minimum_units(method), fit)
            method.note = (
                f"{method.units} of {method.wanted} {method.unit} fit its share of {share:.0f} s"
                + ("; it stops by the clock, so more may fit." if method.name != "ame" else ".")
            )
        else:
            method.note = method.note or "runs as configured."


def _water_fill(wants: list[float], total: float) -> list[float]:
    """Shares of ``total``: everyone gets what they want if it fits, else equal shares capped by
    their wants, with what the small ones leave going to the rest. All of ``total`` is shared
    (a method that needs less gets the leftover in proportion to its want, as a margin)."""
    if not wants:
        return []
    if sum(wants) <= total:
        scale = total / sum(wants) if sum(wants) > 0 else 0.0
        return [w * scale if sum(wants) > 0 else total / len(wants) for w in wants]
    shares = [0.0] * len(wants)
    remaining = total
    order = sorted(range(len(wants)), key=lambda i: wants[i])
    for rank, i in enumerate(order):
        equal = remaining / (len(wants) - rank)
        shares[i] = min(wants[i], equal)
        remaining -= shares[i]
    return shares
