"""What the steps of a study share: the :class:`StudyContext` and the :class:`Step`.

The steps (in :mod:`dataworth.study.runner`, :mod:`dataworth.study.steps` and
:mod:`dataworth.study.stable_step`) import these two from here, and the runner imports the
steps: keeping the context in its own module is what lets both directions exist without an
import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import pandas as pd

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.study.baseline import DEFAULT_METRIC
from dataworth.study.config import StudyConfig
from dataworth.study.runfolder import DEFAULT_ROOT, RunFolder

ProgressFn = Callable[[str, int, int], None]
LogFn = Callable[[str], None]


@dataclass
class StudyContext:
    """What the steps of one study share.

    Attributes
    ----------
    config : StudyConfig
    run : RunFolder or None
        The folder being written, or ``None`` when results are only shown.
    task : Task or None
        Set by the data step.
    results : dict
        Each step's result under its name (``"baseline"``, ``"cost"``, ``"plan"``...).
    figures : dict
        Figure name -> saved files (final paths).
    timings : dict
        Seconds per step.
    progress : callable or None
        ``progress(description, done, total)`` for long steps.
    log : callable
        One-line messages for the user.
    closers : list of callable
        Called when the study ends (shut down workers, close the evaluation store).
    root : Path
        Parent of default-named run folders; the evaluation cache lives there too.
    started : float
        ``perf_counter()`` when the study began (the budget counts from it).
    step_names : set of str
        The names of the study's steps (the budget shares time only among those).
    """

    config: StudyConfig
    run: RunFolder | None = None
    task: Task | None = None
    results: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, list[Path]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    progress: ProgressFn | None = None
    log: LogFn = lambda message: None
    closers: list[Callable[[], None]] = field(default_factory=list)
    root: Path = DEFAULT_ROOT
    started: float = field(default_factory=perf_counter)
    step_names: set[str] = field(default_factory=set)

    @property
    def writes(self) -> bool:
        return self.run is not None

    def write_json(self, name: str, obj: Any) -> None:
        if self.run is not None:
            self.run.write_json(name, obj)

    def write_csv(self, name: str, frame: pd.DataFrame, index: bool = True) -> None:
        if self.run is not None:
            self.run.write_csv(name, frame, index=index)

    def write_text(self, name: str, text: str) -> None:
        if self.run is not None:
            self.run.write_text(name, text)

    def save_figures(self, make: Callable[[Path], dict[str, list[Path]]]) -> None:
        """Call ``make(folder)`` with the figures folder, and record the final paths."""
        if self.run is None:
            return
        start = perf_counter()
        saved = make(self.run.folder("figures"))
        for name, paths in saved.items():
            self.figures[name] = [self.run.final_path(p) for p in paths]
        # The budget keeps time back for the figures still to come, at the pace measured so far.
        count, seconds = self.results.get("figure_seconds", (0, 0.0))
        self.results["figure_seconds"] = (count + len(saved), seconds + perf_counter() - start)

    def require_task(self) -> Task:
        if self.task is None:
            raise DataworthError("This study step needs the data step first; add it to the steps.")
        return self.task

    @property
    def primary_metric(self) -> str:
        """The metric the baseline chose (or the user forced), else the default."""
        baseline = self.results.get("baseline")
        if baseline is not None:
            return baseline.metric.name
        return self.config.metric or DEFAULT_METRIC


@dataclass(frozen=True)
class Step:
    """One named stage of a study: ``run(context)`` does the work and writes its files."""

    name: str
    run: Callable[[StudyContext], None]
    description: str = ""
