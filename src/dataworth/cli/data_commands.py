"""The commands that look at the data before any valuation: ``datasets``, ``baseline``, ``plan``."""

from __future__ import annotations

from dataworth.cli.app import reports_errors, run_steps
from dataworth.cli.console import console
from dataworth.cli.options import (
    BaselinesOpt,
    BudgetOpt,
    CsvOpt,
    DatasetOpt,
    DropOpt,
    FlipOpt,
    MetricOpt,
    ModelOpt,
    OutOpt,
    OverwriteOpt,
    ParquetOpt,
    RowsOpt,
    SeedOpt,
    SplitOpt,
    StrictOpt,
    TargetOpt,
    TrainSizeOpt,
    build_config,
    config_options,
)
from dataworth.cli.render import (
    frame_table,
    show_baseline,
    show_cost,
    show_data,
    show_written,
)


@reports_errors
def datasets() -> None:
    """List the built-in datasets."""
    from dataworth.data import list_datasets

    console.print(frame_table(list_datasets().set_index("name"), "Built-in datasets"))


@reports_errors
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
    config = build_config(**config_options(locals()))
    outcome = run_steps(config, ("data", "baseline", "summary"), write=out is not None)
    show_data(outcome.context)
    show_baseline(outcome.context)
    show_written(outcome)


@reports_errors
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
    config = build_config(**config_options(locals()))
    outcome = run_steps(config, ("data", "cost", "summary"), write=out is not None)
    show_data(outcome.context)
    show_cost(outcome.context)
    show_written(outcome)
