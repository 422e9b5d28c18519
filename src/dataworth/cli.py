"""The ``dataworth`` command line: a thin layer over :mod:`dataworth.study`.

Commands: ``datasets``, ``baseline``, ``plan`` and ``study``. Bad input anywhere raises
:class:`~dataworth.errors.DataworthError`; the CLI prints its one-line message after a red
``error:`` and exits with code 2, never with a traceback.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from dataworth.errors import DataworthError
from dataworth.study.config import StudyConfig

app = typer.Typer(
    name="dataworth",
    help="Which training points and groups are responsible for a classifier's performance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

# --- options shared by the commands (defined once; None means "not given") --------------------

_DATA = "Data"
_MODEL = "Model and metric"
_OUTPUT = "Output"

DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Built-in dataset (see `dataworth datasets`). [default: breast_cancer]",
        rich_help_panel=_DATA,
        show_default=False,
    ),
]
CsvOpt = Annotated[
    Path | None,
    typer.Option(
        "--csv",
        help="A CSV file of your own rows (with --target).",
        rich_help_panel=_DATA,
    ),
]
ParquetOpt = Annotated[
    Path | None,
    typer.Option(
        "--parquet",
        help="A Parquet file of your own rows (with --target).",
        rich_help_panel=_DATA,
    ),
]
TargetOpt = Annotated[
    str | None,
    typer.Option("--target", help="The label column of --csv/--parquet.", rich_help_panel=_DATA),
]
RowsOpt = Annotated[
    int | None,
    typer.Option(
        "--rows",
        help="Use a stratified random sample of N source rows.",
        rich_help_panel=_DATA,
    ),
]
TrainSizeOpt = Annotated[
    str | None,
    typer.Option(
        "--train-size",
        help="Training rows: a count (400) or a fraction (0.7). [default: 0.7]",
        rich_help_panel=_DATA,
        show_default=False,
    ),
]
SplitOpt = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="random (stratified), time:COLUMN or group:COLUMN. [default: random]",
        rich_help_panel=_DATA,
        show_default=False,
    ),
]
FlipOpt = Annotated[
    float | None,
    typer.Option(
        "--flip",
        help="Share of training labels to flip on purpose (experiments).",
        rich_help_panel=_DATA,
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="The one seed of every random choice. [default: 0]",
        rich_help_panel=_DATA,
        show_default=False,
    ),
]
DropOpt = Annotated[
    str | None,
    typer.Option(
        "--drop",
        help="Comma-separated columns to remove before anything else (an id, a column that "
        "restates the label).",
        rich_help_panel=_DATA,
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Stop with exit code 2 when a data check finds a problem, instead of warning.",
        rich_help_panel=_DATA,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Primary model: reported in detail and refitted by valuation. [default: logreg]",
        rich_help_panel=_MODEL,
        show_default=False,
    ),
]
MetricOpt = Annotated[
    str | None,
    typer.Option(
        "--metric",
        help="Primary metric; by default chosen from the data and justified.",
        rich_help_panel=_MODEL,
    ),
]
BaselinesOpt = Annotated[
    str | None,
    typer.Option(
        "--baselines",
        help="Comma-separated baseline models [default: all available].",
        rich_help_panel=_MODEL,
        show_default=False,
    ),
]
BudgetOpt = Annotated[
    str | None,
    typer.Option(
        "--budget",
        help="Time the whole study may take: 600, 90s, 10m or 1h. Methods that grow gently "
        "with the rows value every row when they fit; TMC and AME stop at their share; the "
        "plan also checks each method alone. [default: 10m]",
        rich_help_panel=_MODEL,
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Run folder to write [default: runs/<dataset>-<timestamp>].",
        rich_help_panel=_OUTPUT,
        show_default=False,
    ),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace an existing --out folder instead of refusing.",
        rich_help_panel=_OUTPUT,
    ),
]
_VALUATION = "Valuation"
_ENGINE = "Engine"

PointsOpt = Annotated[
    str | None,
    typer.Option(
        "--points",
        help="How many random training points to value (drawn with --seed), or all. [default: 10]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
IdsOpt = Annotated[
    str | None,
    typer.Option(
        "--ids",
        help="Comma-separated ids of training rows to value instead of random points.",
        rich_help_panel=_VALUATION,
    ),
]
FractionsOpt = Annotated[
    str | None,
    typer.Option(
        "--fractions",
        help="Sizes of random groups as shares of the training set. [default: 0.1,0.2,...,1.0]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
ByOpt = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="Groups: random (of --fractions), label, feature:NAME, cluster:K or column:NAME. "
        "[default: random]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
PermutationsOpt = Annotated[
    int | None,
    typer.Option(
        "--permutations",
        help="TMC-Shapley permutations. [default: 10]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
StableShareOpt = Annotated[
    float | None,
    typer.Option(
        "--stable-share",
        help="Share of the budget for TMC continued until its top and bottom 10 are stable "
        "(0: off). [default: 0.1]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
StablePermutationsOpt = Annotated[
    int | None,
    typer.Option(
        "--stable-permutations",
        help="Most permutations of that run. [default: 500]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
TolOpt = Annotated[
    float | None,
    typer.Option(
        "--tol",
        help="TMC truncation tolerance, relative to |U(D)|. [default: 0.01]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
PlayersOpt = Annotated[
    str | None,
    typer.Option(
        "--players",
        help="Who gets Shapley values: points, groups or both. [default: both]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
TargetAmeOpt = Annotated[
    str | None,
    typer.Option(
        "--explain",
        help="What AME explains: metric, test:ID[,ID...] (single predictions by test-row id) "
        "or all-test. [default: metric]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
SubsetsOpt = Annotated[
    int | None,
    typer.Option(
        "--subsets",
        help="AME: number of random subsets m (one fit each). [default: 4000]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
KOpt = Annotated[
    int | None,
    typer.Option(
        "--k",
        help="AME: assumed number of influential points; sets m = 8 k log2(n).",
        rich_help_panel=_VALUATION,
    ),
]
FdrOpt = Annotated[
    float | None,
    typer.Option(
        "--fdr",
        help="AME: target false discovery rate of the Knockoff selection. [default: 0.1]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
NeighboursOpt = Annotated[
    int | None,
    typer.Option(
        "--neighbours",
        help="KNN-Shapley: k. [default: 10]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
EstimatorsOpt = Annotated[
    int | None,
    typer.Option(
        "--estimators",
        help="Data-OOB: bootstrap models. [default: 200]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
AlphaOpt = Annotated[
    float | None,
    typer.Option(
        "--alpha",
        help="Beta Shapley alpha. [default: 4]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
BetaOpt = Annotated[
    float | None,
    typer.Option(
        "--beta",
        help="Beta Shapley beta. [default: 1]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
InfluenceMethodOpt = Annotated[
    str | None,
    typer.Option(
        "--method",
        help="first_order (Koh and Liang) or newton (one Newton step per "
        "point, closer to exact LOO). [default: first_order]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Where fits run: serial, processes or dask. [default: serial]",
        rich_help_panel=_ENGINE,
        show_default=False,
    ),
]
NJobsOpt = Annotated[
    int | None,
    typer.Option(
        "--n-jobs",
        help="Workers for processes or dask. [default: all cores]",
        rich_help_panel=_ENGINE,
        show_default=False,
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Address of a running Dask scheduler (tcp://HOST:PORT).",
        rich_help_panel=_ENGINE,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="A study.toml (e.g. from a run folder); other options given here override it.",
        rich_help_panel=_OUTPUT,
    ),
]


def build_config(base: StudyConfig | None = None, **options: Any) -> StudyConfig:
    """A StudyConfig from command-line options over ``base`` (options left as None keep it).

    Model and metric names are checked here, so a misspelling fails before any data is read.
    """
    from dataworth.learners.registry import make_estimator
    from dataworth.metrics import get_metric

    if options.get("baselines") is not None:
        options["baselines"] = [m.strip() for m in options["baselines"].split(",") if m.strip()]
    for key in ("csv", "parquet", "out"):
        if options.get(key) is not None:
            options[key] = str(options[key])
    if options.get("overwrite") is False:
        options["overwrite"] = None  # a flag left off must not undo `overwrite = true` in a file
    if options.get("strict") is False:
        options["strict"] = None  # likewise for `strict = true`
    options["budget_seconds"] = options.pop("budget", None)
    # Command-line names of the valuation options -> StudyConfig fields.
    for flag, name in (
        ("points", "loo_points"),
        ("ids", "loo_ids"),
        ("fractions", "group_fractions"),
        ("by", "group_by"),
        ("tol", "tmc_tol"),
        ("players", "tmc_players"),
        ("subsets", "ame_subsets"),
        ("k", "ame_k"),
        ("fdr", "ame_fdr"),
        ("explain", "ame_target"),
        ("neighbours", "knn_k"),
        ("estimators", "oob_estimators"),
        ("alpha", "beta_alpha"),
        ("beta", "beta_beta"),
        ("method", "influence_method"),
    ):
        if flag in options:
            options[name] = options.pop(flag)
    if options.get("scheduler") is not None and options.get("backend") is None:
        options["backend"] = "dask"  # a scheduler address only makes sense with Dask
    # `updated` builds a new StudyConfig, so the merged values are validated again.
    config = (base or StudyConfig()).updated(**options)
    for name in [config.model, *(config.baselines or [])]:
        make_estimator(name)  # raises the registry's one-line error for an unknown name
    if config.metric is not None:
        get_metric(config.metric)
    return config


def _reports_errors(command: Callable) -> Callable:
    """Turn a DataworthError into one red line and exit code 2 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _data_check_warnings():
                return command(*args, **kwargs)
        except DataworthError as error:
            print_error(error)
            raise typer.Exit(code=2) from None
        except (KeyboardInterrupt, MemoryError) as error:
            _print_stopped(error)
            raise typer.Exit(code=_stop_code(error)) from None

    return wrapper


