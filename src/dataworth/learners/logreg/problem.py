"""The training set and the subsets as the batched logistic regression sees them.

A task's rows prepared once (:class:`_Problem`), which parameter rows each subset optimises and
which classes its model knows (:class:`_Structure`, built by :func:`_structure`), the rows a chunk
of subsets is computed on (:class:`_Rows`), how warm starts map onto a subset's parametrisation
(:func:`_project`), and how many subsets a chunk holds (:func:`_chunk_size`). Used by
:mod:`dataworth.learners.logreg.learner` and its solvers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataworth.errors import DataworthError
from dataworth.learners.memory import chunk_budget

# Working-set budget for one internal chunk of subsets (bytes); smaller when memory is short
# (a quarter of the available memory, see :mod:`dataworth.learners.memory`). Larger chunks spend
# less per subset on the solver's Python steps, which hold the GIL while chunks run on threads:
# AME's 4,000 fits on 2,000 rows on two threads took 2.5 s with 32 MiB against 2.8 s with 8 MiB.
_CHUNK_BYTES = 32 * 2**20


class LogisticConvergenceWarning(RuntimeWarning):
    """Some subsets did not reach the gradient tolerance; see the ``converged`` flags."""


@dataclass(frozen=True)
class _Problem:
    """One training set prepared for the solver (shared by all subsets)."""

    Xa: np.ndarray  # (n, d + 1): features with a trailing column of ones
    y: np.ndarray  # (n,) int64 labels
    n_classes: int
    targets: np.ndarray  # (n, R) float: 1 where row i's label is parametrised row r's class

    @property
    def n_rows(self) -> int:
        """R: 1 for a binary task (class 1 against class 0), else one row per class."""
        return 1 if self.n_classes == 2 else self.n_classes

    @property
    def width(self) -> int:
        return self.Xa.shape[1]

    @property
    def n_params(self) -> int:
        return self.n_rows * self.width

    @property
    def n(self) -> int:
        return self.Xa.shape[0]


@dataclass(frozen=True)
class _Structure:
    """Which parameter rows each subset optimises, and which classes its model knows."""

    present: np.ndarray  # (k, n_classes) bool: class occurs in the subset
    free: np.ndarray  # (k, R) bool: parameter row is optimised
    # (k, P) float 1/0: coefficient entries of free rows (the penalised, free coordinates)
    penalised: np.ndarray
    # (k, P) float 1/0: all entries of free rows
    free_params: np.ndarray
    # (k, n_classes) 0 or -inf added to the logits: absent classes get probability 0
    logit_offset: np.ndarray
    size: np.ndarray  # (k,) float |S|

    def take(self, idx: np.ndarray) -> _Structure:
        return _Structure(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class _Rows:
    """The training rows a chunk of subsets is computed on.

    Either the task's rows, shared by every subset (arrays of shape ``(n, ...)``), or, for small
    subsets, each subset's own rows gathered in ascending order and padded with zero rows to a
    length that depends on the subset's size alone (arrays of shape ``(k, m, ...)``).
    """

    Xa: np.ndarray  # (m, d + 1) or (k, m, d + 1)
    y: np.ndarray  # (m,) or (k, m)
    targets: np.ndarray  # (m, R) or (k, m, R)

    @property
    def stacked(self) -> bool:
        return self.Xa.ndim == 3

    @property
    def length(self) -> int:
        return self.Xa.shape[-2]

    def take(self, idx: np.ndarray) -> _Rows:
        # ``idx`` is sorted and unique (from flatnonzero): all of them means no copy is needed.
        if not self.stacked or len(idx) == len(self.Xa):
            return self
        return _Rows(self.Xa[idx], self.y[idx], self.targets[idx])


def _augment(X: np.ndarray) -> np.ndarray:
    Xa = np.empty((X.shape[0], X.shape[1] + 1))
    Xa[:, :-1] = X
    Xa[:, -1] = 1.0
    return Xa


def _make_problem(X: np.ndarray, y: np.ndarray, n_classes: int) -> _Problem:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise DataworthError("X must be (n, d) and y must hold one label per row of X.")
    if n_classes < 2:
        raise DataworthError("Logistic regression needs at least two classes.")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise DataworthError("Labels must be encoded as 0..n_classes-1.")
    y = y.astype(np.int64)
    if n_classes == 2:
        targets = (y == 1).astype(np.float64)[:, None]
    else:
        targets = np.zeros((len(y), n_classes))
        targets[np.arange(len(y)), y] = 1.0
    return _Problem(Xa=_augment(X), y=y, n_classes=int(n_classes), targets=targets)


def _class_presence(y: np.ndarray, masks: np.ndarray, n_classes: int) -> np.ndarray:
    present = np.zeros((len(masks), n_classes), dtype=bool)
    block = max(1, 2**22 // max(masks.shape[1], 1))  # bounded temporaries for large K x n
    for start in range(0, len(masks), block):
        rows = masks[start : start + block]
        for c in range(n_classes):
            present[start : start + block, c] = (rows & (y == c)[None, :]).any(axis=1)
    return present


def _chunk_size(problem: _Problem, length: int = 0, threads: int = 1) -> int:
    """Subsets per internal chunk: about 8 arrays of shape (m, n_classes + 1) each, plus the
    gathered rows and two (P, P) matrices; ``m = length``, or ``n`` when it is 0.

    The chunk's budget is ``_CHUNK_BYTES``, or a quarter of the available memory when that is
    less, shared by the ``threads`` chunks solved at once; a subset's arithmetic never depends
    on its chunk, so neither do the values.
    """
    m = length or problem.n
    per_subset = 8 * m * 8 * (problem.n_classes + 1) + 8 * 2 * problem.n_params**2
    if length:
        per_subset += 8 * m * (problem.width + problem.n_rows + 1)
    budget = min(_CHUNK_BYTES, chunk_budget(_CHUNK_BYTES * threads) // threads)
    return max(1, budget // per_subset)


def _compact_length(sizes: np.ndarray, n: int) -> np.ndarray:
    """Padded row count for solving each subset on its own rows, or 0 for the shared rows.

    The length depends on ``|S|`` alone (so a subset's arithmetic never depends on its batch)
    and exceeds it by at most a quarter (or 7 rows); subsets whose length would pass ``n / 2``
    use the shared rows, where the work is ``O(n)`` per subset anyway.
    """
    s = np.maximum(np.asarray(sizes, dtype=np.int64), 1)
    grain = np.maximum(8, 2 ** np.maximum(np.floor(np.log2(s)).astype(np.int64) - 2, 0))
    length = grain * -(-s // grain)
    return np.where(2 * length <= n, length, 0)


def _require_two_classes(problem: _Problem, masks: np.ndarray) -> None:
    too_few = _class_presence(problem.y, masks, problem.n_classes).sum(axis=1) < 2
    if too_few.any():
        first = int(np.flatnonzero(too_few)[0])
        raise DataworthError(
            f"Subset {first} has fewer than two classes; logistic regression cannot be "
            "fitted on it (the engine scores such subsets with the prior-only policy)."
        )


def _chain_groups(chains: np.ndarray, K: int) -> list[np.ndarray]:
    """Row indices of each chain, in order of first appearance; rows keep their order."""
    chains = np.asarray(chains).reshape(-1)
    if chains.shape != (K,):
        raise DataworthError(f"chains must hold one label per subset ({K}); got {chains.shape}.")
    labels, first = np.unique(chains, return_index=True)
    inverse = np.searchsorted(labels, chains)
    rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")[inverse]
    order = np.lexsort((np.arange(K), rank))
    bounds = np.flatnonzero(np.diff(rank[order])) + 1
    return np.split(order, bounds)


def _shared_rows(problem: _Problem) -> _Rows:
    return _Rows(problem.Xa, problem.y, problem.targets)


def _gather_rows(problem: _Problem, masks: np.ndarray, length: int) -> tuple[_Rows, np.ndarray]:
    """Each subset's rows in ascending order, zero-padded to ``length``; and their masks."""
    n = masks.shape[1]
    sizes = masks.sum(axis=1)
    first = np.argsort(~masks, axis=1, kind="stable")[:, :length]  # included rows come first
    inside = np.arange(length)[None, :] < sizes[:, None]
    pos = np.where(inside, first, n)  # position n is an all-zero padding row
    Xa = np.concatenate([problem.Xa, np.zeros((1, problem.width))])
    y = np.concatenate([problem.y, np.zeros(1, dtype=problem.y.dtype)])
    targets = np.concatenate([problem.targets, np.zeros((1, problem.targets.shape[1]))])
    return _Rows(Xa[pos], y[pos], targets[pos]), inside


def _proba_width(problem: _Problem) -> int:
    return 1 if problem.n_rows == 1 else problem.n_classes


def _structure(problem: _Problem, masks: np.ndarray) -> _Structure:
    k, C, rows, width = len(masks), problem.n_classes, problem.n_rows, problem.width
    present = _class_presence(problem.y, masks, C)
    if rows == 1:
        free = np.ones((k, 1), dtype=bool)
    else:
        free = present.copy()
        # With exactly two classes scikit-learn fits a binary model: the first present class's
        # parameters stay at zero and the second's are the binary model's.
        two = present.sum(axis=1) == 2
        first = present.argmax(axis=1)
        free[np.flatnonzero(two), first[two]] = False
    free_params = np.repeat(free, width, axis=1).astype(np.float64)
    coef_entry = np.ones(width)
    coef_entry[-1] = 0.0
    penalised = free_params * np.tile(coef_entry, rows)[None, :]
    logit_offset = np.where(present, 0.0, -np.inf)
    size = masks.sum(axis=1).astype(np.float64)
    return _Structure(present, free, penalised, free_params, logit_offset, size)


def _project(problem: _Problem, theta: np.ndarray, struct: _Structure) -> np.ndarray:
    """Map warm starts onto each subset's parametrisation, keeping the predicted probabilities.

    Absent classes' rows become zero; with two classes the second's row becomes its difference
    from the first's (the binary model with the same log-odds) and the first's becomes zero; with
    three or more the intercepts are centred (the solution returned has intercepts summing to 0).
    """
    rows, width = problem.n_rows, problem.width
    if rows == 1:
        return theta
    k = len(theta)
    W = theta.reshape(k, rows, width)
    present = struct.present
    n_present = present.sum(axis=1)
    two = np.flatnonzero(n_present == 2)
    if two.size:
        first = present[two].argmax(axis=1)
        second = rows - 1 - present[two][:, ::-1].argmax(axis=1)
        W[two, second] -= W[two, first]
        W[two, first] = 0.0
    W[~present] = 0.0
    many = np.flatnonzero(n_present >= 3)
    if many.size:
        b = W[many, :, -1]
        mean = b.sum(axis=1, where=present[many]) / n_present[many]
        W[many, :, -1] = np.where(present[many], b - mean[:, None], 0.0)
    return W.reshape(k, -1)
