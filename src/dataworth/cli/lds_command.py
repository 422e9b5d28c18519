"""``dataworth evaluate --lds``: the linear datamodeling score of each attribution method."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from dataworth.cli.app import filling, progress_bar, say_written
from dataworth.cli.console import console
from dataworth.errors import DataworthError


def _methods(text: str | None) -> list[str] | None:
    from dataworth.evaluate.attributions import check_methods

    if text is None:
        return None
    return list(check_methods([m.strip() for m in text.split(",") if m.strip()]))


def run_lds(
    config,
    *,
    methods: str | None,
    models: int | None,
    subsets: int | None,
    out: Path | None,
    overwrite: bool,
) -> None:
    """Train the LDS models, score each method, print the table; ``lds.json`` with ``--out``."""
    from dataworth.evaluate.lds import DEFAULT_MODELS, lds
    from dataworth.study import load_task
    from dataworth.study.runfolder import RunFolder

    names = _methods(methods)  # a misspelt method fails before any data is read
    n_models = DEFAULT_MODELS if models is None else models
    if n_models < 2:
        raise DataworthError(f"--lds-models must be at least 2; got {n_models}.")
    run = RunFolder(out, overwrite=overwrite) if out is not None else None
    with filling(run):
        task = load_task(config)
        with progress_bar() as progress:
            report = lds(
                task,
                names,
                learner=config.model,
                n_models=n_models,
                method_models=subsets,
                seed=config.seed,
                device=config.device,
                progress=lambda done, total: progress("LDS methods", done, total),
            )
        if run is not None:
            report.save(run.path)
            run.commit()
    show_lds(report)
    say_written(run)


def show_lds(report) -> None:
    """The table of a :class:`~dataworth.evaluate.lds.LDSReport`."""
    console.print(
        f"[bold]LDS:[/bold] {report.task}, learner {report.learner}; "
        f"{report.ground_truth_models} models on random halves of the training rows, "
        f"{len(report.test_rows)} test rows, output log p/(1-p) of the true class",
        highlight=False,
    )
    table = Table()
    for column in ("method", "models", "LDS", "95% interval", "undefined", "seconds"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in report.results:
        table.add_row(
            r.method,
            str(r.models),
            f"{r.lds:.3f}",
            f"{r.ci_low:.3f} to {r.ci_high:.3f}",
            str(r.n_undefined),
            f"{r.seconds:.1f}",
        )
    console.print(table)
    console.print(
        "  LDS: mean over test rows of the Spearman correlation, across the models, between a "
        "row's output and the sum of the attributions of the model's training rows (TRAK's "
        "definition); interval: Student t over test rows; undefined rows count as 0.",
        highlight=False,
    )
