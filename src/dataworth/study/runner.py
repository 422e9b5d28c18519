"""A study: a sequence of steps that share one context and write one run folder.

The CLI commands are thin layers over :func:`run_study`: ``baseline`` runs the data and baseline
steps, ``plan`` the data and cost steps, ``study`` all of them. This module holds the steps that
prepare the valuation (data, baseline, cost, budget) and those that close a study (summary,
report), the lists :data:`DEFAULT_STEPS` and :data:`EXTRA_STEPS`, and :func:`run_study`; the
valuation steps are in :mod:`dataworth.study.steps`, :mod:`dataworth.study.method_steps` and
:mod:`dataworth.study.stable_step`.
A step reads what earlier steps left in ``context.results`` and writes its files with
``context.write_*``, which do nothing when the study writes no folder.

Every step writes into the run folder's temporary twin, so an error in any step leaves no run
folder behind (see :mod:`dataworth.study.runfolder`). A study stopped by the user, a time limit or
lack of memory keeps it as ``<name>.partial/`` with ``study.log`` (see
:mod:`dataworth.study.log`).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.methods.registry import labels_run_by
from dataworth.methods.registry import method as method_spec
from dataworth.study.baseline import BaselineResult, run_baseline
from dataworth.study.budget import StudyShape, available_memory_bytes, share_budget
from dataworth.study.clean_step import CLEAN_SHARE, clean_step
from dataworth.study.config import StudyConfig
from dataworth.study.context import LogFn, ProgressFn, Step, StudyContext
from dataworth.study.cost.timing import plan_table, run_cost_study
from dataworth.study.log import StudyLog, stop_on_sigterm, stop_reason
from dataworth.study.method_steps import (
    ame_shapley_step,
    banzhaf_step,
    beta_shapley_step,
    compare_step,
    data_oob_step,
    influence_step,
    knn_shapley_step,
    methods_step,
)
from dataworth.study.runfolder import DEFAULT_ROOT, RunFolder, default_run_path
from dataworth.study.stable_step import stable_tmc_step
from dataworth.study.steps import (
    CACHE_NAME,
    ame_step,
    groups_step,
    loo_step,
    tmc_step,
)
from dataworth.study.summary import summary_markdown


def load_task(config: StudyConfig) -> Task:
    """The task the configuration describes (built-in dataset, CSV, Parquet or image folder)."""
    from dataworth.data import load_dataset

    return load_dataset(
        config.dataset,
        csv=config.csv,
        parquet=config.parquet,
        images=config.images,
        image_size=config.image_size,
        target=config.target,
        rows=config.rows,
        train_size=config.train_size,
        split=config.split,
        seed=config.seed,
        flip=config.flip,
        drop=config.drop,
        strict=config.strict,
    )


def data_step(ctx: StudyContext) -> None:
    """Load and split the data; write its description and the ids of the train/test rows."""
    task = load_task(ctx.config)
    ctx.task = task
    if "cost" in ctx.step_names:
        # The kernels the paths will use compile beside the baseline's fits (see the module).
        from dataworth.study.cost.warm_up import KernelWarmUp

        warm_up = KernelWarmUp(task, ctx.config.model, ctx.config.knn_k)
        ctx.results["kernel_warm_up"] = warm_up
        ctx.closers.append(warm_up.wait)  # no thread outlives the study
    description = task.metadata.get("description")
    info = {
        "name": task.name,
        "fingerprint": task.fingerprint,
        "n_train": task.n_train,
        "n_test": task.n_test,
        "n_features": task.n_features,
        "feature_names": list(task.feature_names),
        "class_names": list(task.class_names),
        "source": task.metadata.get("source"),
        "description": description.to_dict() if description is not None else None,
        "summary": description.summary_lines() if description is not None else [],
        "checks": [f.to_dict() for f in task.metadata.get("checks", [])],
        "dropped": task.metadata.get("dropped", []),
    }
    ctx.results["data"] = info
    ctx.write_json("data.json", info)
    # Row ids let every later value be traced back to the user's source rows.
    ctx.write_csv(
        "train_ids.csv",
        pd.DataFrame({"id": task.train_ids, "label": [task.class_names[c] for c in task.y_train]}),
        index=False,
    )
    ctx.write_csv(
        "test_ids.csv",
        pd.DataFrame({"id": task.test_ids, "label": [task.class_names[c] for c in task.y_test]}),
        index=False,
    )


def baseline_step(ctx: StudyContext) -> None:
    """Fit the baseline models; write the metrics, confusion matrix, curves and figures."""
    from dataworth.report.figures import baseline_figures

    config = ctx.config
    result = run_baseline(
        ctx.require_task(),
        models=config.baselines,
        primary_model=config.model,
        seed=config.seed,
        metric=config.metric,
        progress=ctx.progress,
        device=config.device,
    )
    ctx.results["baseline"] = result
    add_baseline_checks(ctx, result)
    ctx.write_json("baseline.json", result.to_dict())
    ctx.write_csv("baseline_metrics.csv", result.metrics)
    ctx.write_csv("confusion_matrix.csv", result.confusion)
    ctx.write_csv("curves.csv", result.curves_frame(), index=False)
    ctx.save_figures(lambda folder: baseline_figures(result, folder))


def add_baseline_checks(ctx: StudyContext, result: BaselineResult) -> None:
    """Warn (or stop, in strict mode) when every baseline is perfect; record it in data.json."""
    from dataworth.data.checks import baseline_findings, emit

    findings = baseline_findings(result.metrics, ctx.require_task().n_test)
    data = ctx.results.get("data")
    if not findings or data is None:
        return
    emit(findings, strict=ctx.config.strict)
    data["checks"] = [f.to_dict() for f in findings] + data.get("checks", [])
    ctx.write_json("data.json", data)


def _study_groups(ctx: StudyContext) -> dict | None:
    """The groups the study values (built once, kept for the groups and TMC steps); None when
    no step values groups."""
    from dataworth.methods.groups import build_groups

    config = ctx.config
    steps = set(ctx.step_names)
    values_groups = "tmc" in steps and config.tmc_players in ("groups", "both")
    if "groups" not in steps and not values_groups:
        return None
    if "groups" not in ctx.results:
        ctx.results["groups"] = build_groups(
            ctx.require_task(), config.group_by, fractions=config.group_fractions, seed=config.seed
        )
    return ctx.results["groups"]


def cost_step(ctx: StudyContext) -> None:
    """Time the models and the engine; write the fit times, the plan and the cost figure."""
    from dataworth.report.figures import cost_figures

    config = ctx.config
    baseline = ctx.results.get("baseline")
    known = None
    if baseline is not None:  # the baseline timed every model on all rows already
        frame = baseline.metrics
        known = {m: (frame.loc[m, "fit_seconds"], frame.loc[m, "n_timed"]) for m in frame.index}
    cost = run_cost_study(
        ctx.require_task(),
        models=config.baselines,
        valuation_model=config.model,
        metric=ctx.primary_metric,
        seed=config.seed,
        knn_k=config.knn_k,
        full_fit_seconds=known,
        tmc_tol=config.tmc_tol,
        progress=ctx.progress,
        warm_up=ctx.results.get("kernel_warm_up"),
        groups=_study_groups(ctx),
        device=config.device,
    )
    plan = plan_table(
        cost,
        budget_seconds=config.budget_seconds,
        ame_subsets=config.ame_subsets,
        oob_estimators=config.oob_estimators,
    )
    ctx.results["cost"] = cost
    ctx.results["plan"] = plan
    ctx.write_json(
        "cost.json",
        {
            **cost.to_dict(),
            "budget_seconds": config.budget_seconds,
            "plan": plan.to_dict(orient="records"),
        },
    )
    ctx.write_csv("fit_times.csv", cost.fit_times, index=False)
    ctx.write_csv("plan.csv", plan, index=False)
    ctx.save_figures(lambda folder: cost_figures(cost, folder))


def study_shape(ctx: StudyContext) -> StudyShape:
    """What this study's valuation steps will run, as the budget needs to know it."""
    from dataworth.learners import make_learner
    from dataworth.methods.groups import build_groups
    from dataworth.methods.sampler import subsets_for

    config, task = ctx.config, ctx.require_task()
    n = task.n_train
    if config.loo_ids:
        points = len(config.loo_ids)
    elif config.loo_points == "all":
        points = n
    else:
        points = min(int(config.loo_points), n)
    if config.group_by == "random":
        n_groups = len(config.group_fractions)
    else:
        n_groups = len(
            build_groups(task, config.group_by, fractions=config.group_fractions, seed=config.seed)
        )
    ame_players = n_groups if config.ame_players == "groups" else n
    ame_subsets = (
        int(config.ame_subsets)
        if config.ame_subsets is not None
        else subsets_for(int(config.ame_k or 10), ame_players)
    )
    if config.ame_target == "metric":
        ame_targets = 1 + min(int(config.ame_rows), task.n_test)
    elif config.ame_target == "all-test":
        ame_targets = task.n_test
    else:
        ame_targets = max(1, config.ame_target.count(",") + 1)
    learner = make_learner(config.model, seed=config.seed, device=config.device)
    learner_name = getattr(learner, "name", "")
    return StudyShape(
        n_train=n,
        n_test=task.n_test,
        loo_points=points,
        n_groups=n_groups,
        permutations=int(config.permutations),
        ame_subsets=ame_subsets,
        ame_players=ame_players,
        ame_targets=ame_targets,
        oob_estimators=int(config.oob_estimators),
        steps=set(ctx.step_names),
        tmc_points=config.tmc_players in ("points", "both"),
        tmc_groups=config.tmc_players in ("groups", "both"),
        batched=bool(getattr(learner, "batched", False)),
        influence=method_spec("influence").applies(learner_name, ctx.primary_metric),
    )


