"""The commands over a whole run: ``study`` (every step, one run folder), ``evaluate`` (rank
the methods on flipped labels) and ``report`` (rebuild the report of a run folder)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from dataworth.cli.app import filling, progress_bar, reports_errors, run_steps, say_written
from dataworth.cli.console import console
from dataworth.cli.options import (
    DATA_PANEL,
    MODEL_PANEL,
    OUTPUT_PANEL,
    VALUATION_PANEL,
    BaselinesOpt,
    BudgetOpt,
    ByOpt,
    ConfigOpt,
    EstimatorsOpt,
    EvalSubsetsOpt,
    ExactRowsOpt,
    FractionsOpt,
    MethodsOpt,
    NeighboursOpt,
    OutOpt,
    OverwriteOpt,
    PermutationsOpt,
    PointsOpt,
    StablePermutationsOpt,
    StableShareOpt,
    TolOpt,
    build_config,
    config_options,
)
from dataworth.cli.render import (
    show_ame,
    show_baseline,
    show_budget,
    show_cost,
    show_data,
    show_evaluation,
    show_groups,
    show_loo,
    show_tmc,
    show_written,
)
from dataworth.cli.shared import (
    DATA,
    ENGINE,
    MODEL,
    DataOptions,
    EngineOptions,
    ModelOptions,
    shares_options,
)
from dataworth.errors import DataworthError
from dataworth.study.config import StudyConfig


@reports_errors
@shares_options()
def study(
    config_path: ConfigOpt = None,
    data: DataOptions = DATA,
    primary: ModelOptions = MODEL,
    baselines: BaselinesOpt = None,
    budget: BudgetOpt = None,
    points: PointsOpt = None,
    fractions: FractionsOpt = None,
    by: ByOpt = None,
    permutations: PermutationsOpt = None,
    tol: TolOpt = None,
    stable_share: StableShareOpt = None,
    stable_permutations: StablePermutationsOpt = None,
    engine: EngineOptions = ENGINE,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """The folder holds JSON and CSV results, figures, a summary and the study.toml that repeats
    the run with `dataworth study --config FOLDER/study.toml`.
    """
    options = config_options(locals())
    base = StudyConfig.from_toml(config_path) if config_path is not None else None
    config = build_config(base, **options)
    outcome = run_steps(config, None, write=True)
    shows = (show_data, show_baseline, show_cost, show_loo, show_groups, show_tmc, show_ame)
    for show in shows:
        show(outcome.context)
    if "clean" in outcome.context.results:
        from dataworth.cli.clean_command import show_clean

        show_clean(outcome.context)
    show_budget(outcome.context)
    show_written(outcome)


# evaluate's own --flip (on by default: the methods need flipped labels to find) and --metric.
_EVALUATE_FLIP = Annotated[
    float | None,
    typer.Option(
        "--flip",
        help="Share of training labels flipped on purpose, for the methods to find. "
        "[default: 0.1; 0 with --lds]",
        rich_help_panel=DATA_PANEL,
        show_default=False,
    ),
]
_LDS = Annotated[
    bool,
    typer.Option(
        "--lds",
        help="Score attributions of single predictions instead (linear datamodeling score): "
        "ame, influence, gradient_similarity, knn_shapley (or --methods; random too).",
        rich_help_panel=VALUATION_PANEL,
    ),
]
_LDS_MODELS = Annotated[
    int | None,
    typer.Option(
        "--lds-models",
        help="--lds: models trained on random halves of the training rows. [default: 100]; "
        "AME's own subsets: --subsets [default: the same number].",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
_EVALUATE_METRIC = Annotated[
    str | None,
    typer.Option(
        "--metric",
        help="The utility's metric, also that of the removal curves. [default: neg_log_loss]",
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]


# evaluate --task backdoor and its options (dataworth.cli.backdoor_command runs it).
_BACKDOOR_PANEL = "Backdoor experiment (--task backdoor)"
_EVALUATE_TASK = Annotated[
    str,
    typer.Option(
        "--task",
        help="flip: rank the methods on flipped labels; backdoor: the AME paper's backdoor "
        "experiment on the digits (needs the torch extra).",
        rich_help_panel=_BACKDOOR_PANEL,
    ),
]
_PATCH_SIZE = Annotated[
    int | None,
    typer.Option(
        "--patch-size",
        help="Side of the trigger square in the top-left corner. [default: 3]",
        rich_help_panel=_BACKDOOR_PANEL,
        show_default=False,
    ),
]
_POISONS = Annotated[
    int | None,
    typer.Option(
        "--poisons",
        help="Training images patched and relabelled (k). [default: 20]",
        rich_help_panel=_BACKDOOR_PANEL,
        show_default=False,
    ),
]
_QUERIES = Annotated[
    int | None,
    typer.Option(
        "--queries",
        help="Patched test images explained, one LASSO each. [default: 20]",
        rich_help_panel=_BACKDOOR_PANEL,
        show_default=False,
    ),
]
_GRID = Annotated[
    str | None,
    typer.Option(
        "--grid",
        help="Factors c of m = c k log2(N) subsets. [default: 1,2,4,8]",
        rich_help_panel=_BACKDOOR_PANEL,
        show_default=False,
    ),
]


@reports_errors
@shares_options(flip=(_EVALUATE_FLIP, None), metric=(_EVALUATE_METRIC, None))
def evaluate(
    data: DataOptions = DATA,
    primary: ModelOptions = MODEL,
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
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    lds: _LDS = False,
    lds_models: _LDS_MODELS = None,
    task: _EVALUATE_TASK = "flip",
    patch_size: _PATCH_SIZE = None,
    poisons: _POISONS = None,
    queries: _QUERIES = None,
    grid: _GRID = None,
) -> None:
    """Is the valuation any good? Run the methods on one task and rank them.

    Each method values every training row; the table ranks them by how well low values flag the
    flipped labels (ROC AUC, AP, F1 of a two-means split, recall at the bottom 10%), with
    removal-curve areas, wall time and fits. Writes files only when --out is given.
    With --lds: the linear datamodeling score of each method's attributions of single
    predictions (lds.json with --out). With --task backdoor: the AME paper's backdoor experiment
    on the digits (attack check, then each method's precision and recall against the poisons per
    c; backdoor.json).
    """
    if task not in ("flip", "backdoor"):
        raise DataworthError(f"Unknown --task {task!r}; use flip or backdoor.")
    if task == "backdoor":
        from dataworth.cli.backdoor_command import run_backdoor_command

        run_backdoor_command(
            data,
            primary,
            patch_size=patch_size,
            poisons=poisons,
            queries=queries,
            grid=grid,
            out=out,
            overwrite=overwrite,
        )
        return
    data = replace(data, flip=(0.0 if lds else 0.1) if data.flip is None else data.flip)
    if lds:
        from dataworth.cli.lds_command import run_lds

        config = build_config(**config_options({"data": data, "primary": primary}))
        run_lds(
            config,
            methods=methods,
            models=lds_models,
            subsets=subsets,
            out=out,
            overwrite=overwrite,
        )
        return
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
    config = build_config(**config_options({"data": data, "primary": primary}))
    run = RunFolder(out, overwrite=overwrite) if out is not None else None  # refuse early
    with filling(run):
        task = load_task(config)
        options = {
            "permutations": permutations,
            "n_subsets": subsets,
            "n_estimators": estimators,
            "knn_k": neighbours,
        }
        with progress_bar() as progress:
            report = evaluate_methods(
                task,
                names,
                learner=config.model,
                metric=config.metric or "neg_log_loss",
                seed=config.seed,
                device=config.device,
                exact_players=12 if exact_rows is None else (exact_rows or None),
                progress=progress,
                **{k: v for k, v in options.items() if v is not None},
            )
        if run is not None:
            report.save(run.path)
            run.commit()
    show_evaluation(report)
    say_written(run)


@reports_errors
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
