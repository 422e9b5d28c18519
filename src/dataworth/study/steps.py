"""The valuation steps of the course's parts: exact LOO, leave-group-out, TMC-Shapley and AME.

The other methods' steps (KNN-Shapley, Beta Shapley, Data Banzhaf, AME-Shapley, Data-OOB,
influence) and their comparison are in :mod:`dataworth.study.method_steps`, which shares the
helpers here.

Each step reads the task and the primary metric that earlier steps left in the context, asks one
shared :class:`~dataworth.Utility` for its values, and writes tables, values and figures. The
utility's evaluation store lives beside the run folders (``<root>/.cache/evaluations.sqlite``),
not inside the new run folder: an interrupted study leaves no half-written folder, yet its
finished fits and permutations are kept and a rerun resumes without refitting them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.methods.ame import ame
from dataworth.methods.ame.scale import hierarchical_metric, study_ame_plan
from dataworth.methods.compare import compare_values
from dataworth.methods.diagnostics import point_diagnostics, summarize_unusual
from dataworth.methods.groups import build_groups
from dataworth.methods.loo import leave_group_out, loo
from dataworth.methods.registry import method
from dataworth.methods.result import ValuationResult
from dataworth.methods.shapley import group_sums, tmc_shapley
from dataworth.study.budget import FULL_ROWS

if TYPE_CHECKING:
    from dataworth.study.budget import MethodBudget
    from dataworth.study.context import StudyContext

CACHE_NAME = Path(".cache") / "evaluations.sqlite"
# The LOO table's columns people read first: the value and the diagnostics that explain it.
LOO_SHOWN = (
    "player_id",
    "label",
    "value",
    "neighbour_agreement",
    "own_label_proba",
    "outlier_rank",
    "flags",
)
# Shapley is compared with LOO of every point when that costs at most this many fits.
_FULL_LOO_LIMIT = 5000


def cache_path(ctx: StudyContext) -> Path:
    """Where the study's evaluation store lives: beside the run folders."""
    root = Path(ctx.config.out).expanduser().resolve().parent if ctx.config.out else ctx.root
    path = Path(root) / CACHE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def study_utility(ctx: StudyContext) -> Utility:
    """The one utility every valuation step of a study shares (created on first use)."""
    utility = ctx.results.get("utility")
    if utility is None:
        config = ctx.config
        utility = Utility(
            ctx.require_task(),
            learner=config.model,
            metric=ctx.primary_metric,
            backend=config.backend,
            n_jobs=config.n_jobs,
            scheduler=config.scheduler,
            store=cache_path(ctx),
            seed=config.seed,
            device=config.device,
        )
        ctx.results["utility"] = utility
        ctx.closers.append(utility.close)
        ctx.closers.append(utility.store.close)
    return utility


def _progress(ctx: StudyContext, label: str):
    if ctx.progress is None:
        return None
    return lambda done, total: ctx.progress(label, done, total or done)


def _planned(ctx: StudyContext, name: str) -> MethodBudget | None:
    """The budget's plan for a method, or None when the study has no budget step."""
    budget = ctx.results.get("budget")
    return None if budget is None else budget.methods.get(name)


def _skipped(ctx: StudyContext, name: str) -> bool:
    """True (and say so) when the budget leaves this method out.

    A method of known cost that the budget planned is still left out when its turn comes and
    the time left no longer pays for its estimate (the methods before it took longer than
    theirs): it could not stop once started.
    """
    plan = _planned(ctx, name)
    if plan is None:
        return False
    if plan.run:
        left = ctx.results["budget"].left()
        if name not in FULL_ROWS or plan.estimate <= left:
            return False
        plan.run = False
        plan.note = (
            f"skipped: about {plan.estimate:.0f} s, but only {max(left, 0):.0f} s were left "
            "when its turn came (the methods before it took longer than estimated)."
        )
    ctx.log(f"{plan.label}: {plan.note}")
    ctx.results["budget"].record(name, 0.0, plan.note)
    return True


@contextmanager
def _spending(ctx: StudyContext, name: str) -> Iterator[dict]:
    """Time one method; the caller puts what it valued, in words, under ``"valued"``."""
    outcome: dict = {}
    start = perf_counter()
    yield outcome
    seconds = perf_counter() - start
    ctx.results.setdefault("method_seconds", {})[name] = seconds
    budget = ctx.results.get("budget")
    if budget is not None:
        budget.record(name, seconds, outcome.get("valued", ""))
    if outcome.get("valued"):
        ctx.log(f"{name}: {outcome['valued']} in {seconds:.1f} s")


