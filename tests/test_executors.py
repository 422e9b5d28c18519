"""Tests for executors and chunked mapping.

Task functions are module level so that process and Dask workers can import them by reference
(``tests/`` has no ``__init__``; pytest puts it on ``sys.path`` and workers inherit that path).
"""

from __future__ import annotations

import concurrent.futures as cf
import sys
import threading
import time

import numpy as np
import pytest

from dataworth.engine.executors import (
    SerialExecutor,
    chunk_rows,
    make_executor,
    map_chunks,
)
from dataworth.errors import DataworthError

N_ROWS = 103
CHUNK = 10


def seeded_chunk(rows: slice) -> np.ndarray:
    """A pure function of its chunk: one SeedSequence child per row, as the engine does."""
    children = np.random.SeedSequence(1234).spawn(N_ROWS)[rows]
    return np.array([np.random.default_rng(c).normal() for c in children])


def slow_if_first(index: int) -> int:
    # The first chunk finishes last, so completion order differs from chunk order.
    time.sleep(0.2 if index == 0 else 0.01)
    return index * index


def fail_on_three(index: int) -> int:
    if index == 3:
        raise ValueError(f"chunk {index} failed")
    return index


def _expected() -> np.ndarray:
    return np.concatenate([seeded_chunk(s) for s in chunk_rows(N_ROWS, N_ROWS)])


def _run(backend: str, **kwargs) -> tuple[np.ndarray, list[int]]:
    seen: list[int] = []
    chunks = chunk_rows(N_ROWS, CHUNK)
    with make_executor(backend, **kwargs) as executor:
        results = map_chunks(executor, seeded_chunk, chunks, lambda i, _: seen.append(i))
    return np.concatenate(results), seen


# -- chunk_rows ----------------------------------------------------------------------------------


def test_chunk_rows() -> None:
    assert chunk_rows(0, 5) == []
    assert chunk_rows(5, 5) == [slice(0, 5)]
    assert chunk_rows(7, 3) == [slice(0, 3), slice(3, 6), slice(6, 7)]
    covered = np.concatenate([np.arange(N_ROWS)[s] for s in chunk_rows(N_ROWS, CHUNK)])
    np.testing.assert_array_equal(covered, np.arange(N_ROWS))
    with pytest.raises(DataworthError):
        chunk_rows(5, 0)
    with pytest.raises(DataworthError):
        chunk_rows(-1, 2)


# -- serial --------------------------------------------------------------------------------------


def test_serial_executor_captures_exceptions() -> None:
    executor = SerialExecutor()
    assert executor.submit(pow, 2, 10).result() == 1024
    future = executor.submit(fail_on_three, 3)
    assert future.done() and isinstance(future.exception(), ValueError)
    assert list(executor.map(abs, [-1, -2])) == [1, 2]
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(abs, 1)


def test_serial_map_chunks_reports_each_chunk_before_running_the_next() -> None:
    events: list[str] = []

    def work(i: int) -> int:
        events.append(f"run {i}")
        return i

    with make_executor("serial") as executor:
        map_chunks(executor, work, [0, 1, 2], lambda i, r: events.append(f"store {i}"))
    assert events == ["run 0", "store 0", "run 1", "store 1", "run 2", "store 2"]


def test_serial_results_and_callbacks() -> None:
    values, seen = _run("serial")
    np.testing.assert_array_equal(values, _expected())
    assert seen == list(range(len(chunk_rows(N_ROWS, CHUNK))))


def test_failure_cancels_the_rest_and_propagates() -> None:
    ran: list[int] = []

    def work(i: int) -> int:
        ran.append(i)
        return fail_on_three(i)

    with make_executor("serial") as executor:
        with pytest.raises(ValueError, match="chunk 3 failed"):
            map_chunks(executor, work, list(range(10)))
    assert ran == [0, 1, 2, 3]