def budget_step(ctx: StudyContext) -> None:
    """Share the time left of the budget among the valuation methods.

    See :mod:`dataworth.study.budget`.

    Every training row is kept: the methods that grow gently with the rows value all of them
    when they fit, and the sampled methods stop at their share.
    """
    cost = ctx.results.get("cost")
    if cost is None:
        return
    count, seconds = ctx.results.get("figure_seconds", (0, 0.0))
    # The clean step runs last, on what the valuation leaves: its share is kept out of theirs.
    kept = CLEAN_SHARE * ctx.config.budget_seconds if "clean" in ctx.step_names else 0.0
    budget = share_budget(
        cost,
        study_shape(ctx),
        ctx.config.budget_seconds,
        perf_counter() - ctx.started,
        memory_bytes=available_memory_bytes(),
        seconds_per_figure=seconds / count if count else None,
        kept_seconds=kept,
    )
    ctx.results["budget"] = budget
    for method in budget.methods.values():
        allotted = f"{method.allotted:.1f} s" if method.run else "not run"
        ctx.log(f"budget: {method.label}: {allotted}; {method.note}")
    ctx.write_json("budget_plan.json", budget.to_dict())


def summary_step(ctx: StudyContext) -> None:
    """Write ``summary.md``, and ``budget.json`` (estimate against actual seconds per method)."""
    budget = ctx.results.get("budget")
    if budget is not None:
        ctx.write_json("budget.json", budget.to_dict() | {"step_seconds": dict(ctx.timings)})
    ctx.write_text("summary.md", summary_markdown(ctx))


