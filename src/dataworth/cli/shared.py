"""Groups of options many commands share, declared once: the data, the model and the engine.

A command takes one parameter per group, ``data: DataOptions``, and is decorated with
:func:`shares_options`. The decorator puts the group's options, each with its flag, help and
panel from :mod:`dataworth.cli.options`, in that parameter's place in the signature typer reads
(so ``--help`` lists them where the command names the group), and packs the values typer parses
into one :class:`DataOptions` before calling the command. :func:`~dataworth.cli.options.
config_options` unpacks every group again into the configuration's options.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from dataworth.cli.options import (
    BackendOpt,
    CsvOpt,
    DatasetOpt,
    DeviceOpt,
    DropOpt,
    FlipOpt,
    ImageSizeOpt,
    ImagesOpt,
    MetricOpt,
    ModelOpt,
    NJobsOpt,
    ParquetOpt,
    RowsOpt,
    SchedulerOpt,
    SeedOpt,
    SplitOpt,
    StrictOpt,
    TargetOpt,
    TrainSizeOpt,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class DataOptions:
    """Where the rows come from and how they are split (``--dataset`` ... ``--strict``; an
    image folder by ``--images`` and ``--image-size``)."""

    dataset: str | None = None
    csv: Path | None = None
    parquet: Path | None = None
    images: Path | None = None
    image_size: int | None = None
    target: str | None = None
    rows: int | None = None
    train_size: str | None = None
    split: str | None = None
    flip: float | None = None
    seed: int | None = None
    drop: str | None = None
    strict: bool = False


@dataclass(frozen=True)
class ModelOptions:
    """The primary model, its metric and where a network trains (``--model``, ``--metric``,
    ``--device``)."""

    model: str | None = None
    metric: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class EngineOptions:
    """Where fits run (``--backend``, ``--n-jobs``, ``--scheduler``)."""

    backend: str | None = None
    n_jobs: int | None = None
    scheduler: str | None = None


# Each group with every option left out: the default of a command's group parameter.
DATA = DataOptions()
MODEL = ModelOptions()
ENGINE = EngineOptions()

#: Each group's options in the order ``--help`` lists them, with their typer declaration.
GROUPS: dict[type, dict[str, Any]] = {
    DataOptions: {
        "dataset": DatasetOpt,
        "csv": CsvOpt,
        "parquet": ParquetOpt,
        "images": ImagesOpt,
        "image_size": ImageSizeOpt,
        "target": TargetOpt,
        "rows": RowsOpt,
        "train_size": TrainSizeOpt,
        "split": SplitOpt,
        "flip": FlipOpt,
        "seed": SeedOpt,
        "drop": DropOpt,
        "strict": StrictOpt,
    },
    ModelOptions: {"model": ModelOpt, "metric": MetricOpt, "device": DeviceOpt},
    EngineOptions: {"backend": BackendOpt, "n_jobs": NJobsOpt, "scheduler": SchedulerOpt},
}


def group_options(values: Any) -> dict[str, Any]:
    """A group's values by option name (what :func:`~dataworth.cli.options.build_config` takes)."""
    return {f.name: getattr(values, f.name) for f in fields(values)}


def shares_options(**overrides: tuple[Any, Any]) -> Callable[[F], F]:
    """Give a command the options of each group it names by a parameter of the group's type.

    Parameters
    ----------
    **overrides : (annotation, default)
        A command's own declaration of one shared option (its help or default differs there,
        as ``evaluate``'s ``--flip``); it keeps the option's place in the group.

    Returns
    -------
    callable
        A decorator. The decorated command's signature lists the options in place of the group
        parameter; called with them, it receives the group object instead.
    """

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        parameters: list[inspect.Parameter] = []
        groups: dict[str, type] = {}
        for parameter in signature.parameters.values():
            declared = GROUPS.get(parameter.annotation)
            if declared is None:
                parameters.append(parameter)
                continue
            groups[parameter.name] = parameter.annotation
            defaults = {f.name: f.default for f in fields(parameter.annotation)}
            for name, annotation in declared.items():
                annotation, default = overrides.get(name, (annotation, defaults[name]))
                parameters.append(
                    inspect.Parameter(
                        name,
                        inspect.Parameter.POSITIONAL_OR_KEYWORD,
                        default=default,
                        annotation=annotation,
                    )
                )
        unknown = set(overrides) - {n for g in groups.values() for n in GROUPS[g]}
        if unknown:
            raise TypeError(f"{command.__name__}: overrides of options it lacks: {unknown}")

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            for name, group in groups.items():
                defaults = {p.name: p.default for p in parameters}
                values = {n: kwargs.pop(n, defaults[n]) for n in GROUPS[group]}
                kwargs[name] = group(**values)
            return command(**kwargs)

        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        wrapper.__annotations__["return"] = signature.return_annotation
        return wrapper  # type: ignore[return-value]

    return decorate