def _save(ctx: StudyContext, result: ValuationResult, stem: str) -> None:
    if ctx.run is not None:
        result.save(ctx.run.file(stem))
        _save_thumbnails(ctx, result, stem)


def _save_thumbnails(ctx: StudyContext, result: ValuationResult, stem: str) -> None:
    """On image data, the training images a result values lowest, as ``<stem>_thumbs``."""
    from dataworth.report.figures import save_figure
    from dataworth.report.image_figures import has_images, thumbnails_figure

    task = ctx.task
    if task is None or not has_images(task):
        return
    title = f"{result.method}: the training images of lowest value (the first it flags as harmful)"
    fig = thumbnails_figure(task, result, title)
    if fig is not None:
        name = f"{stem}_thumbs"
        ctx.save_figures(lambda folder: {name: save_figure(fig, folder, name)})


def loo_step(ctx: StudyContext) -> None:
    """Exact LOO of the chosen points, with the diagnostics of whether they are unusual."""
    from dataworth.report.figures import save_figure
    from dataworth.report.valuation_figures import loo_figure

    u = study_utility(ctx)
    points, ids = ctx.config.loo_points, ctx.config.loo_ids
    n_random = None if ids or points == "all" else min(int(points), u.n_players)
    plan = _planned(ctx, "loo")
    if plan is not None and plan.units < plan.wanted:
        ids, n_random = None, plan.units  # the budget affords fewer: random ones
    with _spending(ctx, "loo") as outcome:
        result = loo(
            u,
            points=ids,
            n_random=n_random,
            seed=ctx.config.seed,
            progress=_progress(ctx, "leave-one-out"),
        )
        outcome["valued"] = f"{len(result)} of {u.n_players} rows"
    diagnostics = point_diagnostics(u, result.extra["position"])
    table = (
        result.to_frame()
        .drop(columns=["stderr", "count"])
        .merge(diagnostics.drop(columns=["position"]), on="player_id")
    )
    ctx.results["loo"] = result
    ctx.results["loo_table"] = table
    ctx.results["loo_summary"] = summarize_unusual(result.values, diagnostics)
    _save(ctx, result, "loo")
    ctx.write_csv("loo_table.csv", table, index=False)
    ctx.save_figures(
        lambda folder: {"loo": save_figure(loo_figure(result, diagnostics), folder, "loo")}
    )


def groups_step(ctx: StudyContext) -> None:
    """Exact leave-group-out influence of the configured groups, and its size plot."""
    from dataworth.report.figures import save_figure
    from dataworth.report.valuation_figures import group_size_figure

    if _skipped(ctx, "groups"):
        return
    u = study_utility(ctx)
    config = ctx.config
    groups = ctx.results.get("groups")  # built by the cost step, which timed on them
    if groups is None:
        groups = build_groups(
            ctx.require_task(), config.group_by, fractions=config.group_fractions, seed=config.seed
        )
    with _spending(ctx, "groups") as outcome:
        result = leave_group_out(u, groups, progress=_progress(ctx, "leave-group-out"))
        outcome["valued"] = f"{len(result)} groups of all {u.n_players} rows"
    ctx.results["groups"] = groups
    ctx.results["lgo"] = result
    _save(ctx, result, "groups")
    ctx.write_csv("groups_table.csv", result.to_frame().drop(columns=["stderr"]), index=False)
    ctx.save_figures(
        lambda folder: {"group_size": save_figure(group_size_figure(result), folder, "group_size")}
    )


