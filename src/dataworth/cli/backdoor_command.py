"""``dataworth evaluate --task backdoor``: the AME paper's backdoor experiment, in miniature."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from dataworth.cli.app import filling, say_written
from dataworth.cli.console import console
from dataworth.cli.shared import DataOptions, ModelOptions
from dataworth.errors import DataworthError


def _grid(text: str | None) -> list[int]:
    if text is None:
        from dataworth.evaluate.backdoor.experiment import GRID

        return list(GRID)
    try:
        grid = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        grid = []
    if not grid or min(grid) < 1:
        raise DataworthError(f"--grid takes positive whole numbers like 1,2,4,8; got {text!r}.")
    return grid


def _check_data(data: DataOptions, model: str | None) -> str:
    """The backdoor runs on the bundled digits with a network: refuse anything else early."""
    if data.csv or data.parquet or data.images or data.dataset not in (None, "digits"):
        raise DataworthError(
            "--task backdoor plants its trigger on the bundled digits; drop --csv, --parquet, "
            "--images and --dataset (or use --dataset digits)."
        )
    if data.flip not in (None, 0.1) and data.flip:
        raise DataworthError("--task backdoor poisons the labels itself; drop --flip.")
    model = model or "cnn"
    if model not in ("cnn", "mlp"):
        raise DataworthError(
            f"--task backdoor explains a network's predictions; use --model cnn or mlp, not "
            f"{model!r}."
        )
    return model


def run_backdoor_command(
    data: DataOptions,
    primary: ModelOptions,
    *,
    patch_size: int | None,
    poisons: int | None,
    queries: int | None,
    grid: str | None,
    out: Path | None,
    overwrite: bool,
) -> None:
    """Run the backdoor experiment as the CLI does: attack check first, then the table."""
    model = _check_data(data, primary.model)
    factors = _grid(grid)
    from dataworth.learners.torch.models import _import_torch

    _import_torch()  # without torch: the one install line, exit code 2
    from dataworth.evaluate.backdoor.data import backdoor_digits
    from dataworth.evaluate.backdoor.experiment import run_backdoor
    from dataworth.evaluate.backdoor.learner import backdoor_learner
    from dataworth.study.runfolder import RunFolder

    seed = 0 if data.seed is None else int(data.seed)
    backdoor = backdoor_digits(
        poisons=20 if poisons is None else poisons,
        queries=20 if queries is None else queries,
        patch_size=3 if patch_size is None else patch_size,
        n_rows=data.rows,
        seed=seed,
    )
    learner = backdoor_learner(model, seed=seed, device=primary.device)
    run = RunFolder(out, overwrite=overwrite) if out is not None else None  # refuse early
    with filling(run):
        with console.status("backdoor experiment") as status:
            report = run_backdoor(
                backdoor, learner, grid=factors, seed=seed, progress=status.update
            )
        if run is not None:
            report.save(run.path)
            run.commit()
    show_backdoor(report)
    say_written(run)


def show_backdoor(report) -> None:
    """Print the attack check, then each method's mean precision and recall per ``c``."""
    a = report.attack
    console.print(
        f"Attack check: success {a.success:.1%} on {a.n_patched} patched test images "
        f"(mean P(target) {a.mean_target_probability:.3f}); clean accuracy {a.clean_accuracy:.1%} "
        f"poisoned vs {a.clean_accuracy_unpoisoned:.1%} unpoisoned.",
        highlight=False,
    )
    if not (a.success > 0.9 and a.accuracy_drop <= 0.03):
        console.print(
            "[bold red]The attack is weak: the precision and recall below mean little.[/]"
        )
    table = Table(title="Poisons found per query (mean over the queries)")
    for name in ("c", "subsets", "method", "models", "precision", "recall", "empty", "seconds"):
        table.add_column(name, justify="left" if name == "method" else "right")
    for r in report.rows:
        table.add_row(
            str(r["c"]),
            str(r["subsets"]),
            r["method"],
            str(r["models"]),
            f"{r['precision']:.2f}",
            f"{r['recall']:.2f}",
            str(r["empty"]),
            f"{r['seconds']:.1f}",
        )
    console.print(table)
    console.print(
        "AME: plain Knockoff at q = 0; the others: their k highest scores per query. "
        f"Total {report.timings['total']:.0f} s.",
        highlight=False,
    )
