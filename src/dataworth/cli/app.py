"""The typer application and what every command shares: one-line errors, progress, a run."""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from dataworth.cli.console import console, err_console
from dataworth.errors import DataworthError
from dataworth.study.config import StudyConfig

app = typer.Typer(
    name="dataworth",
    help="Which training points and groups are responsible for a classifier's performance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def reports_errors(command: Callable) -> Callable:
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
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
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


@contextmanager
def filling(run: Any) -> Iterator[None]:
    """Fill a run folder all or nothing: the folder is discarded when the block fails.

    The block computes its report and, when ``run`` is a folder (``--out`` given), saves the
    report into ``run.path`` and calls ``run.commit()``; ``run`` may be ``None`` (nothing written).
    """
    try:
        yield
    except BaseException:
        if run is not None:
            run.discard()
        raise


def say_written(run: Any) -> None:
    """The closing line of a command that wrote a run folder (nothing when it wrote none)."""
    if run is not None:
        console.print(f"[bold green]Wrote[/bold green] {run.target}", highlight=False)


def run_steps(config: StudyConfig, step_names: tuple[str, ...] | None, write: bool):
    from dataworth.study import DEFAULT_STEPS, run_study, steps_named

    steps = DEFAULT_STEPS if step_names is None else steps_named(*step_names)
    with progress_bar() as progress:
        log = getattr(progress, "log", None)
        on_step = getattr(progress, "on_step", None)
        return run_study(
            config, steps=steps, write=write, progress=progress, log=log, on_step=on_step
        )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app; bad input exits 2 with one line, no traceback."""
    try:
        app(args=argv, prog_name="dataworth")
    except DataworthError as error:  # raised outside a command body, e.g. while parsing options
        print_error(error)
        sys.exit(2)
