"""What this machine lets the process use: CPU cores, and this worker's share of them.

It sits below every layer, so a learner sizing its threads and the engine sizing its worker pool
count the same cores. When the engine runs fits in several worker processes at once, it tells
each worker its share of the cores (:func:`thread_share`), and learners that run threads of their
own ask :func:`usable_threads`, so workers times threads never exceeds the cores.
:func:`one_blas_thread` keeps BLAS to one thread for a block, for the code whose parallelism is
its own threads.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import os
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["one_blas_thread", "thread_share", "usable_cpus", "usable_threads"]

_EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)

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


# threadpoolctl's controller of the loaded BLAS libraries, and how many modules were imported
# when it was last checked. Building one scans every loaded library (20-50 ms, more than a whole
# small LOO). Python packages load their BLAS with an extension module, so it is rebuilt only
# when an extension module was imported since (``sys.modules`` keeps the order of imports).
_BLAS: list = [0, None]
_BLAS_LOCK = threading.Lock()


def _blas_controller():
    with _BLAS_LOCK:
        seen, controller = _BLAS
        modules = list(sys.modules.values())
        fresh = modules[seen:] if len(modules) >= seen else modules
        if (
            controller is None
            or len(modules) < seen
            or any(
                str(getattr(m, "__file__", None) or "").endswith(_EXTENSION_SUFFIXES) for m in fresh
            )
        ):
            from threadpoolctl import ThreadpoolController

            controller = ThreadpoolController()
        _BLAS[:] = [len(modules), controller]
        return controller


def one_blas_thread():
    """A context in which the loaded BLAS libraries use one thread (as
    ``threadpoolctl.threadpool_limits(limits=1, user_api="blas")``, without its scan of the
    loaded libraries on every call).

    Returns
    -------
    context manager
    """
    return _blas_controller().limit(limits=1, user_api="blas")
