"""A batch of subsets for the batched logistic regression: its chunks, and the threads they run on.

Subsets are solved in groups of equal padded length (small subsets on their own rows, gathered
and zero-padded; the others on the shared rows) and, within a group, in chunks whose working set
stays within a memory budget. Neither the grouping nor the chunking changes a subset's arithmetic,
which depends on that subset alone (see :mod:`dataworth.learners.logreg.learner`), so the
chunks may run in any order and on several threads: NumPy releases the GIL in its array loops and
the stacked BLAS/LAPACK calls, and the rest of a chunk's work is a small share. A batch is solved on
several threads when its subsets span at least ``_THREAD_MIN_ROWS`` rows in all, on as many as
:func:`dataworth.machine.usable_threads` gives (every usable core, or the share the engine gave this
worker); the values are the same bits whatever the number of threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from dataworth.learners.logreg.problem import (
    _chunk_size,
    _compact_length,
    _gather_rows,
    _Problem,
    _shared_rows,
    _structure,
)
from dataworth.machine import usable_threads

if TYPE_CHECKING:
    from dataworth.learners.logreg.newton import _NewtonSolver, _Reference

# Batches whose subsets span fewer (padded) rows than this in all are solved on one thread: such
# a batch takes a few milliseconds, which a pool's start and the threads' turns at the GIL would
# eat.
_THREAD_MIN_ROWS = 20_000


def solve_in_chunks(
    solver: _NewtonSolver,
    problem: _Problem,
    ref: _Reference,
    masks: np.ndarray,
    todo: np.ndarray,
    theta0: np.ndarray,
    at_ref: np.ndarray,
    params: np.ndarray,
    n_iter: np.ndarray,
    converged: np.ndarray,
    worst: np.ndarray,
) -> None:
    """Solve the subsets ``todo`` of ``masks``, filling their rows of the output arrays.

    ``theta0`` and ``at_ref`` are every subset's warm start and whether it is the full-data
    solution; ``n_iter`` is added to (the one-out path may have taken steps already).
    """
    length = _compact_length(masks[todo].sum(axis=1), problem.n)
    threads = _threads(int(np.where(length == 0, problem.n, length).sum()))
    chunks = []
    for m in np.unique(length):
        group = todo[length == m]
        # The memory budget is shared by the chunks solved at once.
        step = _chunk_size(problem, int(m), threads)
        chunks += [(group[start : start + step], int(m)) for start in range(0, len(group), step)]

    def solve(chunk: tuple[np.ndarray, int]) -> None:
        idx, m = chunk
        full_masks = masks[idx]
        struct = _structure(problem, full_masks)
        if m == 0:
            rows, chunk_masks = _shared_rows(problem), full_masks
        else:
            rows, chunk_masks = _gather_rows(problem, full_masks, m)
        out = solver._solve_chunk(problem, ref, rows, chunk_masks, struct, theta0[idx], at_ref[idx])
        params[idx], converged[idx], worst[idx] = out[0], out[2], out[3]
        n_iter[idx] += out[1]

    threads = min(threads, len(chunks))
    if threads <= 1:
        for chunk in chunks:
            solve(chunk)
        return
    # Largest chunks first, so that the threads finish together.
    chunks.sort(key=lambda c: -len(c[0]) * (c[1] or problem.n))
    pool = ThreadPoolExecutor(threads, thread_name_prefix="dataworth-logreg")
    try:
        list(pool.map(solve, chunks))  # list() re-raises a chunk's exception
    finally:
        # On an error or Ctrl-C, chunks not yet started are dropped rather than run.
        pool.shutdown(wait=True, cancel_futures=True)


def _threads(rows: int) -> int:
    """Threads for a batch whose subsets span ``rows`` padded rows in all."""
    return 1 if rows < _THREAD_MIN_ROWS else usable_threads()