def test_failing_callback_propagates() -> None:
    def callback(i: int, _: int) -> None:
        if i == 1:
            raise OSError("disk full")

    with make_executor("serial") as executor:
        with pytest.raises(OSError, match="disk full"):
            map_chunks(executor, abs, [0, 1, 2], callback)


def test_map_chunks_with_no_chunks() -> None:
    with make_executor("serial") as executor:
        assert map_chunks(executor, abs, []) == []


def test_bad_arguments() -> None:
    with pytest.raises(DataworthError, match="Unknown executor backend"):
        with make_executor("threads"):
            pass
    with pytest.raises(DataworthError, match="positive integer"):
        with make_executor("processes", n_workers=0):
            pass
    with pytest.raises(DataworthError, match="dask backend"):
        with make_executor("processes", scheduler="tcp://127.0.0.1:8786"):
            pass


# -- processes -----------------------------------------------------------------------------------


def test_processes_match_serial() -> None:
    values, seen = _run("processes", n_workers=2)
    np.testing.assert_array_equal(values, _expected())
    assert sorted(seen) == list(range(len(chunk_rows(N_ROWS, CHUNK))))


def test_results_in_chunk_order_callbacks_in_completion_order() -> None:
    # Deterministic: chunk 0 cannot finish until chunk 3 has been reported.
    chunk3_reported = threading.Event()
    seen: list[int] = []

    def work(i: int) -> int:
        if i == 0:
            assert chunk3_reported.wait(timeout=10)
        return i * i

    def on_result(i: int, _: int) -> None:
        seen.append(i)
        if i == 3:
            chunk3_reported.set()

    with cf.ThreadPoolExecutor(max_workers=4) as executor:
        results = map_chunks(executor, work, list(range(4)), on_result)
    assert results == [0, 1, 4, 9]
    assert sorted(seen) == [0, 1, 2, 3]
    assert seen[-1] == 0  # reported when it finished, not held back for chunk order


def test_processes_return_chunk_order() -> None:
    seen: list[int] = []
    with make_executor("processes", n_workers=2) as executor:
        assert isinstance(executor, cf.Executor)
        results = map_chunks(executor, slow_if_first, list(range(4)), lambda i, _: seen.append(i))
    assert results == [0, 1, 4, 9]
    assert sorted(seen) == [0, 1, 2, 3]


def test_processes_failure_propagates() -> None:
    with make_executor("processes", n_workers=2) as executor:
        with pytest.raises(ValueError, match="chunk 3 failed"):
            map_chunks(executor, fail_on_three, list(range(8)))


# -- dask ----------------------------------------------------------------------------------------


def test_dask_local_cluster_matches_serial() -> None:
    pytest.importorskip("distributed")
    seen: list[int] = []
    chunks = chunk_rows(N_ROWS, CHUNK)
    with make_executor("dask", n_workers=2) as executor:
        values = np.concatenate(
            map_chunks(executor, seeded_chunk, chunks, lambda i, _: seen.append(i))
        )
        with pytest.raises(ValueError, match="chunk 3 failed"):
            map_chunks(executor, fail_on_three, list(range(6)))
    np.testing.assert_array_equal(values, _expected())
    assert sorted(seen) == list(range(len(chunks)))


def test_unreachable_scheduler_is_a_dataworth_error() -> None:
    pytest.importorskip("distributed")
    start = time.perf_counter()
    with pytest.raises(DataworthError, match=r"Cannot reach the Dask scheduler at tcp://127\.0"):
        with make_executor("dask", scheduler="tcp://127.0.0.1:1"):
            pass
    assert time.perf_counter() - start < 15


def test_missing_dask_is_a_dataworth_error(monkeypatch) -> None:
    # A None entry in sys.modules makes `import distributed` raise ImportError.
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(DataworthError, match=r'pip install "dataworth\[dask\]"'):
        with make_executor("dask"):
            pass


def test_serial_executor_lets_keyboard_interrupt_through() -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SerialExecutor().submit(interrupted)
