"""Exact Shapley values of the k-nearest-neighbour utility (Jia et al., VLDB 2019).

For one test row ``(x, y)`` sort the training points by distance to ``x``: ``a_1`` nearest,
``a_N`` farthest. The utility of a subset ``S`` is the share of the ``k`` neighbour slots held by
members of ``S`` of the test row's label::

    u(S) = (1/k) * #{ the min(k, |S|) nearest members of S whose label is y }

(the paper's unweighted KNN classifier utility; it divides by ``k`` even when ``|S| < k``, and
``u(empty) = 0``). Theorem 1 of the paper gives its Shapley values in closed form, from the
farthest point inwards::

    s(a_N) = 1[y_{a_N} = y] / N
    s(a_i) = s(a_{i+1}) + (1[y_{a_i} = y] - 1[y_{a_{i+1}} = y]) / k * min(k, i) / i

so one sort and one reversed cumulative sum value every training point: ``O(N log N)`` per test
row and no model fit. The utility of the test set is the mean of the per-row utilities, and by
linearity its Shapley values are the mean of the per-row values.

Distances and their order are those of :class:`~dataworth.learners.BatchedKNN`: squared Euclidean
distances, ties ordered by training position (a stable sort). For ``|S| >= k`` the per-row utility
is exactly the vote share of the true class that the KNN classifier predicts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.machine import usable_cpus
from dataworth.methods._common import Timer
from dataworth.methods.result import ValuationResult, package_versions

# Working memory of one block of test rows: a few (B, N) arrays of 8 bytes each are alive at
# once (distances, order, values in rank order, values scattered back), so B * N * 8 * 5 bytes.
_BLOCK_BYTES = 64 * 2**20
_ARRAYS_PER_ROW = 5


def _as_task(task_or_utility) -> Task:
    if isinstance(task_or_utility, Task):
        return task_or_utility
    task = getattr(task_or_utility, "task", None)
    if isinstance(task, Task):
        return task
    raise DataworthError(
        "knn_shapley needs a Task (or a Utility, whose task is used); a plain Game has no "
        "features to measure distances on."
    )


@functools.cache
def _rank_values_kernel():
    """The compiled recursion-and-scatter, or ``None`` when Numba is not installed."""
    try:
        from dataworth.methods.knn.kernels import rank_values
    except ImportError:
        return None
    return rank_values


@functools.cache
def _order_kernels():
    """The compiled distances and stable sort, or ``None`` when Numba is not installed."""
    try:
        from dataworth.methods.knn.kernels import squared_distances, stable_order
    except ImportError:
        return None
    return squared_distances, stable_order


def _neighbour_order(
    X_train: np.ndarray, X_query: np.ndarray, x_sq: np.ndarray | None = None
) -> np.ndarray:
    """Training positions sorted by distance to each query row, ties by position.

    The same arithmetic as :meth:`BatchedKNN.neighbour_order`, so both order the neighbours
    identically (exact duplicates give exactly equal distances and fall back on position).
    ``x_sq`` (the training rows' squared norms, ``(X_train**2).sum(axis=1)``) may be passed to
    compute it once for many blocks. With Numba, a fused pass builds the distances and a radix
    sort (stable, linear) orders them; without it, NumPy's sort finds each row's order and rows
    with tied distances are sorted again stably.
    """
    if x_sq is None:
        x_sq = (X_train**2).sum(axis=1)
    cross = X_query @ X_train.T
    kernels = _order_kernels()
    if kernels is not None:
        squared_distances, stable_order = kernels
        sq = squared_distances((X_query**2).sum(axis=1), cross, x_sq, cross)  # in place
        return stable_order(sq, np.empty(sq.shape, dtype=np.int64))
    sq = (X_query**2).sum(axis=1)[:, None] - 2.0 * cross + x_sq[None, :]
    order = np.argsort(sq, axis=1)
    keys = np.take_along_axis(sq, order, axis=1)
    tied = (keys[:, 1:] == keys[:, :-1]).any(axis=1)
    if tied.any():
        order[tied] = np.argsort(sq[tied], axis=1, kind="stable")
    return order


def _rank_coefficients(n: int, k: int) -> np.ndarray:
    """``min(k, i) / (k * i)`` for ranks ``i = 1 .. n - 1`` (the recursion's step weights)."""
    i = np.arange(1, n, dtype=np.float64)
    return np.minimum(k, i) / (k * i)


def _block_values(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_rows: np.ndarray,
    y_rows: np.ndarray,
    k: int,
    coef: np.ndarray,
    x_sq: np.ndarray | None = None,
) -> np.ndarray:
    """Per-test-row KNN-Shapley values of every training point, shape ``(B, N)``."""
    n = len(y_train)
    order = _neighbour_order(X_train, X_rows, x_sq)  # (B, N)
    kernel = _rank_values_kernel()
    if kernel is not None:
        return kernel(order, y_train, y_rows, coef, np.empty(order.shape))
    match = (y_train[order] == y_rows[:, None]).astype(np.float64)
    # Unrolled recursion: s_i = s_N + sum_{j=i}^{N-1} (m_j - m_{j+1}) * min(k, j) / (k j),
    # a reversed cumulative sum over ranks.
    steps = (match[:, :-1] - match[:, 1:]) * coef[None, :]
    in_rank = np.empty_like(match)
    in_rank[:, -1] = match[:, -1] / n
    if n > 1:
        in_rank[:, :-1] = np.cumsum(steps[:, ::-1], axis=1)[:, ::-1] + in_rank[:, -1:]
    out = np.empty_like(in_rank)
    np.put_along_axis(out, order, in_rank, axis=1)
    return out


def knn_shapley_matrix(
    task: Task,
    k: int = 10,
    *,
    test_rows: Sequence[int] | None = None,
    block_rows: int | None = None,
) -> np.ndarray:
    """Per-test-row KNN-Shapley values as a matrix.

    Parameters
    ----------
    task : Task
        Training and test rows.
    k : int, default=10
        Number of neighbours.
    test_rows : sequence of int, optional
        Positions of the test rows; default all of them.
    block_rows : int, optional
        Test rows processed together; by default as many as fit in about 64 MB.

    Returns
    -------
    ndarray of shape (len(test_rows), n_train)
        Row ``t`` holds the Shapley values of the per-row utility of test row ``test_rows[t]``.
        Each row sums to that row's utility of the full training set (efficiency, with
        ``u(empty) = 0``).
    """
    k = _check_k(k)
    rows = np.arange(task.n_test) if test_rows is None else _check_rows(task, test_rows)
    block = _block_size(task.n_train, block_rows)
    coef = _rank_coefficients(task.n_train, k)
    x_sq = (task.X_train**2).sum(axis=1)
    out = np.empty((len(rows), task.n_train))
    for start in range(0, len(rows), block):
        sel = rows[start : start + block]
        out[start : start + len(sel)] = _block_values(
            task.X_train, task.y_train, task.X_test[sel], task.y_test[sel], k, coef, x_sq
        )
    return out


def knn_shapley(
    task,
    k: int = 10,
    *,
    test_rows: int | Sequence[int] | None = None,
    block_rows: int | None = None,
    n_jobs: int | None = None,
) -> ValuationResult | dict[int, ValuationResult]:
    """Exact Shapley values of the k-nearest-neighbour utility (Jia et al., VLDB 2019).

    The utility of a training subset ``S`` for one test row is
    ``u(S) = (1/k) * #{the min(k, |S|) nearest members of S with the test row's label}``, with
    ``u(empty) = 0`` and the division by ``k`` kept even when ``|S| < k`` (the paper's
    definition; for ``|S| >= k`` it is the KNN classifier's predicted probability of the true
    class). The test-set utility is its mean over test rows. Values come from the paper's
    closed-form recursion (Theorem 1): no model is fitted, ``O(N log N)`` per test row,
    vectorised over blocks of test rows so memory stays bounded for large test sets.

    Parameters
    ----------
    task : Task or Utility
        The training and test rows (for a Utility, its task; the values are those of the KNN
        utility above, not of the Utility's learner and metric).
    k : int, default=10
        Number of neighbours.
    test_rows : int or sequence of int, optional
        ``None`` (default): values of the test-set utility, averaged over all test rows.
        An int: the per-prediction values of that test row (its position in the test set).
        A sequence: a dict mapping each listed row to its own result, e.g. ``test_rows=[j]``
        gives ``{j: result}``.
    block_rows : int, optional
        Test rows processed together; by default as many as fit in about 64 MB of work space.
    n_jobs : int, optional
        Threads computing blocks of test rows at once (``None``: every core this process may
        use). Blocks are summed in order, so the values are the same for any ``n_jobs``; at
        most two blocks per thread are held.

    Returns
    -------
    ValuationResult or dict of int to ValuationResult
        Values in training order, in the utility's units (share of neighbour slots, so values of
        one row lie in ``[-1/k, 1/k]`` up to the ``1/N`` boundary term). They sum to ``u(D)``
        (efficiency). ``n_evaluations`` and ``n_fitted`` are 0: no utility is evaluated.

    References
    ----------
    Jia, R., Dao, D., Wang, B., Hubis, F. A., Gurel, N. M., Li, B., Zhang, C., Spanos, C. J. and
    Song, D. "Efficient Task-Specific Data Valuation for Nearest Neighbor Algorithms",
    PVLDB 12(11), 2019.

    Examples
    --------
    >>> import dataworth as dw
    >>> from dataworth.methods.knn.shapley import knn_shapley
    >>> task = dw.load_dataset("iris", seed=0)
    >>> result = knn_shapley(task, k=5)
    >>> len(result) == task.n_train
    True
    """
    task = _as_task(task)
    k = _check_k(k)
    timer = Timer()
    single = test_rows is not None and np.isscalar(test_rows)
    base_params = {"k": k, "utility": "knn vote share of the true class (u(empty)=0)"}
    info = {
        "versions": package_versions(),
        "task": task.name,
        "task_fingerprint": task.fingerprint,
        "learner": f"knn closed form (k={k})",
    }
    ids = task.train_ids

    def build(values: np.ndarray, params: dict) -> ValuationResult:
        return ValuationResult(
            method="knn_shapley",
            values=values,
            player_ids=ids,
            counts=np.zeros(task.n_train, dtype=np.int64),
            exact=True,
            params=base_params | params,
            n_evaluations=0,
            n_fitted=0,
            timings=dict(timer.seconds),
            manifest=info | {"full_value": float(values.sum())},
        )

    if test_rows is None:
        block = _block_size(task.n_train, block_rows)
        coef = _rank_coefficients(task.n_train, k)
        x_sq = (task.X_train**2).sum(axis=1)
        total = np.zeros(task.n_train)

        def block_sum(start: int) -> np.ndarray:
            sel = slice(start, start + block)
            return _block_values(
                task.X_train, task.y_train, task.X_test[sel], task.y_test[sel], k, coef, x_sq
            ).sum(axis=0)

        starts = range(0, task.n_test, block)
        with timer.phase("values"):
            # Accumulate block sums in order so only a block of (B, N) values per thread is
            # ever held, and the sum does not depend on the threads.
            if n_jobs is None:
                n_jobs = max(1, min(usable_cpus(), len(starts)))
            if n_jobs == 1:
                for start in starts:
                    total += block_sum(start)
            else:
                _check_jobs(n_jobs)
                with ThreadPoolExecutor(int(n_jobs)) as pool:
                    # map() submits every block at once; a window of 2 n_jobs bounds memory.
                    window = 2 * int(n_jobs)
                    for first in range(0, len(starts), window):
                        for part in pool.map(block_sum, starts[first : first + window]):
                            total += part
        return build(total / max(task.n_test, 1), {"target": "metric", "n_test": task.n_test})

    rows = _check_rows(task, [test_rows] if single else test_rows)
    with timer.phase("values"):
        matrix = knn_shapley_matrix(task, k, test_rows=rows, block_rows=block_rows)
    results = {int(r): build(matrix[t], {"target": f"test:{int(r)}"}) for t, r in enumerate(rows)}
    return results[int(rows[0])] if single else results


def _check_jobs(n_jobs) -> None:
    if int(n_jobs) != n_jobs or n_jobs < 1:
        raise DataworthError(f"n_jobs must be a positive number of threads; got {n_jobs!r}.")


def _check_k(k: int) -> int:
    if int(k) != k or k < 1:
        raise DataworthError(f"k must be a positive integer number of neighbours; got {k!r}.")
    return int(k)


def _check_rows(task: Task, rows) -> np.ndarray:
    rows = np.asarray(rows).reshape(-1)
    if rows.size == 0:
        raise DataworthError("Give at least one test row.")
    if not np.issubdtype(rows.dtype, np.integer):
        raise DataworthError("Test rows are positions in the test set (integers).")
    bad = rows[(rows < 0) | (rows >= task.n_test)]
    if bad.size:
        raise DataworthError(
            f"Test row {int(bad[0])} does not exist; test rows are 0..{task.n_test - 1}."
        )
    return rows.astype(np.int64)


def _block_size(n_train: int, block_rows: int | None) -> int:
    if block_rows is not None:
        if int(block_rows) != block_rows or block_rows < 1:
            raise DataworthError("block_rows must be a positive integer.")
        return int(block_rows)
    return max(1, _BLOCK_BYTES // (8 * _ARRAYS_PER_ROW * max(n_train, 1)))
