"""``dataworth clean``: flag the rows that hurt, act on them only when the held-out gain is real.

A thin layer over the study's ``clean`` step (:mod:`dataworth.study.clean_step`), so the run
folder, its partial twin, progress lines, the budget and the data checks behave as in ``study``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer
from rich.markup import escape

from dataworth.cli.app import reports_errors, run_steps
from dataworth.cli.console import console
from dataworth.cli.options import (
    MODEL_PANEL,
    BudgetOpt,
    OutOpt,
    OverwriteOpt,
    build_config,
    config_options,
)
from dataworth.cli.render import show_written
from dataworth.cli.shared import DATA, MODEL, DataOptions, ModelOptions, shares_options
from dataworth.errors import DataworthError

CLEAN_PANEL = "Cleaning"

ActionOpt = Annotated[
    str,
    typer.Option(
        "--action",
        help="remove the flagged rows, or relabel them to the out-of-fold predicted class "
        "(riskier; its gain is measured for relabelling).",
        rich_help_panel=CLEAN_PANEL,
    ),
]
MaxFractionOpt = Annotated[
    float,
    typer.Option(
        "--max-fraction",
        help="The most rows acted on, as a share of all rows (a safety cap; the share itself "
        "is chosen by a removal curve on folds).",
        rich_help_panel=CLEAN_PANEL,
    ),
]
RepeatsOpt = Annotated[
    int,
    typer.Option(
        "--repeats",
        help="Cross-fitted splits that measure the held-out gain (at least 2; fewer run when "
        "the budget runs out).",
        rich_help_panel=CLEAN_PANEL,
    ),
]
_CLEAN_METRIC = Annotated[
    str | None,
    typer.Option(
        "--metric",
        help="The held-out metric the gain is measured in. [default: accuracy]",
        rich_help_panel=MODEL_PANEL,
        show_default=False,
    ),
]


@reports_errors
@shares_options(metric=(_CLEAN_METRIC, None))
def clean(
    data: DataOptions = DATA,
    primary: ModelOptions = MODEL,
    action: ActionOpt = "remove",
    max_fraction: MaxFractionOpt = 0.3,
    repeats: RepeatsOpt = 10,
    budget: BudgetOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Flag the rows whose labels hurt the model; remove or relabel them when that verifiably helps.

    Writes a run folder: flags.csv (every input row, its suspicion and reasons), cleaned.csv (the
    rows kept, every column), clean.json (the held-out metric before and after with 95%
    intervals, against as many random rows) and report.html / report.md.
    """
    if action not in ("remove", "relabel"):
        raise DataworthError(f"Unknown --action {action!r}; use remove or relabel.")
    if not 0 < max_fraction < 1:
        raise DataworthError(f"--max-fraction must lie in (0, 1); got {max_fraction}.")
    if repeats < 2:
        raise DataworthError(f"--repeats must be at least 2; got {repeats}.")
    options = config_options({"data": data, "primary": primary, "budget": budget, "out": out})
    config = build_config(**options, overwrite=overwrite)
    extra = dict(config.extra)
    extra["clean"] = {
        "action": action,
        "max_fraction": max_fraction,
        "repeats": repeats,
        "rows": "all",
    }
    config = replace(config, extra=extra)
    outcome = run_steps(config, ("data", "clean", "summary", "report"), write=True)
    show_clean(outcome.context)
    show_written(outcome)


def show_clean(ctx) -> None:
    """The verdict and the held-out figures behind it."""
    result = ctx.results.get("clean")
    if result is None:
        console.print("clean: not run (no time left in the budget)", highlight=False)
        return
    console.print(f"[bold]Clean:[/bold] {escape(result.summary())}", highlight=False)
    console.print(
        f"  flagged {result.n_flagged} of {len(result.score)} rows ({result.action})",
        highlight=False,
    )
