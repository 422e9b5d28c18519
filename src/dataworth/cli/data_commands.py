"""The commands that look at the data before any valuation: ``datasets``, ``baseline``, ``plan``."""

from __future__ import annotations

from dataworth.cli.app import reports_errors, run_steps
from dataworth.cli.console import console
from dataworth.cli.options import (
    BaselinesOpt,
    BudgetOpt,
    OutOpt,
    OverwriteOpt,
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
from dataworth.cli.shared import DATA, MODEL, DataOptions, ModelOptions, shares_options


@reports_errors
def datasets() -> None:
    """List the built-in datasets."""
    from dataworth.data import list_datasets

    console.print(frame_table(list_datasets().set_index("name"), "Built-in datasets"))


@reports_errors
@shares_options()
def baseline(
    data: DataOptions = DATA,
    primary: ModelOptions = MODEL,
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
@shares_options()
def plan(
    data: DataOptions = DATA,
    primary: ModelOptions = MODEL,
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
