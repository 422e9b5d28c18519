"""Executors that run batches of work: serial, local processes, or a Dask cluster.

Everything is a :class:`concurrent.futures.Executor`, so the engine has one code path for all
backends (docs/design.md, section 3). Work is split into chunks with :func:`chunk_rows` and run with
:func:`map_chunks`, which returns results in chunk order whatever the completion order, and hands
each finished chunk to a callback at once so the engine can store it before the next one lands.

Results never depend on the backend or on the chunking: randomness is drawn from
``numpy.random.SeedSequence`` children spawned per permutation or per sample by the caller,
never per worker.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import inspect
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from dataworth.errors import DataworthError
from dataworth.machine import usable_cpus

T = TypeVar("T")
R = TypeVar("R")

#: Backends accepted by :func:`make_executor`.
BACKENDS = ("serial", "processes", "dask")

#: Seconds to wait for a remote Dask scheduler before giving up.
SCHEDULER_TIMEOUT_S = 5.0


class SerialExecutor(cf.Executor):
    """An executor that runs each task inline, in the calling thread, when it is submitted.

    ``submit`` returns an already completed future; an exception raised by the task is captured
    in the future, as in any executor. ``KeyboardInterrupt`` and ``SystemExit`` are not captured,
    so Ctrl-C stops a serial run at once.
    """

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> cf.Future[R]:
        """Run ``fn(*args, **kwargs)`` now and return its completed future."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: cf.Future[R] = cf.Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse further submissions; nothing is ever pending."""
        self._shutdown = True


def default_n_workers() -> int:
    """Return the number of CPUs this process may use (respecting affinity and cpusets)."""
    return usable_cpus()


def _process_pool(n_workers: int) -> cf.Executor:
    # loky's pool, not the standard library's: its workers start with loky's own spawn, so they
    # hold none of the parent's threads or locks (the rich progress bar, BLAS pools, a Dask
    # event loop), and unlike "spawn"/"forkserver" they never re-import the user's __main__,
    # so a script without an `if __name__ == "__main__":` guard works (the standard pool
    # re-runs such a script in every worker). Functions defined in __main__ travel by value
    # (cloudpickle). It keeps the concurrent.futures interface.
    from loky import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=n_workers)


def _dask_missing() -> DataworthError:
    return DataworthError(
        'The "dask" backend needs Dask distributed; install it with pip install "dataworth[dask]".'
    )


@contextlib.contextmanager
def _dask_executor(n_workers: int, scheduler: str | None) -> Iterator[cf.Executor]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise _dask_missing() from None

    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = LocalCluster(
                n_workers=n_workers,
                # One thread per worker process: the learners release the GIL only in parts, and
                # BLAS already multi-threads inside a fit.
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # Workers report closed connections at shutdown as warnings; they are noise here.
                silence_logs=logging.ERROR,
            )
            stack.callback(cluster.close)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
            except (OSError, TimeoutError, ValueError) as exc:
                # OSError covers refused and timed-out connections, ValueError a malformed address.
                raise DataworthError(
                    f"Cannot reach the Dask scheduler at {scheduler} within"
                    f" {SCHEDULER_TIMEOUT_S:g} s; start one with `dask scheduler` or drop"
                    f" --scheduler ({type(exc).__name__}: {str(exc).splitlines()[0]})."
                ) from None
        stack.callback(client.close)
        # pure=False: tasks are not deduplicated by content, and dask does not spend time hashing
        # large array arguments to build keys.
        yield client.get_executor(pure=False)


def _shutdown(executor: cf.Executor, *, cancel: bool) -> None:
    if not cancel:
        executor.shutdown(wait=True)
        return
    if "cancel_futures" in inspect.signature(executor.shutdown).parameters:
        executor.shutdown(wait=True, cancel_futures=True)
    else:
        # Dask's ClientExecutor has no cancel_futures; shutdown(wait=False) cancels its futures.
        executor.shutdown(wait=False)


