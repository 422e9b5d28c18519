"""What this machine lets the process use: CPU cores, and this worker's share of them.

It sits below every layer, so a learner sizing its threads and the engine sizing its worker pool
count the same cores. When the engine runs fits in several worker processes at once, it tells
each worker its share of the cores (:func:`thread_share`), and learners that run threads of their
own ask :func:`usable_threads`, so workers times threads never exceeds the cores.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["thread_share", "usable_cpus", "usable_threads"]

# Threads the engine lets the fits running in this context use (None: all usable cores).
_SHARE: ContextVar[int | None] = ContextVar("dataworth_thread_share", default=None)


def usable_cpus() -> int:
    """Return the number of CPUs this process may use (respecting affinity and cpusets)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def usable_threads(requested: int | None = None) -> int:
    """Threads a learner may run for one batch of fits.

    Parameters
    ----------
    requested : int, optional
        An explicit setting (a learner's or a caller's); it wins when given.

    Returns
    -------
    int
        ``requested``, else the share of the cores the engine gave the running fits (see
        :func:`thread_share`), else every usable CPU; at least 1.
    """
    if requested is not None:
        return max(1, int(requested))
    share = _SHARE.get()
    return usable_cpus() if share is None else max(1, min(share, usable_cpus()))


@contextlib.contextmanager
def thread_share(threads: int | None) -> Iterator[None]:
    """Within the block, :func:`usable_threads` gives at most ``threads``.

    The engine wraps each chunk of fits that runs in one of several worker processes in this,
    so a learner's own threads do not multiply with the workers; a caller may wrap a whole run
    in it to keep the fits to fewer cores. ``None`` adds no limit (an enclosing block's stays),
    and a block never raises an enclosing block's limit. The setting is per thread (a context
    variable): other threads of the process keep theirs.
    """
    outer = _SHARE.get()
    share = outer if threads is None else max(1, int(threads))
    if outer is not None and share is not None:
        share = min(share, outer)
    token = _SHARE.set(share)
    try:
        yield
    finally:
        _SHARE.reset(token)