def report_step(ctx: StudyContext) -> None:
    """Write ``report.html`` and ``report.md`` from the results the earlier steps stored.

    The report reads only the run folder, exactly as ``dataworth report`` does later, so the
    two give the same report.
    """
    if ctx.run is None:
        return
    from dataworth.report.build import build_report

    # run_study writes study.toml once every step is done; the report quotes it, so write the
    # same file now (the final write repeats it unchanged).
    ctx.config.to_toml(ctx.run.file("study.toml"))
    build_report(ctx.run.path, path=ctx.run.target)


DEFAULT_STEPS: list[Step] = [
    Step("data", data_step, "load and split the data"),
    Step("baseline", baseline_step, "fit the baseline models"),
    Step("cost", cost_step, "time fits and plan the valuation"),
    Step("budget", budget_step, "share the budget among the valuation methods"),
    Step("loo", loo_step, "exact leave-one-out influence"),
    Step("groups", groups_step, "exact leave-group-out influence"),
    # The methods that value every row at a cost known in advance run before the open-ended
    # ones, which stop at their share of what is left.
    Step("methods", methods_step, "every row valued by " + ", ".join(labels_run_by(["methods"]))),
    Step("tmc", tmc_step, "TMC-Shapley values of points and groups"),
    Step("stable_tmc", stable_tmc_step, "exact group values; TMC until its ranks are stable"),
    Step("ame", ame_step, "AME with Knockoffs for the metric and single predictions"),
    Step("compare", compare_step, "every method compared with TMC-Shapley and exact LOO"),
    Step("clean", clean_step, "flag the rows that hurt; act on a verified held-out gain"),
    Step("summary", summary_step, "write the summary"),
    Step("report", report_step, "write the HTML and Markdown report"),
]