def tmc_step(ctx: StudyContext) -> None:
    """TMC-Shapley of every point and every group, and its comparison with LOO."""
    from dataworth.report.figures import save_figure
    from dataworth.report.valuation_figures import (
        group_shapley_figure,
        shapley_distribution_figure,
        shapley_errorbar_figure,
        shapley_vs_loo_figure,
    )

    u = study_utility(ctx)
    config = ctx.config
    options = {**method("tmc_shapley").arguments(config), "seed": config.seed}
    figures = {}
    groups = ctx.results.get("groups")
    if config.tmc_players in ("groups", "both") and groups is None:
        groups = build_groups(
            ctx.require_task(), config.group_by, fractions=config.group_fractions, seed=config.seed
        )
        ctx.results["groups"] = groups
    points = None
    if config.tmc_players in ("points", "both") and not _skipped(ctx, "tmc"):
        with _spending(ctx, "tmc") as outcome:
            points = _tmc_within_budget(ctx, u, options, None, "tmc", "TMC-Shapley, points")
            outcome["valued"] = _permutations_valued(points, config.permutations)
        ctx.results["tmc"] = points
        _save(ctx, points, "shapley_points")
        figures["shapley_distribution"] = shapley_distribution_figure(points)
    if config.tmc_players in ("groups", "both") and not _skipped(ctx, "tmc_groups"):
        with _spending(ctx, "tmc_groups") as outcome:
            by_group = _tmc_within_budget(ctx, u, options, groups, "tmc_groups", "TMC, groups")
            outcome["valued"] = _permutations_valued(by_group, config.permutations)
        if points is not None:
            by_group.extra["sum_of_point_values"] = group_sums(points, groups)
        ctx.results["tmc_groups"] = by_group
        _save(ctx, by_group, "shapley_groups")
        figures["shapley_groups"] = group_shapley_figure(
            by_group, by_group.extra.get("sum_of_point_values")
        )
    loo_points: ValuationResult | None = ctx.results.get("loo")
    # The study's methods step values every point by LOO before TMC when the budget planned it;
    # on its own, the tmc step does it here when it is cheap.
    reference = every_point_loo(ctx, u, wanted=points is not None) or loo_points
    if points is None:
        ctx.save_figures(
            lambda folder: {name: save_figure(fig, folder, name) for name, fig in figures.items()}
        )
        return

    if loo_points is not None:
        figures["shapley_loo_points"] = shapley_errorbar_figure(points, loo_points.player_ids)
    if reference is not None:
        comparison = compare_values(points, reference)
        comparison["loo_points"] = "all" if reference is not loo_points else len(reference)
        ctx.results["shapley_vs_loo"] = comparison
        ctx.write_json("shapley_vs_loo.json", comparison)
        table = ctx.results.get("loo_table")
        flagged = table.loc[table["flags"] != "", "player_id"] if table is not None else []
        figures["shapley_vs_loo"] = shapley_vs_loo_figure(points, reference, flagged)
    ctx.save_figures(
        lambda folder: {name: save_figure(fig, folder, name) for name, fig in figures.items()}
    )


def every_point_loo(ctx: StudyContext, u: Utility, *, wanted: bool) -> ValuationResult | None:
    """Exact LOO of every training point, once per study: the reference TMC is compared with.

    LOO of every point is n + 1 fits: cheap for the batched learners, not for generic ones.
    With a budget it runs when the budget planned it (its estimate fitted); without one, when
    ``wanted`` and the learner is batched and the task small. The first step that asks decides;
    later ones get the same result (or None).
    """
    if "loo_all" in ctx.results or ctx.results.get("loo_all_decided"):
        return ctx.results.get("loo_all")
    ctx.results["loo_all_decided"] = True
    plan = _planned(ctx, "loo_all")
    batched = getattr(u.learner, "batched", False)
    if _skipped(ctx, "loo_all"):
        return None
    budget = ctx.results.get("budget")
    if plan is None and (budget is not None or not (wanted and batched)):
        return None  # a budget that did not plan it (no TMC step to compare with) leaves it out
    if plan is None and u.n_players + 1 > _FULL_LOO_LIMIT:
        return None
    with _spending(ctx, "loo_all") as outcome:
        # Its clock: the time not owed to the methods after it; past it, the rows valued so
        # far are kept (each value exact) and the rest are not valued.
        result = loo(
            u,
            progress=_progress(ctx, "LOO of all points"),
            time_budget=None if budget is None else budget.available("loo_all"),
        )
        outcome["valued"] = (
            f"all {u.n_players} rows"
            if len(result) == u.n_players
            else f"{len(result)} of {u.n_players} rows (stopped by the clock)"
        )
    ctx.results["loo_all"] = result
    _save(ctx, result, "loo_all")
    return result


def _tmc_within_budget(
    ctx: StudyContext, u: Utility, options: dict, groups, name: str, label: str
) -> ValuationResult:
    """TMC-Shapley as configured, stopped by the clock at the method's share of the budget.

    With a budget, the run stops by the clock: at its share (less any overrun of the steps
    before) when the budget cut its permutations, else at the time not owed to the methods
    after it (it is capped by its count anyway). :func:`tmc_shapley` sizes its batches to the
    time left and drops the permutations in flight at the deadline, so it stops within one
    round of prefixes of its time. The permutations kept are the first ones, so the values after
    ``p`` permutations are exactly those of a run of ``p`` permutations (and the store's journal
    resumes them).
    """
    plan = _planned(ctx, name)
    progress = _progress(ctx, label)
    if plan is None:
        return tmc_shapley(u, **options, groups=groups, progress=progress)
    budget = ctx.results["budget"]
    cut = plan.units < plan.wanted
    allowed = budget.allowed(name) if cut else budget.available(name)
    result = tmc_shapley(
        u,
        **{**options, "permutations": plan.wanted},
        groups=groups,
        time_budget=allowed,
        progress=progress,
    )
    if cut or result.params["permutations"] < plan.wanted:
        result.params["stopping"] = (
            f"share of the study's budget ({allowed:.0f} s), {plan.wanted} permutations at most"
        )
    return result