@contextlib.contextmanager
def make_executor(
    backend: str = "serial",
    n_workers: int | None = None,
    scheduler: str | None = None,
) -> Iterator[cf.Executor]:
    """Open an executor for a backend, and close it (and any cluster) on exit.

    Parameters
    ----------
    backend : {"serial", "processes", "dask"}, default "serial"
        ``"serial"`` runs everything inline in this process. ``"processes"`` uses a local
        :class:`loky.ProcessPoolExecutor` (a ``concurrent.futures`` executor whose workers
        need no ``__main__`` guard). ``"dask"`` uses a Dask
        ``distributed`` cluster: a new local one, or the scheduler at ``scheduler``.
    n_workers : int, optional
        Worker processes for ``"processes"`` and a local Dask cluster; defaults to the number of
        usable CPUs. Ignored by ``"serial"`` and when connecting to ``scheduler``.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``. Only with
        ``backend="dask"``. The task functions must be importable on its workers.

    Yields
    ------
    concurrent.futures.Executor

    Raises
    ------
    DataworthError
        For an unknown backend, a bad ``n_workers``, a scheduler without the dask backend,
        Dask not installed, or a scheduler that cannot be reached within
        ``SCHEDULER_TIMEOUT_S`` seconds.

    Notes
    -----
    Task functions and their arguments must be picklable for ``"processes"`` and ``"dask"``:
    define functions at module level. Leaving the block normally waits for submitted work;
    leaving it with an exception cancels work not yet started.
    """
    backend = str(backend).lower()
    if backend not in BACKENDS:
        raise DataworthError(
            f"Unknown executor backend {backend!r}; choose one of {', '.join(BACKENDS)}."
        )
    if scheduler is not None and backend != "dask":
        raise DataworthError(
            f"A scheduler address needs the dask backend, not {backend!r}; add --backend dask."
        )
    if n_workers is None:
        n_workers = default_n_workers()
    elif isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise DataworthError(
            f"The number of workers must be a positive integer; got {n_workers!r}."
        )

    with contextlib.ExitStack() as stack:
        executor: cf.Executor
        if backend == "serial":
            executor = SerialExecutor()
        elif backend == "processes":
            executor = _process_pool(n_workers)
        else:
            executor = stack.enter_context(_dask_executor(n_workers, scheduler))
        try:
            yield executor
        except BaseException:
            _shutdown(executor, cancel=True)
            raise
        else:
            _shutdown(executor, cancel=False)


def chunk_rows(n_rows: int, chunk_size: int) -> list[slice]:
    """Split ``range(n_rows)`` into consecutive slices of at most ``chunk_size`` rows.

    Parameters
    ----------
    n_rows : int
        Number of rows (e.g. subsets in a batch); 0 gives no chunks.
    chunk_size : int
        Rows per chunk, at least 1. The last chunk may be shorter.

    Returns
    -------
    list of slice

    Raises
    ------
    DataworthError
        If ``n_rows`` is negative or ``chunk_size`` is below 1.
    """
    if n_rows < 0:
        raise DataworthError(f"The number of rows must be non-negative; got {n_rows}.")
    if chunk_size < 1:
        raise DataworthError(f"The chunk size must be at least 1; got {chunk_size}.")
    return [slice(start, min(start + chunk_size, n_rows)) for start in range(0, n_rows, chunk_size)]


def map_chunks(
    executor: cf.Executor,
    fn: Callable[[T], R],
    chunks: Sequence[T],
    on_result: Callable[[int, R], None] | None = None,
    *,
    max_in_flight: int | None = None,
) -> list[R]:
    """Run ``fn(chunk)`` for every chunk and return the results in chunk order.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        From :func:`make_executor`, or any other executor.
    fn : callable
        Applied to each chunk; must be picklable (module level) for process and Dask executors.
    chunks : sequence
        The work items.
    on_result : callable, optional
        Called as ``on_result(index, result)`` once per chunk, in completion order, in the
        calling thread, as soon as the chunk finishes: the engine writes each chunk to the store
        here, so a killed run keeps its finished work. If it raises, the rest is cancelled and
        the exception propagates.
    max_in_flight : int, optional
        Most chunks submitted but not yet handled. Defaults to 1 for :class:`SerialExecutor`
        (each chunk is stored before the next one runs, and a failure stops the run at once)
        and to no limit for other executors (the pool or the Dask scheduler does the queueing).

    Returns
    -------
    list
        ``[fn(chunks[0]), fn(chunks[1]), ...]``.

    Raises
    ------
    Exception
        The first exception raised by ``fn`` or ``on_result``; chunks not yet started are
        cancelled first.
    """
    n = len(chunks)
    if max_in_flight is None:
        max_in_flight = 1 if isinstance(executor, SerialExecutor) else max(n, 1)
    if max_in_flight < 1:
        raise DataworthError(f"max_in_flight must be at least 1; got {max_in_flight}.")

    results: list[Any] = [None] * n
    pending: dict[cf.Future[R], int] = {}
    next_index = 0
    try:
        while next_index < n or pending:
            # Top up the window, then handle whatever finishes first.
            while next_index < n and len(pending) < max_in_flight:
                pending[executor.submit(fn, chunks[next_index])] = next_index
                next_index += 1
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            # Handle finished chunks in index order when several finish together, so that
            # serial-like executors report in a predictable order.
            for future in sorted(done, key=pending.__getitem__):
                index = pending.pop(future)
                result = future.result()  # re-raises the chunk's exception
                results[index] = result
                if on_result is not None:
                    on_result(index, result)
    finally:
        # On any failure (a chunk, the callback, Ctrl-C) stop the work not yet started; on
        # success nothing is pending and this does nothing.
        for future in pending:
            future.cancel()
    return results