def _print_stopped(error: BaseException) -> None:
    """One line for a stopped run: why, where its partial folder is, and how to resume."""
    from dataworth.study.log import stop_reason

    partial = getattr(error, "partial_path", None)
    where = f"; what finished is in {partial} (see its study.log)" if partial else ""
    print_error(
        f"stopped, {stop_reason(error)}{where}; run the same command again to resume: "
        "finished fits are stored and are not refitted."
    )


def _stop_code(error: BaseException) -> int:
    from dataworth.study.log import StudyStopped

    if isinstance(error, StudyStopped):
        return 143  # the shell's code for a process ended by SIGTERM
    return 130 if isinstance(error, KeyboardInterrupt) else 1


def print_error(error: BaseException) -> None:
    """One line on stderr: a red ``error:`` and the message (never wrapped, never markup)."""
    message = " ".join(str(error).split())  # collapse stray newlines: one line, always
    err_console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


@contextmanager
def _data_check_warnings() -> Iterator[None]:
    """Show each data check's warning as one yellow ``warning:`` line on stderr."""
    from dataworth.data.checks import DataCheckWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", DataCheckWarning)
        show_other = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if not issubclass(category, DataCheckWarning):
                show_other(message, category, filename, lineno, file, line)
                return
            text = " ".join(str(message).split())
            err_console.print(Text.assemble(("warning: ", "bold yellow"), text), soft_wrap=True)

        warnings.showwarning = show  # catch_warnings puts the original back
        yield


@contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """Progress on stderr; yields the ``progress(description, done, total)`` callback.

    A live rich bar on a terminal. When stderr is not a terminal (piped, or written to a file),
    flushed lines instead (see :mod:`dataworth.study.progress_lines`), so a person reading the file
    sees the run advance.
    """
    if not err_console.is_terminal:
        from dataworth.study.progress_lines import ProgressLines

        with ProgressLines(sys.stderr) as lines:
            yield lines
        return
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        task_id = progress.add_task("starting", total=None)

        def update(description: str, done: int, total: int) -> None:
            progress.update(task_id, description=description, completed=done, total=total)

        update.log = lambda message: progress.console.print(  # type: ignore[attr-defined]
            message, highlight=False, markup=False
        )
        yield update


def _run(config: StudyConfig, step_names: tuple[str, ...] | None, write: bool):
    from dataworth.study import DEFAULT_STEPS, run_study, steps_named

    steps = DEFAULT_STEPS if step_names is None else steps_named(*step_names)
    with _progress_bar() as progress:
        log = getattr(progress, "log", None)
        on_step = getattr(progress, "on_step", None)
        return run_study(
            config, steps=steps, write=write, progress=progress, log=log, on_step=on_step
        )


# --- rendering -----------------------------------------------------------------------------------


def _frame_table(frame: pd.DataFrame, title: str, digits: int = 4) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    frame = frame.reset_index() if frame.index.name is not None else frame
    for i, column in enumerate(frame.columns):
        # The first column names the row (a model, a method): left-aligned and never cut;
        # the others hold numbers, or flags and text short enough to align right too.
        table.add_column(str(column), justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v, digits) for v in row])
    return table


