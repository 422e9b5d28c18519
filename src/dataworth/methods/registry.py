"""The one list of valuation methods: what each is called, what it runs, its options and its cost.

Every part of the package that needs to know which methods exist reads :data:`REGISTRY`
instead of keeping its own list: the study (its steps and the budget), the plan of the cost
study (each method's fits and the timed path that estimates its seconds), ``evaluate`` (which
runs every method that values points), the report (which section shows each method) and the
command line (the names ``--methods`` accepts).

Adding a method is one module (the method itself, in this package) and one :class:`MethodSpec`
here; ``tests/test_registry.py`` checks that every entry is wired everywhere, so a method that is
only half added fails there.

Each option of a method is traced by one :class:`Option` from the command-line flag through the
study's configuration field to the method's argument, so an option has one meaning everywhere
even where its three names differ (``--tol`` is the study's ``tmc_tol`` and
:func:`~dataworth.methods.shapley.tmc.tmc_shapley`'s ``tol``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dataworth.methods.ame import ame, ame_shapley, banzhaf
from dataworth.methods.groups import build_groups
from dataworth.methods.influence import DIFFERENTIABLE_METRICS, influence
from dataworth.methods.knn.shapley import knn_shapley
from dataworth.methods.loo import leave_group_out, loo
from dataworth.methods.shapley import tmc_shapley
from dataworth.methods.shapley.beta import beta_shapley
from dataworth.methods.trees.oob import data_oob

if TYPE_CHECKING:
    from dataworth.data.task import Task
    from dataworth.methods.result import ValuationResult

__all__ = [
    "REGISTRY",
    "MethodSpec",
    "Option",
    "PlanRow",
    "by_command",
    "config_names",
    "labels_run_by",
    "method",
    "names",
]


@dataclass(frozen=True)
class Option:
    """One option of a method, from its command-line flag to the method's argument.

    Attributes
    ----------
    arg : str or None
        The argument it becomes (``None``: it chooses the players, points or groups, rather
        than being passed on).
    default : object
        The study's default (``StudyConfig``'s field default; ``None`` when the study has no
        such field and the method's own default applies).
    config : str or None
        The :class:`~dataworth.study.config.StudyConfig` field (``None``: not a study option).
    flag : str or None
        The command-line option, as its Python parameter name (``--n-jobs`` is ``n_jobs``).
    to : callable or None
        The function that takes ``arg`` when it is not the method itself (the groups of
        leave-group-out are built by :func:`~dataworth.methods.groups.build_groups`).
    """

    arg: str | None
    default: Any = None
    config: str | None = None
    flag: str | None = None
    to: Callable[..., Any] | None = None


@dataclass(frozen=True)
class PlanRow:
    """One row of the cost study's plan (``dataworth plan``): a configuration of a method.

    Attributes
    ----------
    label : str
        The row's name; ``{ame_subsets}`` and ``{oob_estimators}`` are filled in.
    fits : callable
        ``fits(rows, settings)``: the refits it needs on ``rows`` training rows, where
        ``settings`` holds ``ame_subsets`` and ``oob_estimators``. Times the seconds of one
        refit, this is the generic estimate of its cost.
    note : str or callable
        What the count means; a callable gets ``settings`` (with ``n`` and
        ``ame_sized_by_rule``).
    path : str or None
        The timed path (a key of the cost study's ``paths``) that estimates the row better than
        the generic formula when it was timed; see :mod:`dataworth.study.cost.paths`.
    units : callable, optional
        ``units(rows)``: the points or permutations the path estimate is for.
    needs_path : bool
        Shown only when ``path`` was timed (the method fits no model, or few of its own).
    """

    label: str
    fits: Callable[[int, Mapping[str, Any]], int]
    note: str | Callable[[Mapping[str, Any]], str]
    path: str | None = None
    units: Callable[[int], int] | None = None
    needs_path: bool = False

    def describe(self, settings: Mapping[str, Any]) -> str:
        """The row's note with its settings filled in."""
        return self.note(settings) if callable(self.note) else self.note


@dataclass(frozen=True)
class MethodSpec:
    """One valuation method and everything the rest of the package needs to know about it.

    Attributes
    ----------
    name : str
        The name ``evaluate_methods(methods=...)`` and ``--methods`` take.
    label : str
        How ``evaluate`` and the report name it.
    summary : str
        One line: what it computes and the paper it follows. The command line's help of its
        command and the lists of what a study runs are built from it.
    function : callable
        The method (in :mod:`dataworth.methods`).
    options : tuple of Option
        Its options, each traced from flag to argument.
    fits : callable
        ``fits(n, options)``: models it fits on ``n`` training rows with these options (an
        upper bound for TMC, whose truncation skips the tail of each permutation).
    values : str
        ``points`` (``evaluate`` runs it on every training row) or ``groups``.
    needs_learner : bool
        False for the methods that ignore the learner (KNN-Shapley, Data-OOB's own trees).
    applies : callable
        ``applies(learner_name, metric_name)``: whether the study runs it for that learner and
        metric (influence functions need the logistic regression and a differentiable metric).
    evaluate : callable or None
        ``evaluate(utility, task, settings)`` as :func:`~dataworth.evaluate.evaluate_methods`
        runs it, with ``settings`` its :class:`~dataworth.evaluate.Settings`; ``None`` for a
        method that does not value points.
    note : str
        A caveat ``evaluate`` prints beside its row.
    study_steps : tuple of str
        The study steps that run it (see :mod:`dataworth.study.runner`).
    budget : tuple of (str, str)
        ``(name, label)`` of each part of it the study's budget plans on its own.
    compared_as : str or None
        Its row in the study's ``method_comparison.csv`` (``None``: not compared there).
    report_section : str
        The report section that shows it (its id, e.g. ``shapley``).
    command : str or None
        The command that runs it alone (``None``: only through ``evaluate``).
    plan : tuple of PlanRow
        Its rows in the cost study's plan.
    """

    name: str
    label: str
    function: Callable[..., Any]
    summary: str = ""
    options: tuple[Option, ...] = ()
    fits: Callable[[int, Mapping[str, Any]], int] = lambda n, o: n + 1
    values: str = "points"
    needs_learner: bool = True
    applies: Callable[[str, str], bool] = lambda learner, metric: True
    evaluate: Callable[[Any, Task, Any], ValuationResult] | None = None
    note: str = ""
    study_steps: tuple[str, ...] = ()
    budget: tuple[tuple[str, str], ...] = ()
    compared_as: str | None = None
    report_section: str = "appendix"
    command: str | None = None
    plan: tuple[PlanRow, ...] = field(default=())

    def defaults(self) -> dict[str, Any]:
        """The study's default of each option, by the method's argument name."""
        return {o.arg: o.default for o in self.options if o.arg is not None}

    def arguments(self, config: Any, *leave_out: str) -> dict[str, Any]:
        """The method's arguments from a study configuration: each option's configuration field
        under the name of the argument it becomes (``tmc_tol`` -> ``tol``).

        Parameters
        ----------
        config : StudyConfig
        *leave_out : str
            Arguments the caller passes itself (AME's ``target``, which the study parses).
        """
        return {
            o.arg: getattr(config, o.config)
            for o in self.options
            if o.arg is not None and o.config is not None and o.to is None
            if o.arg not in leave_out
        }


def _influence_for_evaluate(u, task: Task, s) -> ValuationResult:
    # The first-order formula needs the metric's gradient; any other metric takes the Newton
    # step, which needs none.
    how = "first_order" if u.metric.name in DIFFERENTIABLE_METRICS else "newton"
    return influence(u, method=how)


def _ame_note(settings: Mapping[str, Any]) -> str:
    if settings["ame_sized_by_rule"]:
        return f"m = max(2000, 8·k·log2 n) with k = 10 points that matter (n = {settings['n']})"
    return f"m = {settings['ame_subsets']} subsets, as configured"


_SUBSETS = Option("n_subsets", 4000, "ame_subsets", "subsets")
_K = Option("k", None, "ame_k", "k")

#: Every valuation method, in the order ``evaluate`` runs them and the plan lists them.
REGISTRY: tuple[MethodSpec, ...] = (
    MethodSpec(
        name="loo",
        label="LOO",
        function=loo,
        summary="Exact leave-one-out influence of chosen or random points, with diagnostics.",
        options=(
            Option("n_random", 10, "loo_points", "points"),
            Option("points", None, "loo_ids", "ids"),
        ),
        fits=lambda n, o: n + 1,
        evaluate=lambda u, t, s: loo(u),
        # The methods step values every point when the budget planned it, else the tmc step
        # does for its comparison.
        study_steps=("loo", "methods", "tmc"),
        budget=(("loo", "exact LOO (chosen points)"), ("loo_all", "exact LOO (all points)")),
        compared_as="exact LOO",
        report_section="loo",
        command="loo",
        plan=(
            PlanRow(
                "LOO (10 points)",
                lambda r, s: 11,
                "U(D) once, then D without each point",
                "loo_one_out",
                lambda r: 10,
            ),
            PlanRow(
                "LOO (all points)",
                lambda r, s: r + 1,
                "U(D) plus one refit per training point",
                "loo_one_out",
                lambda r: r,
            ),
        ),
    ),
    MethodSpec(
        name="leave_group_out",
        label="leave-group-out",
        function=leave_group_out,
        summary="Exact leave-group-out influence of groups of different sizes.",
        options=(
            Option("spec", "random", "group_by", "by", to=build_groups),
            Option(
                "fractions",
                [round(0.1 * k, 1) for k in range(1, 11)],
                "group_fractions",
                "fractions",
                to=build_groups,
            ),
        ),
        fits=lambda n, o: len(o.get("fractions") or ()) + 1,
        values="groups",
        study_steps=("groups",),
        budget=(("groups", "leave-group-out"),),
        report_section="groups",
        command="groups",
        plan=(
            PlanRow(
                "leave-group-out (10 groups)", lambda r, s: 11, "U(D) plus one refit per group"
            ),
        ),
    ),
    MethodSpec(
        name="tmc_shapley",
        label="TMC-Shapley",
        function=tmc_shapley,
        summary=(
            "Truncated Monte Carlo Shapley values (Ghorbani and Zou, 2019) of points and/or groups."
        ),
        options=(
            Option("permutations", 10, "permutations", "permutations"),
            Option("tol", 0.01, "tmc_tol", "tol"),
            Option(None, "both", "tmc_players", "players"),
        ),
        fits=lambda n, o: o["permutations"] * n + 1,
        evaluate=lambda u, t, s: tmc_shapley(
            u, permutations=s.permutations, tol=s.tol, seed=s.seed
        ),
        study_steps=("tmc", "stable_tmc"),
        budget=(("tmc", "TMC-Shapley (points)"), ("tmc_groups", "TMC-Shapley (groups)")),
        compared_as="TMC-Shapley",
        report_section="shapley",
        command="tmc",
        plan=(
            PlanRow(
                "TMC-Shapley (10 perms)",
                lambda r, s: 10 * r + 1,
                "upper bound: truncation skips the tail of each permutation once U is near U(D)",
                "tmc_chain",
                lambda r: 10,
            ),
            PlanRow(
                "TMC-Shapley, 10 groups (10 perms)",
                lambda r, s: 10 * 10 + 1,
                "upper bound without truncation; players are the groups",
            ),
        ),
    ),
    MethodSpec(
        name="banzhaf",
        label="Banzhaf (MSR)",
        function=banzhaf,
        summary="Data Banzhaf values (Wang and Jia, 2023): maximum sample reuse on random subsets.",
        options=(Option("n_subsets"),),
        fits=lambda n, o: o["n_subsets"],
        evaluate=lambda u, t, s: banzhaf(u, n_subsets=s.n_subsets, seed=s.seed),
        study_steps=("banzhaf",),
        report_section="appendix",
    ),
    MethodSpec(
        name="ame",
        label="AME",
        function=ame,
        summary="AME (Lin et al., 2022): randomized-subset LASSO values with a Knockoff selection.",
        options=(
            _SUBSETS,
            _K,
            Option("fdr", 0.1, "ame_fdr", "fdr"),
            Option("target", "metric", "ame_target", "explain"),
            Option(None, "points", "ame_players"),  # the ame command maps its --players
        ),
        fits=lambda n, o: o["n_subsets"],
        evaluate=lambda u, t, s: ame(u, n_subsets=s.n_subsets, seed=s.seed),
        study_steps=("ame",),
        budget=(("ame", "AME"),),
        report_section="ame",
        command="ame",
        plan=(
            PlanRow(
                "AME ({ame_subsets} subsets)",
                lambda r, s: s["ame_subsets"],
                _ame_note,
                "ame_estimation",
            ),
        ),
    ),
    MethodSpec(
        name="ame_shapley",
        label="AME-Shapley",
        function=ame_shapley,
        summary="Shapley values estimated from AME's subsets (Lin et al., 2022).",
        options=(Option("n_subsets"),),
        fits=lambda n, o: o["n_subsets"],
        evaluate=lambda u, t, s: ame_shapley(u, n_subsets=s.n_subsets, seed=s.seed),
        study_steps=("ame_shapley",),
        report_section="ame",
    ),
    MethodSpec(
        name="beta_shapley",
        label="Beta Shapley (4,1)",
        function=beta_shapley,
        summary="Beta Shapley (Kwon and Zou, 2022) from random subsets (the AME sampler).",
        options=(
            Option("alpha", 4.0, "beta_alpha", "alpha"),
            Option("beta", 1.0, "beta_beta", "beta"),
            _SUBSETS,
            _K,
        ),
        fits=lambda n, o: o["n_subsets"],
        evaluate=lambda u, t, s: beta_shapley(u, n_subsets=s.n_subsets, seed=s.seed),
        study_steps=("beta_shapley",),
        report_section="appendix",
        command="beta-shapley",
    ),
    MethodSpec(
        name="knn_shapley",
        label="KNN-Shapley",
        function=knn_shapley,
        summary="Exact KNN-Shapley (Jia et al., 2019) in closed form: no model is fitted.",
        options=(Option("k", 10, "knn_k", "neighbours"),),
        fits=lambda n, o: 0,
        needs_learner=False,
        evaluate=lambda u, t, s: knn_shapley(t, k=s.knn_k),
        note="closed form for a KNN utility; ignores the learner and metric",
        study_steps=("knn_shapley", "methods"),
        budget=(("knn_shapley", "KNN-Shapley"),),
        compared_as="KNN-Shapley",
        report_section="shapley",
        command="knn-shapley",
        plan=(
            PlanRow(
                "KNN-Shapley",
                lambda r, s: 0,
                "no model is fitted; timed on a few test rows",
                "knn_shapley",
                needs_path=True,
            ),
        ),
    ),
    MethodSpec(
        name="data_oob",
        label="Data-OOB",
        function=data_oob,
        summary="Data-OOB (Kwon and Zou, 2023): out-of-bag accuracy of bagged decision trees.",
        options=(Option("n_estimators", 200, "oob_estimators", "estimators"),),
        fits=lambda n, o: o["n_estimators"],
        needs_learner=False,
        evaluate=lambda u, t, s: data_oob(t, n_estimators=s.n_estimators, seed=s.seed),
        note="bagged decision trees (the paper's); ignores the learner and metric",
        study_steps=("data_oob", "methods"),
        budget=(("data_oob", "Data-OOB"),),
        compared_as="Data-OOB",
        report_section="shapley",
        command="data-oob",
        plan=(
            PlanRow(
                "Data-OOB ({oob_estimators} models)",
                lambda r, s: s["oob_estimators"],
                "one tree per bootstrap sample",
                "data_oob",
                needs_path=True,
            ),
        ),
    ),
    MethodSpec(
        name="influence",
        label="Influence",
        function=influence,
        summary="Influence functions (Koh and Liang, 2017): LOO estimated from one logistic fit.",
        options=(Option("method", "first_order", "influence_method", "method"),),
        fits=lambda n, o: 1,
        applies=lambda learner, metric: learner == "logreg" and metric in DIFFERENTIABLE_METRICS,
        evaluate=_influence_for_evaluate,
        note="first-order estimate of LOO from one fit (logreg only)",
        study_steps=("influence", "methods"),
        budget=(("influence", "influence (first order)"),),
        compared_as="influence (first order)",
        report_section="shapley",
        command="influence",
        plan=(
            PlanRow(
                "influence (first order)",
                lambda r, s: 1,
                "one fit, one linear solve; timed on all rows",
                "influence",
                needs_path=True,
            ),
        ),
    ),
)

_BY_NAME = {spec.name: spec for spec in REGISTRY}


def names() -> list[str]:
    """Every method's name, in registry order."""
    return list(_BY_NAME)


def method(name: str) -> MethodSpec:
    """The registry entry of ``name`` (a ``KeyError`` for an unknown name)."""
    return _BY_NAME[name]


def budget_label(name: str) -> str:
    """The label of a part of a method the study's budget plans (``tmc_groups``, ``loo_all``)."""
    for spec in REGISTRY:
        for part, label in spec.budget:
            if part == name:
                return label
    raise KeyError(name)


def by_command(command: str) -> MethodSpec | None:
    """The method a command runs on its own (``None`` for a command that is no method's)."""
    return next((spec for spec in REGISTRY if spec.command == command), None)


def labels_run_by(steps: list[str] | tuple[str, ...]) -> list[str]:
    """The labels of the methods that the given study steps run, in the steps' order."""
    labels: list[str] = []
    for step in steps:
        for spec in REGISTRY:
            if step in spec.study_steps and spec.label not in labels:
                labels.append(spec.label)
    return labels


def config_names() -> dict[str, str]:
    """Command-line flag -> ``StudyConfig`` field, for the flags whose names differ.

    A flag that means different fields for different commands (``--players``) is left out: the
    command that owns it maps it.
    """
    pairs = {
        (o.flag, o.config)
        for spec in REGISTRY
        for o in spec.options
        if o.flag is not None and o.config is not None and o.flag != o.config
    }
    return dict(sorted(pairs))