def _permutations_valued(result: ValuationResult, wanted: int) -> str:
    done = int(result.params["permutations"])
    return f"all {len(result)} players, {done} of {wanted} permutations (standard errors kept)"


def parse_target(task, target: str):
    """``metric``, ``all-test`` or ``test:ID[,ID...]`` as :func:`ame` takes it (test positions)."""
    if target in ("metric", "all-test"):
        return target
    kind, _, ids = target.partition(":")
    if kind != "test" or not ids:
        raise DataworthError(
            f"Unknown AME target {target!r}; use metric, all-test or test:ID[,ID...] "
            "(ids of test rows, see test_ids.csv)."
        )
    lookup = {str(v): i for i, v in enumerate(task.test_ids.tolist())}
    wanted = [x.strip() for x in ids.split(",") if x.strip()]
    missing = [x for x in wanted if x not in lookup]
    if missing:
        raise DataworthError(
            f"Test row id(s) {', '.join(missing[:5])} are not in the test split; "
            "pick ids from test_ids.csv."
        )
    return [lookup[x] for x in wanted]


def hardest_test_rows(utility: Utility, count: int) -> list[int]:
    """Test positions whose true class the full-data model finds least likely."""
    if count == 0:
        return []
    full = utility.evaluate(np.ones((1, utility.n_players), bool), per_prediction=True)
    return [int(i) for i in np.argsort(full.per_prediction[0], kind="stable")[:count]]


def ame_step(ctx: StudyContext) -> None:
    """AME (Lin et al., ICML 2022) with a Knockoff selection: the metric and single predictions.

    The ``ame`` command explains ``config.ame_target``; the study explains the metric and the
    ``config.ame_rows`` hardest test predictions. One set of subset fits serves them all.
    """
    from dataworth.report.figures import save_figure
    from dataworth.report.image_figures import prediction_images_figure
    from dataworth.report.valuation_figures import ame_rank_figure, ame_target_rows_figure

    if _skipped(ctx, "ame"):
        ctx.results["ame"] = {}
        return
    u = study_utility(ctx)
    config = ctx.config
    task = ctx.require_task()
    target = parse_target(task, config.ame_target)
    rows: list[int] = list(target) if isinstance(target, list) else []
    if target == "all-test":
        rows = list(range(task.n_test))
    if target == "metric":
        rows = hardest_test_rows(u, int(config.ame_rows))
    groups = None
    if config.ame_players == "groups":
        groups = ctx.results.get("groups") or build_groups(
            task, config.group_by, fractions=config.group_fractions, seed=config.seed
        )
        ctx.results["groups"] = groups
    options = {
        **method("ame").arguments(config, "target"),
        "seed": config.seed,
        "groups": groups,
    }
    subsets = _ame_subsets_within_budget(ctx)
    if subsets == 0:
        ctx.results["ame"] = {}
        return
    if subsets is not None:
        options["n_subsets"], options["k"] = subsets, None
    fit_seconds = _ame_fit_seconds(ctx)
    # Decided before any fit: flat AME, or hierarchical when the flat regression is too large.
    plan = None
    if groups is None:
        plan = study_ame_plan(
            u.n_players,
            n_subsets=options["n_subsets"],
            k=options["k"],
            fdr=config.ame_fdr,
            n_targets=len(rows) + (target == "metric"),
        )
        ctx.log(f"AME: {plan.reason}.")
    with _spending(ctx, "ame") as outcome:
        if plan is not None and plan.mode == "hierarchical":
            if rows:
                ctx.log("AME: the hierarchical estimator explains the metric only, not test rows.")
            options.pop("groups")
            results = hierarchical_metric(
                u, plan, progress=_progress(ctx, "AME"), time_budget=fit_seconds, **options
            )
            rows = []
            valued = f"{len(results['ame_metric']) if 'ame_metric' in results else 0} points"
            valued += f" of {plan.n_groups} random groups (hierarchical)"
        else:
            results = _run_ame(ctx, u, task, target, rows, options, fit_seconds)
            valued = f"all {u.n_players if groups is None else len(groups)} players"
        n_subsets = next(iter(results.values())).params["n_subsets"] if results else 0
        outcome["valued"] = f"{valued}, {n_subsets} random subsets"
    ctx.results["ame"] = results
    for stem, result in results.items():
        if plan is not None:
            result.params["ame_plan"] = plan.describe()
        _save(ctx, result, stem)
    figures = {
        stem: ame_rank_figure(result, _ame_title(result)) for stem, result in results.items()
    }
    for row in rows:
        stem = ame_row_stem(task, row)
        pictures = prediction_images_figure(task, row, results[stem])
        if pictures is not None:  # image data: the pictures, not a heat map of 784 pixels
            figures[f"{stem}_images"] = pictures
        else:
            figures[f"{stem}_rows"] = ame_target_rows_figure(task, row, results[stem])
    ctx.save_figures(
        lambda folder: {stem: save_figure(fig, folder, stem) for stem, fig in figures.items()}
    )


