"""The command-line options, declared once and shared by the commands.

Each ``...Opt`` is an annotated type: a command lists ``dataset: DatasetOpt = None`` and
typer reads the flag, its help and its panel from it. ``None`` means "not given": the
:class:`~dataworth.study.config.StudyConfig` (or a ``--config`` file) decides.
:func:`build_config` turns the values into a checked configuration.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from dataworth.methods.registry import REGISTRY, config_names
from dataworth.study.config import StudyConfig

DATA_PANEL = "Data"
MODEL_PANEL = "Model and metric"
OUTPUT_PANEL = "Output"

DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Built-in dataset (see `dataworth datasets`). [default: breast_cancer]",
        rich_help_panel=DATA_PANEL,
        show_default=False,
    ),
]
CsvOpt = Annotated[
    Path | None,
    typer.Option(
        "--csv",
        help="A CSV file of your own rows (with --target).",
        rich_help_panel=DATA_PANEL,
    ),
]
ParquetOpt = Annotated[
    Path | None,
    typer.Option(
        "--parquet",
        help="A Parquet file of your own rows (with --target).",
        rich_help_panel=DATA_PANEL,
    ),
]
ImagesOpt = Annotated[
    Path | None,
    typer.Option(
        "--images",
        help="A folder of images, one subfolder per class (read with Pillow).",
        rich_help_panel=DATA_PANEL,
    ),
]
ImageSizeOpt = Annotated[
    int | None,
    typer.Option(
        "--image-size",
        help="Side in pixels of the square the --images are resized to. [default: 28]",
        rich_help_panel=DATA_PANEL,
        show_default=False,
    ),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target", help="The label column of --csv/--parquet.", rich_help_panel=DATA_PANEL
    ),
]
RowsOpt = Annotated[
    int | None,
    typer.Option(
        "--rows",
        help="Use a stratified random sample of N source rows.",
        rich_help_panel=DATA_PANEL,
    ),
]
TrainSizeOpt = Annotated[
    str | None,
    typer.Option(
        "--train-size",
        help="Training rows: a count (400) or a fraction (0.7). [default: 0.7]",
        rich_help_panel=DATA_PANEL,
        show_default=False,
    ),
]
SplitOpt = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="random (stratified), time:COLUMN or group:COLUMN. [default: random]",
        rich_help_panel=DATA_PANEL,
        show_default=False,
    ),
]
FlipOpt = Annotated[
    float | None,
    typer.Option(
        "--flip",
        help="Share of training labels to flip on purpose (experiments).",
        rich_help_panel=DATA_PANEL,
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="The one seed of every random choice. [default: 0]",
        rich_help_panel=DATA_PANEL,
        show_default=False,
    ),
]
DropOpt = Annotated[
    str | None,
    typer.Option(
        "--drop",
        help="Comma-separated columns to remove before anything else (an id, a column that "
        "restates the label).",
        rich_help_panel=DATA_PANEL,
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Stop with exit code 2 when a data check finds a problem, instead of warning.",
        rich_help_panel=DATA_PANEL,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Primary model: reported in detail and refitted by valuation; mlp and cnn are "
        "PyTorch networks (the torch extra). [default: logreg]",
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="Where --model mlp|cnn trains: auto (CUDA when available), cpu or cuda. "
        "[default: auto]",
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]
MetricOpt = Annotated[
    str | None,
    typer.Option(
        "--metric",
        help="Primary metric; by default chosen from the data and justified.",
        rich_help_panel=MODEL_PANEL,
    ),
]
BaselinesOpt = Annotated[
    str | None,
    typer.Option(
        "--baselines",
        help="Comma-separated baseline models [default: all available].",
        rich_help_panel=MODEL_PANEL,
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
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Run folder to write [default: runs/<dataset>-<timestamp>].",
        rich_help_panel=OUTPUT_PANEL,
        show_default=False,
    ),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace an existing --out folder instead of refusing.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
VALUATION_PANEL = "Valuation"
ENGINE_PANEL = "Engine"

PointsOpt = Annotated[
    str | None,
    typer.Option(
        "--points",
        help="How many random training points to value (drawn with --seed), or all. [default: 10]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
IdsOpt = Annotated[
    str | None,
    typer.Option(
        "--ids",
        help="Comma-separated ids of training rows to value instead of random points.",
        rich_help_panel=VALUATION_PANEL,
    ),
]
FractionsOpt = Annotated[
    str | None,
    typer.Option(
        "--fractions",
        help="Sizes of random groups as shares of the training set. [default: 0.1,0.2,...,1.0]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
ByOpt = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="Groups: random (of --fractions), label, feature:NAME, cluster:K or column:NAME. "
        "[default: random]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
PermutationsOpt = Annotated[
    int | None,
    typer.Option(
        "--permutations",
        help="TMC-Shapley permutations. [default: 10]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
StableShareOpt = Annotated[
    float | None,
    typer.Option(
        "--stable-share",
        help="Share of the budget for TMC continued until its top and bottom 10 are stable "
        "(0: off). [default: 0.1]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
StablePermutationsOpt = Annotated[
    int | None,
    typer.Option(
        "--stable-permutations",
        help="Most permutations of that run. [default: 200]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
TolOpt = Annotated[
    float | None,
    typer.Option(
        "--tol",
        help="TMC truncation tolerance, relative to |U(D)|. [default: 0.01]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
PlayersOpt = Annotated[
    str | None,
    typer.Option(
        "--players",
        help="Who gets Shapley values: points, groups or both. [default: both]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
TargetAmeOpt = Annotated[
    str | None,
    typer.Option(
        "--explain",
        help="What AME explains: metric, test:ID[,ID...] (single predictions by test-row id) "
        "or all-test. [default: metric]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
SubsetsOpt = Annotated[
    int | None,
    typer.Option(
        "--subsets",
        help="AME: number of random subsets m (one fit each). [default: 4000]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
KOpt = Annotated[
    int | None,
    typer.Option(
        "--k",
        help="AME: assumed number of influential points; sets m = 8 k log2(n).",
        rich_help_panel=VALUATION_PANEL,
    ),
]
FdrOpt = Annotated[
    float | None,
    typer.Option(
        "--fdr",
        help="AME: target false discovery rate of the Knockoff selection. [default: 0.1]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
NeighboursOpt = Annotated[
    int | None,
    typer.Option(
        "--neighbours",
        help="KNN-Shapley: k. [default: 10]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
EstimatorsOpt = Annotated[
    int | None,
    typer.Option(
        "--estimators",
        help="Data-OOB: bootstrap models. [default: 200]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
AlphaOpt = Annotated[
    float | None,
    typer.Option(
        "--alpha",
        help="Beta Shapley alpha. [default: 4]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
BetaOpt = Annotated[
    float | None,
    typer.Option(
        "--beta",
        help="Beta Shapley beta. [default: 1]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
InfluenceMethodOpt = Annotated[
    str | None,
    typer.Option(
        "--method",
        help="first_order (Koh and Liang) or newton (one Newton step per "
        "point, closer to exact LOO). [default: first_order]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Where fits run: serial, processes or dask. [default: serial]",
        rich_help_panel=ENGINE_PANEL,
        show_default=False,
    ),
]
NJobsOpt = Annotated[
    int | None,
    typer.Option(
        "--n-jobs",
        help="Workers for processes or dask. [default: all cores]",
        rich_help_panel=ENGINE_PANEL,
        show_default=False,
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Address of a running Dask scheduler (tcp://HOST:PORT).",
        rich_help_panel=ENGINE_PANEL,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="A study.toml (e.g. from a run folder); other options given here override it.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]


MethodsOpt = Annotated[
    str | None,
    typer.Option(
        "--methods",
        help="Comma-separated methods to evaluate: "
        + ", ".join(spec.name for spec in REGISTRY if spec.evaluate is not None)
        + ". [default: all]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
EvalSubsetsOpt = Annotated[
    int | None,
    typer.Option(
        "--subsets",
        help="Subsets of Banzhaf, AME, AME-Shapley and Beta Shapley. [default: 2000]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
    ),
]
ExactRowsOpt = Annotated[
    int | None,
    typer.Option(
        "--exact-rows",
        help="Rows of the tiny task compared with exact Shapley (0 skips it). [default: 12]",
        rich_help_panel=VALUATION_PANEL,
        show_default=False,
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
    for key in ("csv", "parquet", "images", "out"):
        if options.get(key) is not None:
            options[key] = str(options[key])
    if options.get("overwrite") is False:
        options["overwrite"] = None  # a flag left off must not undo `overwrite = true` in a file
    if options.get("strict") is False:
        options["strict"] = None  # likewise for `strict = true`
    options["budget_seconds"] = options.pop("budget", None)
    # Command-line names of the valuation options -> StudyConfig fields, as the method registry
    # traces each option from its flag to the method's argument.
    for flag, name in config_names().items():
        if flag in options:
            options[name] = options.pop(flag)
    if options.get("scheduler") is not None and options.get("backend") is None:
        options["backend"] = "dask"  # a scheduler address only makes sense with Dask
    # `updated` builds a new StudyConfig, so the merged values are validated again.
    config = (base or StudyConfig()).updated(**options)
    for name in [config.model, *(config.baselines or [])]:
        # The registry's one-line error for an unknown name, or a network without PyTorch.
        make_estimator(name, device=config.device)
    if config.metric is not None:
        get_metric(config.metric)
    return config


def config_options(values: dict[str, Any]) -> dict[str, Any]:
    """The command's option values, without the ones that are not StudyConfig options.

    A group of shared options (a :class:`~dataworth.cli.shared.DataOptions`, for instance)
    is unpacked into its options.
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if is_dataclass(value) and not isinstance(value, type):
            out.update({f.name: getattr(value, f.name) for f in fields(value)})
        elif key != "config_path":
            out[key] = value
    return out
