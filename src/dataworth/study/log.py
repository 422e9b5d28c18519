"""The study's own log (``study.log``) and what happens when a study is stopped.

``study.log`` is written line by line, each line flushed, as the study runs: which step starts,
how long each took, every decision and result the steps report (the budget's shares, what each
method valued), and how the study ended. A study stopped by the user (Ctrl-C) or by a time limit
(SIGTERM, as sent by ``timeout`` or a job scheduler) or out of memory keeps its folder as
``<name>.partial/`` with this log and the files of the steps that finished; every finished fit
is in the evaluation store beside the run folders, so running the same command again refits
nothing that was stored.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from time import perf_counter
from typing import TextIO


class StudyStopped(KeyboardInterrupt):
    """The study was stopped by SIGTERM (a time limit or a job scheduler), not by a fault."""


class StudyLog:
    """Flushed, time-stamped lines in ``study.log`` (nothing when ``path`` is None).

    Parameters
    ----------
    path : Path, optional
        The log file; ``None`` for a study that writes no folder.
    """

    def __init__(self, path: Path | None) -> None:
        self.started = perf_counter()
        self._file: TextIO | None = None
        if path is not None:
            self._file = open(path, "a", encoding="utf-8")

    def line(self, text: str) -> None:
        """Write one line: wall-clock time, seconds since the start, the text."""
        if self._file is None or self._file.closed:
            return
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        self._file.write(f"{stamp} [{perf_counter() - self.started:8.1f} s] {text}\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()


def stop_reason(error: BaseException) -> str:
    """Why the study stopped, in words."""
    if isinstance(error, StudyStopped):
        return str(error) or "terminated (SIGTERM)"
    if isinstance(error, MemoryError):
        return "out of memory"
    return "interrupted by the user (Ctrl-C)"


class SigtermStop:
    """Whether SIGTERM arrived, for :func:`stop_on_sigterm`'s block to check between steps."""

    REASON = "terminated by SIGTERM (a time limit or a job scheduler)"

    def __init__(self) -> None:
        self.received = False

    def check(self) -> None:
        """Raise :class:`StudyStopped` if SIGTERM arrived (its own raise may have been lost)."""
        if self.received:
            raise StudyStopped(self.REASON)


@contextmanager
def stop_on_sigterm() -> Iterator[SigtermStop]:
    """Turn SIGTERM into :class:`StudyStopped` while the block runs (main thread only).

    Python's default for SIGTERM ends the process at once, with no chance to keep the partial
    run folder; raising an exception instead lets the study write its log and keep what it has.
    The handler's exception is lost when the signal lands inside a callback whose exceptions
    Python ignores (a weak reference's finaliser, for one), so the handler also records the
    signal, and the block calls :meth:`SigtermStop.check` between steps. Python would also print
    such a lost exception with its traceback ("Exception ignored in ..."); the stop is handled,
    so the block's unraisable hook keeps it quiet and passes every other exception on.
    """
    stop = SigtermStop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame) -> None:
        stop.received = True
        raise StudyStopped(SigtermStop.REASON)

    hook = sys.unraisablehook

    def quiet_stop(unraisable) -> None:
        if not isinstance(unraisable.exc_value, StudyStopped):
            hook(unraisable)

    previous = signal.signal(signal.SIGTERM, handler)
    sys.unraisablehook = quiet_stop
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = hook