def _cell(value: Any, digits: int) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def _show_data(ctx) -> None:
    data = ctx.results.get("data")
    if not data:
        return
    console.print(
        f"[bold]Data:[/bold] {data['name']} ({data['n_train']} training rows, "
        f"{data['n_test']} test rows)"
    )
    for line in data["summary"]:
        console.print(f"  {line}", highlight=False)
    for finding in data.get("checks", []):
        if finding["severity"] == "info":
            console.print(f"  note: {finding['message']}", highlight=False, markup=False)


def _show_baseline(ctx) -> None:
    result = ctx.results.get("baseline")
    if result is None:
        return
    table = result.metrics.drop(columns=["n_timed", "predict_seconds"], errors="ignore")
    # Short headers keep all seven columns readable in an 80-column terminal.
    table = table.rename(
        columns={
            "accuracy": "acc.",
            "balanced_accuracy": "bal. acc.",
            "roc_auc": "AUROC",
            "f1": "F1",
            "neg_log_loss": "-log loss",
            "neg_brier": "-Brier",
            "fit_seconds": "fit s",
        }
    )
    table["fit s"] = [f"{s:.2g}" for s in table["fit s"]]
    console.print(_frame_table(table, "Baseline models on the test set (higher is better)", 3))
    console.print(
        _frame_table(
            result.confusion.rename_axis(index="true \\ predicted"),
            f"Confusion matrix: {result.primary_model}",
        )
    )
    title = f"Primary metric: {result.metric.name} ({result.metric.chosen_by})"
    console.print(Panel(result.metric.justification, title=title, title_align="left"))


def _show_cost(ctx) -> None:
    cost, plan = ctx.results.get("cost"), ctx.results.get("plan")
    if cost is None:
        return
    times = cost.fit_times.pivot_table(index="model", columns="rows", values="seconds", sort=False)
    times.columns = [f"{c} rows" for c in times.columns]
    times.index.name = "model"
    console.print(_frame_table(times, "Median fit time (seconds)"))
    for note in cost.notes:
        console.print(f"  note: {note}", highlight=False)
    if cost.utility is not None:
        u = cost.utility
        console.print(
            f"  engine: {u['subsets']} subsets of {u['rows']} rows in "
            f"{u['seconds_total']:.3f} s ({u['seconds_per_subset']:.4f} s per subset, "
            f"learner {u['learner']}, metric {u['metric']})",
            highlight=False,
        )
    elif cost.utility_note:
        console.print(f"  engine: {cost.utility_note}", highlight=False)
    if plan is not None:
        # Long notes would squeeze the table in an 80-column terminal: show them as footnotes.
        shown = pd.DataFrame(
            {
                "method": [f"{m} [{i + 1}]" for i, m in enumerate(plan["method"])],
                "fits": plan["fits"],
                "est. seconds": [f"{x:.3g}" for x in plan["estimated_seconds"]],
                "feasible": plan["feasible"],
                "suggested rows": plan["suggested_rows"],
            }
        )
        title = f"Valuation plan (budget {ctx.config.budget_seconds:g} s per method)"
        console.print(_frame_table(shown, title, digits=1))
        for i, note in enumerate(plan["note"]):
            console.print(f"  [{i + 1}] {note}", highlight=False, markup=False)


def _show_loo(ctx) -> None:
    table = ctx.results.get("loo_table")
    if table is None:
        return
    result = ctx.results["loo"]
    from dataworth.study.steps import LOO_SHOWN

    shown = table[list(LOO_SHOWN)].rename(
        columns={
            "player_id": "id",
            "value": "LOO",
            "neighbour_agreement": "nbr agree",
            "own_label_proba": "p(own)",
            "outlier_rank": "outlier rank",
        }
    )
    title = (
        f"Exact LOO influence on {result.manifest['metric']} "
        f"(U(D) = {result.manifest['full_score']:.4g}; {result.n_fitted} fits)"
    )
    console.print(_frame_table(shown.sort_values("LOO", ascending=False), title))
    for line in ctx.results["loo_summary"]:
        console.print(f"  {line}", highlight=False, markup=False)


def _show_groups(ctx) -> None:
    result = ctx.results.get("lgo")
    if result is None:
        return
    frame = result.to_frame()[["player_id", "size", "fraction", "value"]]
    title = f"Leave-group-out influence on {result.manifest['metric']}"
    console.print(_frame_table(frame.rename(columns={"player_id": "group"}), title))