# Methods a command can run on their own; the default study leaves them out to stay within the
# course's parts and its time budget.
EXTRA_STEPS: list[Step] = [
    Step("knn_shapley", knn_shapley_step, "exact KNN-Shapley"),
    Step("beta_shapley", beta_shapley_step, "Beta Shapley"),
    Step("banzhaf", banzhaf_step, "Data Banzhaf"),
    Step("ame_shapley", ame_shapley_step, "AME-Shapley"),
    Step("data_oob", data_oob_step, "Data-OOB"),
    Step("influence", influence_step, "influence functions"),
]


def study_outline(steps: Sequence[Step] | None = None) -> str:
    """What a study runs, in order, for the command line's help and the docs.

    The study's own steps (data, baseline, cost, budget; the comparison, cleaning, summary and
    report) are named by their step; the valuation methods between them by their labels in the
    method registry, so a method added to the registry and to a step appears here too.
    """
    steps = list(DEFAULT_STEPS if steps is None else steps)
    names = [s.name for s in steps]
    own = {"data": "data", "baseline": "baseline models", "cost": "cost study", "budget": "budget"}
    closing = {"compare": "comparison", "clean": "cleaning", "report": "report"}
    before = [label for name, label in own.items() if name in names]
    after = [label for name, label in closing.items() if name in names]
    return ", ".join([*before, *labels_run_by(names), *after])


