"""A study: a sequence of steps that share one context and write one run folder.

The CLI commands are thin layers over :func:`run_study`: ``baseline`` runs the data and baseline
steps, ``plan`` the data and cost steps, ``study`` all of them. Later parts (LOO, groups, Shapley,
AME) extend a study by appending :class:`Step` objects to :data:`DEFAULT_STEPS` (or passing their
own list): a step reads what earlier steps left in ``context.results`` and writes its files with
``context.write_*``, which do nothing when the study writes no folder.

Every step writes into the run folder's temporary twin, so an error in any step leaves no run
folder behind (see :mod:`dataworth.runfolder`). A study stopped by the user, a time limit or
lack of memory keeps it as ``<name>.partial/`` with ``study.log`` (see
:mod:`dataworth.study_log`).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd

from dataworth.baseline import DEFAULT_METRIC, BaselineResult, run_baseline
from dataworth.budget import StudyShape, available_memory_bytes, share_budget
from dataworth.config import StudyConfig
from dataworth.cost import CostResult, plan_table, run_cost_study
from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.report.budget_table import budget_frame, budget_sentence
from dataworth.runfolder import DEFAULT_ROOT, RunFolder, default_run_path
from dataworth.stable_step import stable_tmc_step
from dataworth.study_log import StudyLog, stop_on_sigterm, stop_reason
from dataworth.valuation_steps import (
    ame_step,
    beta_shapley_step,
    data_oob_step,
    groups_step,
    influence_step,
    knn_shapley_step,
    loo_step,
    methods_step,
    tmc_step,
    valuation_markdown,
)

ProgressFn = Callable[[str, int, int], None]
LogFn = Callable[[str], None]


@dataclass
class StudyContext:
    """What the steps of one study share.

    Attributes
    ----------
    config : StudyConfig
    run : RunFolder or None
        The folder being written, or ``None`` when results are only shown.
    task : Task or None
        Set by the data step.
    results : dict
        Each step's result under its name (``"baseline"``, ``"cost"``, ``"plan"``...).
    figures : dict
        Figure name -> saved files (final paths).
    timings : dict
        Seconds per step.
    progress : callable or None
        ``progress(description, done, total)`` for long steps.
    log : callable
        One-line messages for the user.
    closers : list of callable
        Called when the study ends (shut down workers, close the evaluation store).
    root : Path
        Parent of default-named run folders; the evaluation cache lives there too.
    started : float
        ``perf_counter()`` when the study began (the budget counts from it).
    step_names : set of str
        The names of the study's steps (the budget shares time only among those).
    """

    config: StudyConfig
    run: RunFolder | None = None
    task: Task | None = None
    results: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, list[Path]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    progress: ProgressFn | None = None
    log: LogFn = lambda message: None
    closers: list[Callable[[], None]] = field(default_factory=list)
    root: Path = DEFAULT_ROOT
    started: float = field(default_factory=perf_counter)
    step_names: set[str] = field(default_factory=set)

    @property
    def writes(self) -> bool:
        return self.run is not None

    def write_json(self, name: str, obj: Any) -> None:
        if self.run is not None:
            self.run.write_json(name, obj)

    def write_csv(self, name: str, frame: pd.DataFrame, index: bool = True) -> None:
        if self.run is not None:
            self.run.write_csv(name, frame, index=index)

    def write_text(self, name: str, text: str) -> None:
        if self.run is not None:
            self.run.write_text(name, text)

    def save_figures(self, make: Callable[[Path], dict[str, list[Path]]]) -> None:
        """Call ``make(folder)`` with the figures folder, and record the final paths."""
        if self.run is None:
            return
        start = perf_counter()
        saved = make(self.run.folder("figures"))
        for name, paths in saved.items():
            self.figures[name] = [self.run.final_path(p) for p in paths]
        # The budget keeps time back for the figures still to come, at the pace measured so far.
        count, seconds = self.results.get("figure_seconds", (0, 0.0))
        self.results["figure_seconds"] = (count + len(saved), seconds + perf_counter() - start)

    def require_task(self) -> Task:
        if self.task is None:
            raise DataworthError("This study step needs the data step first; add it to the steps.")
        return self.task

    @property
    def primary_metric(self) -> str:
        """The metric the baseline chose (or the user forced), else the default."""
        baseline = self.results.get("baseline")
        if baseline is not None:
            return baseline.metric.name
        return self.config.metric or DEFAULT_METRIC


@dataclass(frozen=True)
class Step:
    """One named stage of a study: ``run(context)`` does the work and writes its files."""

    name: str
    run: Callable[[StudyContext], None]
    description: str = ""


def load_task(config: StudyConfig) -> Task:
    """The task the configuration describes (built-in dataset, CSV or Parquet)."""
    from dataworth.data import load_dataset

    return load_dataset(
        config.dataset,
        csv=config.csv,
        parquet=config.parquet,
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
    learner = make_learner(config.model, seed=config.seed)
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
        influence=getattr(learner, "name", "") == "logreg"
        and ctx.primary_metric in ("neg_log_loss", "neg_brier"),
    )


def budget_step(ctx: StudyContext) -> None:
    """Share the time left of the budget among the valuation methods (see :mod:`dataworth.budget`).

    Every training row is kept: the methods that grow gently with the rows value all of them
    when they fit, and the sampled methods stop at their share.
    """
    cost = ctx.results.get("cost")
    if cost is None:
        return
    count, seconds = ctx.results.get("figure_seconds", (0, 0.0))
    budget = share_budget(
        cost,
        study_shape(ctx),
        ctx.config.budget_seconds,
        perf_counter() - ctx.started,
        memory_bytes=available_memory_bytes(),
        seconds_per_figure=seconds / count if count else None,
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
    Step("tmc", tmc_step, "TMC-Shapley values of points and groups"),
    Step("stable_tmc", stable_tmc_step, "exact group values; TMC until its ranks are stable"),
    Step("ame", ame_step, "AME with Knockoffs for the metric and single predictions"),
    Step("methods", methods_step, "KNN-Shapley, Data-OOB, influence, and every method compared"),
    Step("summary", summary_step, "write the summary"),
    Step("report", report_step, "write the HTML and Markdown report"),
]


# Methods a command can run on their own; the default study leaves them out to stay within the
# course's parts and its time budget.
EXTRA_STEPS: list[Step] = [
    Step("knn_shapley", knn_shapley_step, "exact KNN-Shapley"),
    Step("beta_shapley", beta_shapley_step, "Beta Shapley"),
    Step("data_oob", data_oob_step, "Data-OOB"),
    Step("influence", influence_step, "influence functions"),
]


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


def summary_markdown(ctx: StudyContext) -> str:
    """A Markdown summary of whatever the steps produced."""
    lines = [f"# dataworth study: {ctx.config.source_label}", ""]
    data = ctx.results.get("data")
    if data:
        lines += ["## Data", ""] + [f"- {s}" for s in data["summary"]] + [""]
        checks = [f"- {c['severity']}: {c['message']}" for c in data.get("checks", [])]
        lines += ["## Data checks", "", *(checks or ["- No problems found."]), ""]
    baseline: BaselineResult | None = ctx.results.get("baseline")
    if baseline is not None:
        lines += ["## Baseline models", "", _markdown_table(baseline.metrics.round(4)), ""]
        lines += [
            f"Confusion matrix of `{baseline.primary_model}` (rows: true, columns: predicted):",
            "",
            _markdown_table(baseline.confusion),
            "",
        ]
        lines += [
            "## Primary metric",
            "",
            baseline.metric.justification,
            "",
        ]
    cost: CostResult | None = ctx.results.get("cost")
    plan: pd.DataFrame | None = ctx.results.get("plan")
    if cost is not None and plan is not None:
        lines += ["## Cost", "", _markdown_table(cost.fit_times.drop(columns="note")), ""]
        lines += [f"- {n}" for n in cost.notes]
        if cost.utility is not None:
            lines.append(
                f"- The engine evaluated {cost.utility['subsets']} random 90% subsets in "
                f"{cost.utility['seconds_total']:.3f} s "
                f"({cost.utility['seconds_per_subset']:.4f} s per subset)."
            )
        elif cost.utility_note:
            lines.append(f"- {cost.utility_note}")
        lines += [
            "",
            f"Plan against a budget of {ctx.config.budget_seconds:g} s per method:",
            "",
            _markdown_table(plan.set_index("method")),
            "",
        ]
    budget = ctx.results.get("budget")
    if budget is not None:
        lines += budget_markdown(budget, _markdown_table)
    lines += valuation_markdown(ctx, _markdown_table)
    if ctx.figures:
        lines += ["## Figures", ""]
        lines += [
            f"- `{name}`: " + ", ".join(f"`{p.name}`" for p in paths)
            for name, paths in ctx.figures.items()
        ]
        lines.append("")
    return "\n".join(lines)


def budget_markdown(budget, table_fn) -> list[str]:
    """Markdown lines: the budget, and each method's estimate against its actual seconds."""
    return [
        "## Budget: estimate against actual",
        "",
        budget_sentence(budget),
        "",
        table_fn(budget_frame(budget)),
        "",
    ]


def _markdown_table(frame: pd.DataFrame) -> str:
    if frame.index.name is not None:  # a meaningful index (model, method) becomes a column
        frame = frame.reset_index()
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join(_markdown_cell(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def _markdown_cell(value: Any) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"  # timings carry noise beyond four significant digits
    return str(value)


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
        with stop_on_sigterm():
            for step in steps:
                current = step.name
                if on_step is not None:
                    on_step(step)
                journal.line(f"step {step.name} started: {step.description}")
                start = perf_counter()
                step.run(ctx)
                ctx.timings[step.name] = perf_counter() - start
                journal.line(f"step {step.name} finished in {ctx.timings[step.name]:.1f} s")
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
    from dataworth.valuation_steps import CACHE_NAME

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