def ame_row_stem(task, row: int) -> str:
    """The file stem of AME of one test row: ``ame_test_<id>``, the id made safe for a file name
    (an image's id is its path, ``cat/0007.png`` -> ``ame_test_cat_0007_png``)."""
    return "ame_test_" + re.sub(r"[^A-Za-z0-9_-]", "_", str(task.test_ids[row]))


def _ame_subsets_within_budget(ctx: StudyContext) -> int | None:
    """AME's subsets under the budget: None as configured, 0 to skip, else how many fit.

    Sized from the measured seconds per fit (AME's subsets hold half the rows on average) and
    the timed cost of its LASSO, so AME spends about its share; it has no clock of its own.
    """
    from dataworth.study.budget import AME_MIN_SUBSETS, units_within

    plan = _planned(ctx, "ame")
    if plan is None or plan.units >= plan.wanted:
        return None
    subsets = min(plan.units, units_within(plan, ctx.results["budget"].allowed("ame")))
    if subsets < AME_MIN_SUBSETS:
        plan.run = False
        plan.note = (
            f"skipped: only {subsets} subsets fit the time left, fewer than {AME_MIN_SUBSETS}."
        )
        _skipped(ctx, "ame")
        return 0
    return subsets


def _run_ame(ctx, u, task, target, rows, options, fit_seconds) -> dict[str, ValuationResult]:
    results: dict[str, ValuationResult] = {}
    deadline = None if fit_seconds is None else perf_counter() + fit_seconds

    def seconds_left() -> float | None:
        return None if deadline is None else max(0.0, deadline - perf_counter())

    # Single predictions first: their fits store the per-prediction scores, which the metric's
    # run then finds in the store (the other order would fit every subset twice).
    if rows:
        per_row = ame(
            u,
            target=rows,
            progress=_progress(ctx, "AME, single predictions"),
            time_budget=seconds_left(),
            **options,
        )
        for row, result in per_row.items():
            result.params["test_id"] = str(task.test_ids[row])
            result.params["test_label"] = task.class_names[task.y_test[row]]
            results[ame_row_stem(task, row)] = result
        # The metric's run finds every subset fitted in the store (only those, if the clock
        # stopped the fits): it needs no clock.
        first = next(iter(per_row.values()))
        options = {**options, "n_subsets": first.params["n_subsets"], "k": None}
        deadline = None
    if target == "metric":
        results["ame_metric"] = ame(
            u, progress=_progress(ctx, "AME, metric"), time_budget=seconds_left(), **options
        )
    return results


def _ame_fit_seconds(ctx: StudyContext) -> float | None:
    """Seconds AME's fits may take: the time left to it less its regressions' estimate (None
    without a budget). AME is sized to its share beforehand; this is the stop past it."""
    plan = _planned(ctx, "ame")
    if plan is None:
        return None
    return max(1.0, ctx.results["budget"].available("ame") - plan.fixed)


def _ame_title(result: ValuationResult) -> str:
    test_id = result.params.get("test_id")
    what = f"the prediction for test row {test_id}" if test_id else "the test metric"
    return f"AME on {what}"


def ame_table(result: ValuationResult, top: int = 10) -> pd.DataFrame:
    """The most valuable players with their AME, Knockoff statistic and selection."""
    frame = result.to_frame()
    columns = [c for c in ("player_id", "value", "w", "selected") if c in frame]
    return frame[columns].sort_values("value", ascending=False).head(top)