def _show_tmc(ctx) -> None:
    from dataworth.study.summary import comparison_sentence

    points = ctx.results.get("tmc")
    if points is not None:
        frame = points.to_frame()[["player_id", "value", "stderr"]]
        frame = frame.sort_values("value", ascending=False)
        shown = pd.concat([frame.head(5), frame.tail(5)]) if len(frame) > 10 else frame
        full, empty = points.manifest["full_value"], points.manifest["empty_value"]
        title = f"TMC-Shapley, {points.params['permutations']} permutations"
        console.print(_frame_table(shown.rename(columns={"player_id": "id"}), title))
        console.print(
            f"  sum of the values {points.values.sum():.4g}; U(D) - U(empty) = {full - empty:.4g}",
            highlight=False,
        )
        console.print(
            f"  {points.n_evaluations} prefixes used, {points.params['truncated_share']:.0%} "
            f"truncated, {points.n_fitted} fits in {points.timings.get('evaluate', 0):.2f} s",
            highlight=False,
        )
    groups = ctx.results.get("tmc_groups")
    if groups is not None:
        frame = groups.to_frame()
        columns = [
            c
            for c in ("player_id", "size", "value", "stderr", "exact_value", "sum_of_point_values")
            if c in frame
        ]
        console.print(
            _frame_table(
                frame[columns].rename(columns={"player_id": "group"}),
                "TMC-Shapley values of the groups",
            )
        )
    comparison = ctx.results.get("shapley_vs_loo")
    if comparison is not None:
        console.print(f"  {comparison_sentence(comparison)}", highlight=False)
    stable = ctx.results.get("tmc_stable_summary")
    if stable is not None:
        console.print(
            f"  Continued to {stable['permutations']} permutations ({stable['stopped_by']}). "
            + stable.get("stability", {}).get("verdict", ""),
            highlight=False,
        )


def _show_ame(ctx) -> None:
    from dataworth.methods.ame_scale import ame_plan_lines
    from dataworth.study.steps import ame_table

    shown = list(ctx.results.get("ame", {}).values())
    for line in ame_plan_lines(shown[0]) if shown else []:
        console.print(line)  # which estimator ran (flat or hierarchical) and why
    for result in ctx.results.get("ame", {}).values():
        test_id = result.params.get("test_id")
        what = f"test row {test_id} (label {result.params['test_label']})" if test_id else "metric"
        selected = result.extra.get("selected")
        n_selected = int(np.sum(selected)) if selected is not None else 0
        title = (
            f"AME on the {what}: {result.params['n_subsets']} subsets, "
            f"{n_selected} selected at FDR {result.params.get('fdr')}"
        )
        console.print(_frame_table(ame_table(result).rename(columns={"player_id": "id"}), title))


def _show_method(ctx) -> None:
    for name, result in ctx.results.get("methods", {}).items():
        frame = result.to_frame()
        columns = [c for c in ("player_id", "value", "stderr") if frame[c].notna().any()]
        frame = frame[columns].sort_values("value", ascending=False)
        shown = pd.concat([frame.head(5), frame.tail(5)]) if len(frame) > 10 else frame
        title = f"{name}: highest and lowest values ({len(frame)} points)"
        console.print(_frame_table(shown.rename(columns={"player_id": "id"}), title))
        seconds = sum(result.timings.values())
        console.print(f"  {result.n_fitted} fits, {seconds:.2f} s", highlight=False)


def _show_budget(ctx) -> None:
    budget = ctx.results.get("budget")
    if budget is None:
        return
    from dataworth.report.budget_table import budget_frame, budget_sentence

    frame = budget_frame(budget).rename(
        columns={
            "estimated_seconds": "est. s",
            "allotted_seconds": "allotted s",
            "actual_seconds": "actual s",
        }
    )
    console.print(_frame_table(frame, "Budget: estimate against actual", digits=2))
    console.print(f"  {budget_sentence(budget)}", highlight=False, markup=False)


def _show_written(outcome) -> None:
    if outcome.path is not None:
        console.print(f"[bold green]Wrote[/bold green] {outcome.path}", highlight=False)


# --- commands ------------------------------------------------------------------------------------


@app.command()
@_reports_errors
def datasets() -> None:
    """List the built-in datasets."""
    from dataworth.data import list_datasets

    console.print(_frame_table(list_datasets().set_index("name"), "Built-in datasets"))