def steps_named(*names: str) -> list[Step]:
    """The steps with these names, in study order (extra methods after the valuation steps)."""
    closing = ("summary", "report")  # these read what the others produced, so they come last
    known = [
        *(s for s in DEFAULT_STEPS if s.name not in closing),
        *EXTRA_STEPS,
        *(s for s in DEFAULT_STEPS if s.name in closing),
    ]
    unknown = set(names) - {s.name for s in known}
    if unknown:
        raise DataworthError(f"Unknown study step(s) {sorted(unknown)}.")
    return [s for s in known if s.name in names]


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("dataworth", "numpy", "scipy", "scikit-learn", "pandas", "matplotlib"):
        try:
            out[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


@dataclass
class StudyOutcome:
    """What :func:`run_study` returns: the context (all results) and the run folder, if any."""

    context: StudyContext
    path: Path | None


def run_study(
    config: StudyConfig,
    *,
    steps: Sequence[Step] | None = None,
    write: bool = True,
    root: str | Path = DEFAULT_ROOT,
    progress: ProgressFn | None = None,
    log: LogFn | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> StudyOutcome:
    """Run the steps of a study and (by default) write its run folder, all or nothing.

    Parameters
    ----------
    config : StudyConfig
    steps : sequence of Step, optional
        Default :data:`DEFAULT_STEPS`.
    write : bool, default=True
        Write a run folder (``config.out`` or ``root/<source>-<timestamp>``).
    root : str or Path, default="runs"
        Parent of default-named run folders.
    progress : callable, optional
        ``progress(description, done, total)`` for long steps.
    log : callable, optional
        Receives one-line messages.
    on_step : callable, optional
        Called with each step before it runs.

    Returns
    -------
    StudyOutcome
    """
    steps = list(DEFAULT_STEPS if steps is None else steps)
    run = None
    if write:
        target = Path(config.out) if config.out else default_run_path(config.source_label, root)
        run = RunFolder(target, overwrite=config.overwrite)
    journal = StudyLog(run.file("study.log") if run is not None else None)
    tell = log or (lambda m: None)

    def log_both(message: str) -> None:
        journal.line(message)
        tell(message)

    ctx = StudyContext(
        config=config,
        run=run,
        progress=progress,
        log=log_both,
        root=Path(root),
        step_names={s.name for s in steps},
    )
    started = datetime.now().astimezone()
    journal.line(f"study of {config.source_label}: {' '.join(sys.argv)}")
    current: str | None = None
    try:
        with stop_on_sigterm() as stop:
            for step in steps:
                current = step.name
                stop.check()
                if on_step is not None:
                    on_step(step)
                journal.line(f"step {step.name} started: {step.description}")
                start = perf_counter()
                step.run(ctx)
                ctx.timings[step.name] = perf_counter() - start
                journal.line(f"step {step.name} finished in {ctx.timings[step.name]:.1f} s")
            stop.check()
            current = None
            if run is not None:
                journal.line("study finished")
                config.to_toml(run.file("study.toml"))
                run.write_json("manifest.json", _manifest(ctx, steps, started))
                path = run.commit()
            else:
                path = None
    except (KeyboardInterrupt, MemoryError) as error:
        # Stopped by the user, a time limit or memory: keep what finished, and say so.
        if run is not None:
            _log_stop(journal, ctx, current, error)
            journal.close()
            error.partial_path = run.keep_partial()  # type: ignore[attr-defined]
        raise
    except BaseException:
        # Any other failure removes the partial folder: no half-written runs.
        journal.close()
        if run is not None:
            run.discard()
        raise
    finally:
        journal.close()
        for close in reversed(ctx.closers):
            close()
    return StudyOutcome(context=ctx, path=path)


def _log_stop(
    journal: StudyLog, ctx: StudyContext, current: str | None, error: BaseException
) -> None:
    """The end of ``study.log`` for a stopped study: why, where, and how to resume."""
    journal.line(f"study stopped during step {current}: {stop_reason(error)}")
    finished = ", ".join(f"{name} ({seconds:.1f} s)" for name, seconds in ctx.timings.items())
    journal.line(f"finished steps: {finished or 'none'}; their files are in this folder")
    out = ctx.config.out
    cache = (Path(out).expanduser().resolve().parent if out else ctx.root) / CACHE_NAME
    journal.line(
        f"every finished fit is stored in {cache}: run the same command again to resume; "
        "nothing stored there is refitted"
    )


def _manifest(ctx: StudyContext, steps: Sequence[Step], started: datetime) -> dict[str, Any]:
    task = ctx.task
    baseline = ctx.results.get("baseline")
    return {
        "created": started.isoformat(timespec="seconds"),
        "finished": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": sys.argv,
        "versions": _versions(),
        "platform": platform.platform(),
        "steps": [s.name for s in steps],
        "step_seconds": ctx.timings,
        "task_fingerprint": task.fingerprint if task is not None else None,
        "primary_model": ctx.config.model,
        "primary_metric": ctx.primary_metric,
        "metric_chosen_by": baseline.metric.chosen_by if baseline is not None else None,
        "config": ctx.config.to_dict(),
        # Everything in the folder at this point, plus the manifest itself.
        "files": sorted(
            [str(p.relative_to(ctx.run.path)) for p in ctx.run.path.rglob("*") if p.is_file()]
            + ["manifest.json"]
        )
        if ctx.run is not None
        else [],
    }
