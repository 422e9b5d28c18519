"""Progress as plain, flushed lines, for output that is not a terminal (a pipe or a file).

A live progress bar redraws one line of a terminal; written to a file it shows nothing useful
until the run ends. When the CLI's output is not a terminal it prints lines such as::

    [   12 s] step tmc: TMC-Shapley values of points and groups
    [   14 s] TMC-Shapley, points: 4/10
    [   31 s] tmc: all 50000 players, 10 of 10 permutations (standard errors kept) in 19.2 s

at a modest rate: a progress line when the work changes, then at most one every
``every`` seconds for the same work; step starts and results (the study's log messages) as
they happen. Each line is flushed at once, so ``tail -f`` shows it.

Nothing is printed during the first ``quiet`` seconds (the lines are held back, then written
together): bad input is found in that time, and its error stays the only line of output.

However long a step goes without reporting progress (one large batch of fits, a regression),
a line says what is still running at least every ``heartbeat`` seconds (30 by default), so a
person watching the file can tell a slow step from a stuck one.
"""

from __future__ import annotations

import threading
from time import perf_counter
from typing import Any, TextIO

QUIET = 2.0
"""Seconds from the start during which nothing is printed (see the module's docstring)."""
HEARTBEAT = 30.0
"""Longest silence, in seconds, before a line says what is still running."""


class ProgressLines:
    """Flushed progress lines on a stream.

    Parameters
    ----------
    stream : text stream
        Where the lines go (the CLI uses stderr).
    every : float, default=10.0
        Seconds between two progress lines about the same work.
    gap : float, default=1.0
        Seconds between any two progress lines (step starts and results are never held back).
    quiet : float, optional
        Seconds from the start during which lines are held back; default :data:`QUIET`.
    heartbeat : float, optional
        Longest silence before a line says what is still running; default :data:`HEARTBEAT`.
        The line comes from a background thread started by ``with``.

    The object itself is the ``progress(description, done, total)`` callback the study takes;
    :meth:`log` and :meth:`on_step` are its ``log`` and ``on_step``.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        every: float = 10.0,
        gap: float = 1.0,
        quiet: float | None = None,
        heartbeat: float | None = None,
    ) -> None:
        self.stream = stream
        self.heartbeat = HEARTBEAT if heartbeat is None else heartbeat
        self.every, self.gap = every, gap
        self.quiet = QUIET if quiet is None else quiet
        self.started = perf_counter()
        self._held: list[str] | None = []
        self._last_line = -float("inf")
        self._last_work: str | None = None
        self._last_work_line = -float("inf")
        self._lock = threading.Lock()
        self._written = self.started  # when the last line was written (or held back)
        self._step: str | None = None
        self._last_text: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> ProgressLines:
        self._beat = threading.Thread(target=self._beats, name="dataworth-progress", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        # Held-back lines of a run that ended within the quiet time are of no use any more.
        self._held = None

    def _beats(self) -> None:
        """Write a line when nothing was written for ``heartbeat`` seconds."""
        tick = min(1.0, self.heartbeat / 4)
        while not self._stop.wait(tick):
            with self._lock:
                now = perf_counter()
                if now - self._written < self.heartbeat - tick:
                    continue
                what = f"step {self._step}" if self._step else "the run"
                last = f"; last: {self._last_text}" if self._last_text else ""
                self._write(f"still working on {what}{last}", now, remember=False)

    def _write(self, text: str, now: float, *, remember: bool = True) -> None:
        self._written = now
        if remember:
            self._last_text = text
        line = f"[{now - self.started:5.0f} s] {text}"
        if self._held is not None and now - self.started < self.quiet:
            self._held.append(line)
            return
        lines = [*(self._held or []), line]
        self._held = None
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    def __call__(self, description: str, done: int, total: int) -> None:
        """``progress(description, done, total)``, as the study calls it."""
        with self._lock:
            now = perf_counter()
            new_work = description != self._last_work
            finished = total > 0 and done >= total
            if now - self._last_line < self.gap and not (finished and not new_work):
                return
            if not new_work and not finished and now - self._last_work_line < self.every:
                return
            self._last_line = self._last_work_line = now
            self._last_work = description
            self._write(f"{description}: {done}/{total}" if total else description, now)

    def log(self, message: str) -> None:
        """A result or a decision, printed as it happens."""
        with self._lock:
            self._write(message, perf_counter())

    def on_step(self, step: Any) -> None:
        """A step of the study starts."""
        description = getattr(step, "description", "")
        self._step = getattr(step, "name", None)
        self.log(f"step {step.name}" + (f": {description}" if description else ""))