@app.command()
@_reports_errors
def baseline(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    baselines: BaselinesOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Fit the baseline models; show metrics, the confusion matrix and the primary metric.

    Writes a run folder only when --out is given.
    """
    config = build_config(**_options(locals()))
    outcome = _run(config, ("data", "baseline", "summary"), write=out is not None)
    _show_data(outcome.context)
    _show_baseline(outcome.context)
    _show_written(outcome)


@app.command()
@_reports_errors
def plan(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    baselines: BaselinesOpt = None,
    budget: BudgetOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Time the models and estimate what each valuation method would cost.

    Writes a run folder only when --out is given.
    """
    config = build_config(**_options(locals()))
    outcome = _run(config, ("data", "cost", "summary"), write=out is not None)
    _show_data(outcome.context)
    _show_cost(outcome.context)
    _show_written(outcome)


@app.command()
@_reports_errors
def study(
    config_path: ConfigOpt = None,
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    baselines: BaselinesOpt = None,
    budget: BudgetOpt = None,
    points: PointsOpt = None,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    permutations: PermutationsOpt = None,
    tol: TolOpt = None,
    stable_share: StableShareOpt = None,
    stable_permutations: StablePermutationsOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run the whole study (data, baseline, cost, LOO, groups, TMC-Shapley); write a run folder.

    The folder holds JSON and CSV results, figures, a summary and the study.toml that repeats
    the run with `dataworth study --config FOLDER/study.toml`.
    """
    options = _options(locals())
    base = StudyConfig.from_toml(config_path) if config_path is not None else None
    config = build_config(base, **options)
    outcome = _run(config, None, write=True)
    shows = (_show_data, _show_baseline, _show_cost, _show_loo, _show_groups, _show_tmc, _show_ame)
    for show in shows:
        show(outcome.context)
    _show_budget(outcome.context)
    _show_written(outcome)


@app.command()
@_reports_errors
def loo(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    points: PointsOpt = None,
    ids: IdsOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Exact leave-one-out influence of chosen or random points, with diagnostics.

    Writes a run folder only when --out is given.
    """
    config = build_config(**_options(locals()))
    outcome = _run(config, ("data", "loo", "summary"), write=out is not None)
    _show_loo(outcome.context)
    _show_written(outcome)


@app.command()
@_reports_errors
def groups(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Exact leave-group-out influence of groups of different sizes.

    Writes a run folder (with the group-size plot) only when --out is given.
    """
    config = build_config(**_options(locals()))
    outcome = _run(config, ("data", "groups", "summary"), write=out is not None)
    _show_groups(outcome.context)
    _show_written(outcome)


@app.command()
@_reports_errors
def tmc(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    permutations: PermutationsOpt = None,
    tol: TolOpt = None,
    players: PlayersOpt = None,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Truncated Monte Carlo Shapley values (Ghorbani and Zou, 2019) of points and/or groups.

    Writes a run folder (values, figures) only when --out is given.
    """
    config = build_config(**_options(locals()))
    outcome = _run(config, ("data", "tmc", "summary"), write=out is not None)
    _show_tmc(outcome.context)
    _show_written(outcome)


@app.command()
@_reports_errors
def ame(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    explain: TargetAmeOpt = None,
    subsets: SubsetsOpt = None,
    k: KOpt = None,
    fdr: FdrOpt = None,
    players: PlayersOpt = None,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """AME (Lin et al., 2022): randomized-subset LASSO values with a Knockoff selection.

    Explains the test metric or single predictions (--explain test:ID). Writes a run folder
    only when --out is given.
    """
    options = _options(locals())
    if options.get("players") is not None:
        options["ame_players"] = options.pop("players")
    options["ame_rows"] = 0  # only what --explain names
    config = build_config(**options)
    outcome = _run(config, ("data", "ame", "summary"), write=out is not None)
    _show_ame(outcome.context)
    _show_written(outcome)


def _run_method(options: dict, step: str) -> None:
    config = build_config(**options)
    outcome = _run(config, ("data", step, "summary"), write=options.get("out") is not None)
    _show_method(outcome.context)
    _show_written(outcome)


@app.command("knn-shapley")
@_reports_errors
def knn_shapley_command(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    neighbours: NeighboursOpt = None,
    explain: TargetAmeOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Exact KNN-Shapley (Jia et al., 2019) in closed form: no model is fitted."""
    _run_method(_options(locals()), "knn_shapley")


@app.command("beta-shapley")
@_reports_errors
def beta_shapley_command(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: MetricOpt = None,
    alpha: AlphaOpt = None,
    beta: BetaOpt = None,
    subsets: SubsetsOpt = None,
    k: KOpt = None,
    backend: BackendOpt = None,
    n_jobs: NJobsOpt = None,
    scheduler: SchedulerOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Beta Shapley (Kwon and Zou, 2022) from random subsets (the AME sampler)."""
    _run_method(_options(locals()), "beta_shapley")


@app.command("data-oob")
@_reports_errors
def data_oob_command(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    estimators: EstimatorsOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Data-OOB (Kwon and Zou, 2023): out-of-bag accuracy of bagged decision trees."""
    _run_method(_options(locals()), "data_oob")


@app.command("influence")
@_reports_errors
def influence_command(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: FlipOpt = None,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    metric: MetricOpt = None,
    explain: TargetAmeOpt = None,
    method: InfluenceMethodOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Influence functions (Koh and Liang, 2017): LOO estimated from one logistic fit."""
    _run_method(_options(locals()), "influence")


MethodsOpt = Annotated[
    str | None,
    typer.Option(
        "--methods",
        help="Comma-separated methods to evaluate: loo, tmc_shapley, banzhaf, ame, ame_shapley, "
        "beta_shapley, knn_shapley, data_oob, influence. [default: all]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
EvalSubsetsOpt = Annotated[
    int | None,
    typer.Option(
        "--subsets",
        help="Subsets of Banzhaf, AME, AME-Shapley and Beta Shapley. [default: 2000]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]
ExactRowsOpt = Annotated[
    int | None,
    typer.Option(
        "--exact-rows",
        help="Rows of the tiny task compared with exact Shapley (0 skips it). [default: 12]",
        rich_help_panel=_VALUATION,
        show_default=False,
    ),
]


def _evaluation_table(frame: pd.DataFrame) -> Table:
    """The ranking in 80 columns: short headers, no vertical rules, three decimals."""
    from rich import box

    table = Table(
        title="Flipped-label detection and removal curves, best AUC first",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    headers = {
        "seconds": "s",
        "fits": "fits",
        "roc_auc": "AUC",
        "average_precision": "AP",
        "f1_two_means": "F1",
        "recall_at_10": "R@10",
        "area_high_first": "hi",
        "area_low_first": "lo",
        "spearman_exact": "rho",
    }
    table.add_column("method", no_wrap=True)
    for header in headers.values():
        table.add_column(header, justify="right", no_wrap=True)
    for name, row in frame.iterrows():
        cells = []
        for column in headers:
            value = row[column]
            if pd.isna(value):
                cells.append("-")
            elif column == "fits":
                cells.append(str(int(value)))
            elif column == "seconds":
                cells.append(f"{value:.2f}" if value < 100 else f"{value:.0f}")
            elif column.startswith("area"):
                cells.append(f"{value:+.3f}")
            else:
                cells.append(f"{value:.3f}")
        table.add_row(str(name), *cells)
    return table


def _show_evaluation(report) -> None:
    info = report.info
    console.print(
        f"[bold]Task:[/bold] {info['task']} ({info['n_train']} training rows, "
        f"{info['n_flipped']} flipped = {info['flip_rate']:.1%}); learner {info['learner']}, "
        f"metric {info['metric']}, seed {info['seed']}",
        highlight=False,
    )
    console.print(_evaluation_table(report.table))
    chance = info["chance"]
    console.print(
        f"  AUC, AP: low values as a score of the {info['n_flipped']} flipped rows (chance 0.5 "
        f"and {chance['average_precision']:.3f}); F1: the lower cluster of a two-means split of "
        "the values; R@10: share of the flipped rows among the lowest 10% (chance 0.1).",
        highlight=False,
    )
    console.print(
        "  hi, lo: area between the removal curve (highest or lowest values removed first, 0 "
        "to 50% of the rows, refitted) and random removal; positive = better than random.",
        highlight=False,
    )
    if info.get("exact_players"):
        console.print(
            f"  rho: Spearman correlation with exact Shapley values on {info['exact_players']} "
            "rows of the same task.",
            highlight=False,
        )
    for name, note in report.table["note"].items():
        if note:
            console.print(f"  {name}: {note}", highlight=False, markup=False)


@app.command()
@_reports_errors
def evaluate(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    parquet: ParquetOpt = None,
    target: TargetOpt = None,
    rows: RowsOpt = None,
    train_size: TrainSizeOpt = None,
    split: SplitOpt = None,
    flip: Annotated[
        float,
        typer.Option(
            "--flip",
            help="Share of training labels flipped on purpose, for the methods to find.",
            rich_help_panel=_DATA,
        ),
    ] = 0.1,
    seed: SeedOpt = None,
    drop: DropOpt = None,
    strict: StrictOpt = False,
    model: ModelOpt = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="The utility's metric, also that of the removal curves. [default: neg_log_loss]",
            rich_help_panel=_MODEL,
            show_default=False,
        ),
    ] = None,
    methods: MethodsOpt = None,
    permutations: PermutationsOpt = None,
    subsets: EvalSubsetsOpt = None,
    estimators: EstimatorsOpt = None,
    neighbours: NeighboursOpt = None,
    exact_rows: ExactRowsOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the table (CSV, Parquet), curves, values and figures.",
            rich_help_panel=_OUTPUT,
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Is the valuation any good? Run the methods on one task and rank them.

    Each method values every training row; the table ranks them by how well low values flag the
    flipped labels (ROC AUC, AP, F1 of a two-means split, recall at the bottom 10%), with
    removal-curve areas, wall time and fits. Writes files only when --out is given.
    """
    from dataworth.evaluate import evaluate_methods
    from dataworth.evaluate.runner import resolve_methods
    from dataworth.study import load_task
    from dataworth.study.runfolder import RunFolder

    names = resolve_methods(methods)  # a misspelt method fails before any data is read
    for flag, number in (
        ("--permutations", permutations),
        ("--subsets", subsets),
        ("--estimators", estimators),
        ("--neighbours", neighbours),
    ):
        if number is not None and number < 1:
            raise DataworthError(f"{flag} must be a positive whole number; got {number}.")
    if exact_rows is not None and exact_rows != 0 and not 2 <= exact_rows <= 14:
        raise DataworthError(
            f"--exact-rows must be 0 (skip) or between 2 and 14; got {exact_rows}."
        )
    config = build_config(
        dataset=dataset,
        csv=csv,
        parquet=parquet,
        target=target,
        rows=rows,
        train_size=train_size,
        split=split,
        flip=flip,
        seed=seed,
        drop=drop,
        strict=strict,
        model=model,
        metric=metric,
    )
    run = RunFolder(out, overwrite=overwrite) if out is not None else None  # refuse early
    try:
        task = load_task(config)
        options = {
            "permutations": permutations,
            "n_subsets": subsets,
            "n_estimators": estimators,
            "knn_k": neighbours,
        }
        with _progress_bar() as progress:
            report = evaluate_methods(
                task,
                names,
                learner=config.model,
                metric=config.metric or "neg_log_loss",
                seed=config.seed,
                exact_players=12 if exact_rows is None else (exact_rows or None),
                progress=progress,
                **{k: v for k, v in options.items() if v is not None},
            )
        if run is not None:
            report.save(run.path)
            run.commit()
    except BaseException:
        if run is not None:
            run.discard()
        raise
    _show_evaluation(report)
    if run is not None:
        console.print(f"[bold green]Wrote[/bold green] {run.target}", highlight=False)


@app.command()
@_reports_errors
def report(
    run_folder: Annotated[
        Path,
        typer.Argument(help="A run folder written by `dataworth study`.", show_default=False),
    ],
) -> None:
    """Rebuild report.html and report.md of a run folder from its stored results.

    Nothing is refitted: the report reads only the files the study saved.
    """
    from dataworth.report.build import build_report

    html, markdown = build_report(run_folder)
    console.print(f"[bold green]Wrote[/bold green] {html} and {markdown}", highlight=False)


def _options(values: dict[str, Any]) -> dict[str, Any]:
    """The command's option values, without the ones that are not StudyConfig options."""
    return {k: v for k, v in values.items() if k != "config_path"}


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app; bad input exits 2 with one line, no traceback."""
    try:
        app(args=argv, prog_name="dataworth")
    except DataworthError as error:  # raised outside a command body, e.g. while parsing options
        print_error(error)
        sys.exit(2)


if __name__ == "__main__":
    main()
