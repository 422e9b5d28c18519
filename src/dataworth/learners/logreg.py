"""Logistic regression fitted exactly on many training subsets at once (docs/design.md, section 4).

The objective is scikit-learn's ``LogisticRegression(C=C)`` (L2 penalty, intercept fitted and not
penalised)::

    C * sum_{i in S} loss_i + 0.5 * ||W||^2

* **Two task classes**: one weight vector and intercept, ``P(class 1) = sigmoid(w.x + b)``.
* **Three or more task classes**: multinomial softmax with one coefficient row and intercept per
  class (scikit-learn's symmetric parametrisation). The intercepts are only defined up to a common
  constant; like scikit-learn (whose solver never leaves the subspace it starts in) we return the
  solution whose intercepts sum to zero.
* A multiclass subset that lacks some classes is fitted as scikit-learn fits it: over the classes it
  contains only (the absent ones get probability exactly 0). With exactly two classes present
  scikit-learn fits a *binary* model; that is the softmax model with the first present class's
  parameters frozen at 0, which is how it is represented here.

Parameters are stored per subset as one flat vector of length ``R * (d + 1)``: ``R`` rows (``R = 1``
for a binary task, ``R = n_classes`` otherwise), each row ``[w_1 .. w_d, b]``. Rows of absent or
frozen classes are zero.

The solver is Newton's method vectorised over subsets (a subset is a 0/1 weight per row):

* every subset starts from a warm start, by default the full-data solution, which is computed once
  per task and cached on the instance;
* the Hessian at the reference point is obtained for a subset close to the full set by subtracting
  the excluded rows' curvature from the full-data Hessian (``O(|excluded| d^2)`` instead of
  ``O(n d^2)``), and otherwise from the included rows; for a binary task and a subset that leaves
  out one row (LOO) its inverse is a Sherman-Morrison update of the full-data inverse, so no
  per-subset factorisation is needed at all; a multinomial task of at least ``_ONE_OUT_MIN_ROWS``
  rows (a binary task of ``_ONE_OUT_MIN_ROWS_BINARY``) solves its one-out subsets in compiled code
  with a Woodbury update of the full-data inverse instead (:mod:`dataworth.learners.logreg_one_out`,
  with Numba);
* a subset of at most about ``n / 2`` rows is solved on its own rows (gathered in ascending order
  and zero-padded to a length fixed by ``|S|``), so its work is ``O(|S|)`` rather than ``O(n)``
  per step;
* steps solve with the Hessian (LAPACK ``gesv`` per subset), which costs a third of an inverse;
* a Hessian is reused across steps (a chord iteration, each step costing only ``O(n d)``) while it
  makes the gradient contract fast, and recomputed at the current point otherwise;
* each step is safeguarded by a per-subset backtracking line search (Armijo on the objective);
* a subset stops as soon as the max-abs gradient of the mean-scaled objective
  ``sum loss / |S| + ||W||^2 / (2 C |S|)`` is at most ``tol``; it is then frozen.

*Chains* of nested subsets (a TMC permutation's prefixes) take another path when Numba is
installed: each chain is solved in order, every member warm-started from the one before, by
compiled BFGS steps (:mod:`dataworth.learners.logreg_chains`), to the same tolerance. A multiclass
chain is solved in runs of members with the same classes present; where a class joins, the last
solution is projected onto the new parametrisation exactly as a warm start is here.

**Bitwise determinism.** A subset's result never depends on the other subsets in its batch or on the
batch size: every per-subset quantity is computed by stacked operations that treat each subset's
matrices on their own with a fixed shape (``np.matmul`` on 3-D stacks, stacked ``np.linalg.inv``,
row-wise reductions), never by a 2-D matrix product whose rows mix subsets (BLAS may block those
differently with the batch size). Every decision (which Hessian, step length, when to stop) is taken
per subset from that subset's numbers alone. In a chain, a member's result depends on its chain's
earlier members as well, and still on nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.learners.logreg_chains import (
    chain_kernel,
    class_runs,
    join_order,
    softmax_chain_kernel,
)
from dataworth.learners.logreg_one_out import (
    OneOutReference,
    one_out_kernels,
    prepare_one_out,
    solve_one_out,
)
from dataworth.learners.memory import chunk_budget

__all__ = ["BatchedLogisticRegression", "LogisticConvergenceWarning"]

# Bump when the solver's arithmetic changes, so cached utilities computed by an older solver are
# not mixed with new ones (part of the fingerprint).
_SOLVER_VERSION = "newton-chord-4"  # 4: the compiled one-out path on large tasks

# Armijo sufficient-decrease constant and the smallest step before a subset is declared stalled.
_ARMIJO = 1e-4
_MIN_STEP = 2.0**-40
# A reused (chord) Hessian is kept while each step shrinks the max-abs gradient by at least this
# factor and, at that rate, tol is reached within _CHORD_STEPS more steps.
_CHORD_CONTRACTION = 0.3
_CHORD_STEPS = 3
# Relative size of rounding noise in a summed objective: changes smaller than this are not
# evidence of an increase.
_OBJECTIVE_NOISE = 1e-12
# Working-set budget for one internal chunk of subsets (bytes); smaller when memory is short
# (a quarter of the available memory, see :mod:`dataworth.learners.memory`).
_CHUNK_BYTES = 8 * 2**20
# Keep the reference solutions of this many (task, parameters) pairs.
_CACHE_SIZE = 4
# Leave-one-out subsets take the compiled one-out path from this many training rows: multinomial
# (6x faster than the general solver at 1,000 rows, 4x at 10,000) and binary tasks (whose
# Sherman-Morrison path in NumPy is fast enough below). Smaller tasks keep the general solver and
# so exactly the values it has always given.
_ONE_OUT_MIN_ROWS = 1000
_ONE_OUT_MIN_ROWS_BINARY = 5000


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


@dataclass(frozen=True)
class _Reference:
    """The full-data solution and what subsets near the full set reuse from it."""

    theta: np.ndarray  # (P,)
    present: np.ndarray  # (n_classes,) classes in the full training set
    loss_sum: float  # sum of all rows' losses at theta (no penalty)
    grad_sum: np.ndarray  # (P,) data part of the gradient at theta (no penalty)
    hess_sum: np.ndarray  # (P, P) data part of the Hessian at theta (no penalty)
    proba: np.ndarray  # (n, R or n_classes) row probabilities at theta
    loss: np.ndarray  # (n,) per-row losses at theta
    resid: np.ndarray  # (n, R) per-row gradient weights (p - y) at theta
    converged: bool
    # Binary tasks only (else None): what a Sherman-Morrison update needs to give the inverse
    # Hessian of "all rows but i" at theta without a per-subset inverse.
    hinv: np.ndarray | None = None  # (P, P) inverse of the full objective's Hessian at theta
    lever: np.ndarray | None = None  # (n, P) row i is hinv @ x_i
    curv: np.ndarray | None = None  # (n,) p_i (1 - p_i), row i's curvature weight
    leverage: np.ndarray | None = None  # (n,) curv_i * x_i . hinv x_i (below 1)
    # Tasks large enough for the compiled one-out path (every class in the training set, Numba
    # installed): what it reuses (:mod:`dataworth.learners.logreg_one_out`).
    one_out: OneOutReference | None = None


class BatchedLogisticRegression:
    """L2-regularised logistic regression fitted exactly on many subsets in one call.

    Parameters
    ----------
    C : float, default 1.0
        Inverse regularisation strength, as in scikit-learn's ``LogisticRegression``.
    tol : float, default 1e-10
        A subset is converged when the max-abs gradient of its mean-scaled objective
        ``sum_{i in S} loss_i / |S| + ||W||^2 / (2 C |S|)`` is at most ``tol``. The error of a
        utility value scales with ``tol`` (LOO on breast cancer: about 1e-8 at ``tol=1e-8``,
        1e-10 at ``1e-10``), and LOO influences can be as small as 1e-6, so the default is two
        orders tighter than 1e-8; it costs about one more step per subset.
    max_iter : int, default 100
        Most Newton (or chord) steps per subset.

    Notes
    -----
    The full-data solution of each task is computed once and cached on the instance (it is the
    default warm start). The cache is dropped when the object is pickled, so the learner stays
    small when it is sent to worker processes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> masks = ~np.eye(5, len(X), dtype=bool)  # leave out each of the first 5 rows
    >>> model = BatchedLogisticRegression(C=1.0)
    >>> params, n_iter, converged = model.fit_batch(X, y, 2, masks)
    >>> params.shape, bool(converged.all())
    ((5, 31), True)
    """

    name = "logreg"
    batched = True
    #: The engine may pass chains of nested subsets (see :meth:`fit_batch`).
    supports_chains = True

    def __init__(self, C: float = 1.0, tol: float = 1e-10, max_iter: int = 100) -> None:
        if not (np.isfinite(C) and C > 0):
            raise DataworthError(f"C must be a positive number, got {C!r}.")
        if not (np.isfinite(tol) and tol > 0):
            raise DataworthError(f"tol must be a positive number, got {tol!r}.")
        if int(max_iter) != max_iter or max_iter < 1:
            raise DataworthError(f"max_iter must be a positive integer, got {max_iter!r}.")
        self.C = float(C)
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self._references: dict[tuple, _Reference] = {}

    # ------------------------------------------------------------------ protocol and plumbing

    def __repr__(self) -> str:
        return (
            f"BatchedLogisticRegression(C={self.C!r}, tol={self.tol!r}, max_iter={self.max_iter})"
        )

    def fingerprint(self) -> str:
        """A stable text naming the learner, its parameters and the solver version."""
        return (
            f"logreg(C={self.C!r},tol={self.tol!r},max_iter={self.max_iter},"
            f"solver={_SOLVER_VERSION})"
        )

    def __getstate__(self) -> dict:
        # The cached reference solutions hold O(n) arrays and an O(d^2) Hessian per task; workers
        # recompute the one they need (deterministically) instead of receiving them.
        state = self.__dict__.copy()
        state["_references"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def predict_proba_batch(
        self, task: Task, masks: np.ndarray, chains: np.ndarray | None = None
    ) -> np.ndarray:
        """Fit one model per row of ``masks`` and return the test rows' class probabilities.

        Parameters
        ----------
        task : Task
        masks : ndarray of bool, shape (K, n_train)
            Each row selects a training subset with at least two classes.
        chains : ndarray of int, shape (K,), optional
            Chains of nested subsets, each member warm-started from the one before; see
            :meth:`fit_batch`.

        Returns
        -------
        ndarray of shape (K, n_test, n_classes)
            Probabilities over all of the task's classes (exactly zero for a class the subset
            lacks).
        """
        masks = self._check_masks(masks, task.n_train)
        params, _, _ = self._fit(
            task.X_train, task.y_train, task.n_classes, masks, None, task.fingerprint, chains
        )
        present = _class_presence(task.y_train, masks, task.n_classes)
        return self.predict_proba(params, task.X_test, present, n_classes=task.n_classes)

    # ------------------------------------------------------------------ public lower level

    @staticmethod
    def n_params(n_features: int, n_classes: int) -> int:
        """Length of one subset's parameter vector: ``R * (n_features + 1)``."""
        return (1 if n_classes == 2 else n_classes) * (n_features + 1)

    @staticmethod
    def unpack(
        params: np.ndarray, n_features: int, n_classes: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Split parameter vectors into coefficients and intercepts.

        Parameters
        ----------
        params : ndarray of shape (K, P)
        n_features, n_classes : int

        Returns
        -------
        coef : ndarray of shape (K, R, n_features)
        intercept : ndarray of shape (K, R)
            ``R = 1`` for a binary task (scikit-learn's ``coef_``/``intercept_``), else one row per
            class (zero rows for classes absent from the subset; for a subset with exactly two
            classes, the first one's row is zero and the second's is scikit-learn's binary model).
        """
        rows = 1 if n_classes == 2 else n_classes
        theta = np.asarray(params, dtype=np.float64).reshape(len(params), rows, n_features + 1)
        return theta[:, :, :-1], theta[:, :, -1]

    def reference(self, X: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
        """The full-data solution (the default warm start), computed once and cached.

        Parameters
        ----------
        X : ndarray of shape (n, d)
        y : ndarray of shape (n,)
            Labels in ``0..n_classes-1``.
        n_classes : int

        Returns
        -------
        ndarray of shape (P,)
        """
        problem = _make_problem(X, y, n_classes)
        with self._single_threaded_blas():
            return self._reference(problem, None).theta.copy()

    def fit_batch(
        self,
        X: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        masks: np.ndarray,
        init: np.ndarray | None = None,
        chains: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fit one model per subset.

        Parameters
        ----------
        X : ndarray of shape (n, d)
            Training features.
        y : ndarray of shape (n,)
            Labels in ``0..n_classes-1``.
        n_classes : int
            Number of classes of the task (2 gives the binary model).
        masks : ndarray of bool, shape (K, n)
            Each row selects a subset with at least two classes.
        init : ndarray of shape (P,) or (K, P), optional
            Warm starts (for example the previous prefix's solution). They are first projected
            onto each subset's parametrisation (absent classes dropped, intercepts centred).
            Default: the full-data solution.
        chains : ndarray of int, shape (K,), optional
            Chain labels: rows with the same label form a chain, in the order they appear, and
            each must be a superset of the chain's previous row (for example the prefixes of one
            permutation). With Numba installed, each chain is solved in order, every member
            warm-started from the one before (:mod:`dataworth.learners.logreg_chains`), for
            binary and multiclass tasks alike; its first member starts from ``init`` or the
            full-data solution. A member's result then depends on its chain's earlier members,
            never on other chains or the batch. Every member meets the same tolerance either way,
            so chains only change the cost; without Numba they are ignored.

        Returns
        -------
        params : ndarray of shape (K, P)
            Solutions, laid out as described in :meth:`unpack`.
        n_iter : ndarray of int, shape (K,)
            Newton or chord steps taken per subset.
        converged : ndarray of bool, shape (K,)
            Whether the subset's gradient reached ``tol``. A
            :class:`LogisticConvergenceWarning` is issued when any did not.
        """
        X = np.asarray(X, dtype=np.float64)
        masks = self._check_masks(masks, X.shape[0])
        return self._fit(X, y, n_classes, masks, init, None, chains)

    def _single_threaded_blas(self):
        """A context in which BLAS/LAPACK use one thread.

        The solver makes many small, independent BLAS calls; BLAS threading only adds
        synchronisation to them (a 260 x 260 inverse ran 10x slower with two threads than with
        one), and parallelism comes from the executor's worker processes instead.
        """
        return _blas_controller().limit(limits=1, user_api="blas")

    def predict_proba(
        self,
        params: np.ndarray,
        X: np.ndarray,
        present: np.ndarray | None = None,
        *,
        n_classes: int | None = None,
    ) -> np.ndarray:
        """Class probabilities of fitted models.

        Parameters
        ----------
        params : ndarray of shape (K, P)
            As returned by :meth:`fit_batch`.
        X : ndarray of shape (m, d)
        present : ndarray of bool, shape (K, n_classes), optional
            Classes each model knows (those of its training subset); the others get probability
            exactly 0. Default: all classes.
        n_classes : int, optional
            Inferred from ``P`` and ``d`` when omitted.

        Returns
        -------
        ndarray of shape (K, m, n_classes)
        """
        X = np.asarray(X, dtype=np.float64)
        params = np.atleast_2d(np.asarray(params, dtype=np.float64))
        width = X.shape[1] + 1
        rows, rest = divmod(params.shape[1], width)
        if rest or rows < 1:
            raise DataworthError(
                f"params have {params.shape[1]} columns, which does not fit {X.shape[1]} features."
            )
        if n_classes is None:
            n_classes = 2 if rows == 1 else rows
        if rows != (1 if n_classes == 2 else n_classes):
            raise DataworthError(f"params do not describe a {n_classes}-class model.")
        K, m = len(params), len(X)
        if present is None:
            present = np.ones((K, n_classes), dtype=bool)
        present = np.asarray(present, dtype=bool).reshape(K, n_classes)
        Xa = _augment(X)
        out = np.empty((K, m, n_classes))
        step = max(1, chunk_budget(_CHUNK_BYTES) // (8 * max(m, 1) * (2 * n_classes + 2)))
        for start in range(0, K, step):
            sl = slice(start, start + step)
            z = _logits(Xa, params[sl], rows)
            if rows == 1:
                p1 = expit(z[..., 0])
                out[sl, :, 1] = p1
                out[sl, :, 0] = 1.0 - p1
            else:
                offset = np.where(present[sl], 0.0, -np.inf)
                out[sl] = _softmax(z + offset[:, None, :])[0]
        return out

    def mean_gradient(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray, n_classes: int, masks: np.ndarray
    ) -> np.ndarray:
        """Gradient of each subset's mean-scaled objective at ``params`` (the convergence test).

        Coordinates that the subset's parametrisation fixes (absent classes, the frozen first
        class of a two-class subset) are reported as 0.

        Returns
        -------
        ndarray of shape (K, P)
        """
        problem = _make_problem(X, y, n_classes)
        masks = self._check_masks(masks, problem.n)
        params = np.asarray(params, dtype=np.float64).reshape(len(masks), problem.n_params)
        out = np.empty_like(params)
        step = _chunk_size(problem)
        for start in range(0, len(masks), step):
            sl = slice(start, start + step)
            struct = _structure(problem, masks[sl])
            mask_f = masks[sl].astype(np.float64)
            rows = _shared_rows(problem)
            _, grad, _ = self._evaluate(rows, params[sl], mask_f, masks[sl], struct)
            out[sl] = grad / struct.size[:, None]
        return out

    # ------------------------------------------------------------------ solver

    @staticmethod
    def _check_masks(masks: np.ndarray, n: int) -> np.ndarray:
        masks = np.asarray(masks)
        if masks.ndim == 1:
            masks = masks[None, :]
        if masks.ndim != 2 or masks.shape[1] != n:
            raise DataworthError(f"masks must have shape (K, {n}); got {masks.shape}.")
        if masks.dtype != bool:
            if not np.isin(masks, (0, 1)).all():
                raise DataworthError("masks must be boolean (or 0/1).")
            masks = masks.astype(bool)
        return masks

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        masks: np.ndarray,
        init: np.ndarray | None,
        key: str | None,
        chains: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._single_threaded_blas():
            if chains is not None and chain_kernel() is not None:
                return self._fit_chains(X, y, n_classes, masks, init, key, chains)
            return self._fit_single_threaded(X, y, n_classes, masks, init, key)

    def _fit_chains(
        self,
        X: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        masks: np.ndarray,
        init: np.ndarray | None,
        key: str | None,
        chains: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solve each chain in order with the compiled chain solver (binary or softmax)."""
        problem = _make_problem(X, y, n_classes)
        K, P = len(masks), problem.n_params
        groups = _chain_groups(chains, K)
        for rows in groups:
            members = masks[rows]
            if len(rows) > 1 and (members[:-1] & ~members[1:]).any():
                raise DataworthError(
                    "Each member of a chain must contain the one before it (nested subsets)."
                )
        _require_two_classes(problem, masks)
        if init is None:
            starts = np.broadcast_to(self._reference(problem, key).theta, (K, P))
        else:
            starts = np.broadcast_to(np.asarray(init, dtype=np.float64).reshape(-1, P), (K, P))
        params = np.empty((K, P))
        n_iter = np.zeros(K, dtype=np.int64)
        converged = np.zeros(K, dtype=bool)
        solve = self._solve_binary_chain if problem.n_rows == 1 else self._solve_softmax_chain
        for rows in groups:
            out = np.empty((len(rows), P))
            steps = np.zeros(len(rows), dtype=np.int64)
            done = np.zeros(len(rows), dtype=bool)
            solve(problem, masks[rows], starts[rows[0]], out, steps, done)
            params[rows], n_iter[rows], converged[rows] = out, steps, done
        if not converged.all():
            warnings.warn(
                f"{int((~converged).sum())} of {K} logistic regression fits in chains did not "
                f"reach the gradient tolerance {self.tol:g} within {self.max_iter} steps; their "
                "`converged` flag is False. Raise max_iter or loosen tol.",
                LogisticConvergenceWarning,
                stacklevel=4,
            )
        return params, n_iter, converged

    def _solve_binary_chain(
        self,
        problem: _Problem,
        members: np.ndarray,
        start: np.ndarray,
        out: np.ndarray,
        steps: np.ndarray,
        done: np.ndarray,
    ) -> None:
        """One binary chain by the compiled BFGS chain solver; results into out/steps/done."""
        penalty = np.full(problem.n_params, 1.0 / self.C)
        penalty[-1] = 0.0
        order, sizes = join_order(members)
        chain_kernel()(
            np.ascontiguousarray(problem.Xa[order]),
            np.ascontiguousarray(problem.targets[order, 0]),
            sizes,
            np.ascontiguousarray(start),
            penalty,
            self.tol,
            self.max_iter,
            out,
            steps,
            done,
        )

    def _solve_softmax_chain(
        self,
        problem: _Problem,
        members: np.ndarray,
        start: np.ndarray,
        out: np.ndarray,
        steps: np.ndarray,
        done: np.ndarray,
    ) -> None:
        """One multiclass chain: one kernel call per run of members with the same classes.

        Each run starts from the previous run's last solution (the first from ``start``),
        projected onto its parametrisation exactly as the batched solver projects a warm start.
        """
        order, sizes = join_order(members)
        struct = _structure(problem, members)
        X = np.ascontiguousarray(problem.Xa[order])
        y = np.ascontiguousarray(problem.y[order])
        kernel = softmax_chain_kernel()
        theta = np.array(start, dtype=np.float64)
        for a, b in class_runs(struct.present):
            theta = _project(problem, theta[None].copy(), struct.take(np.array([a])))[0]
            kernel(
                X,
                y,
                sizes[a:b],
                np.ascontiguousarray(theta),
                struct.present[a],
                struct.free[a],
                struct.penalised[a] / self.C,
                self.tol,
                self.max_iter,
                out[a:b],
                steps[a:b],
                done[a:b],
            )
            theta = out[b - 1]

    def _fit_single_threaded(
        self,
        X: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        masks: np.ndarray,
        init: np.ndarray | None,
        key: str | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        problem = _make_problem(X, y, n_classes)
        K, P = len(masks), problem.n_params
        _require_two_classes(problem, masks)
        ref = self._reference(problem, key)
        if init is None:
            theta0 = np.broadcast_to(ref.theta, (K, P))
            at_ref = np.ones(K, dtype=bool)
        else:
            theta0 = np.asarray(init, dtype=np.float64)
            if theta0.ndim == 1:
                theta0 = theta0[None, :]
            if theta0.shape[1] != P or theta0.shape[0] not in (1, K):
                raise DataworthError(f"init must have shape ({P},) or ({K}, {P}).")
            theta0 = np.broadcast_to(theta0, (K, P))
            at_ref = (theta0 == ref.theta).all(axis=1)

        params = np.empty((K, P))
        n_iter = np.zeros(K, dtype=np.int64)
        converged = np.zeros(K, dtype=bool)
        worst = np.zeros(K)
        todo = np.arange(K)
        if init is None and ref.one_out is not None:
            todo, theta0, at_ref = self._fit_one_out(
                problem, ref.one_out, masks, theta0, at_ref, params, n_iter, converged, worst
            )
        # Subsets are solved in groups of equal padded length (small subsets on their own rows,
        # the others on the shared rows) and in chunks that bound memory. Neither grouping nor
        # chunking changes a subset's arithmetic: that depends on the subset alone.
        length = _compact_length(masks[todo].sum(axis=1), problem.n)
        for m in np.unique(length):
            group = todo[length == m]
            step = _chunk_size(problem, int(m))
            for start in range(0, len(group), step):
                idx = group[start : start + step]
                full_masks = masks[idx]
                struct = _structure(problem, full_masks)
                if m == 0:
                    rows, chunk_masks = _shared_rows(problem), full_masks
                else:
                    rows, chunk_masks = _gather_rows(problem, full_masks, int(m))
                out = self._solve_chunk(
                    problem, ref, rows, chunk_masks, struct, theta0[idx], at_ref[idx]
                )
                params[idx], converged[idx], worst[idx] = out[0], out[2], out[3]
                n_iter[idx] += out[1]  # after any steps of the one-out path
        if not converged.all():
            bad = ~converged
            warnings.warn(
                f"{int(bad.sum())} of {K} logistic regression fits did not reach the gradient "
                f"tolerance {self.tol:g} within {self.max_iter} steps (largest remaining "
                f"mean-scaled gradient {worst[bad].max():.2e}); their `converged` flag is False. "
                "Raise max_iter or loosen tol.",
                LogisticConvergenceWarning,
                stacklevel=4,
            )
        return params, n_iter, converged

    def _fit_one_out(
        self,
        problem: _Problem,
        prep: OneOutReference,
        masks: np.ndarray,
        theta0: np.ndarray,
        at_ref: np.ndarray,
        params: np.ndarray,
        n_iter: np.ndarray,
        converged: np.ndarray,
        worst: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Subsets that leave out one row (all classes kept), by the compiled one-out path.

        Fills ``params``, ``n_iter``, ``converged`` and ``worst`` for them and returns the
        subsets left for the general solver, with warm starts for any handed over.
        """
        K = len(masks)
        cand = np.flatnonzero(masks.sum(axis=1) == problem.n - 1)
        if cand.size:
            present = _class_presence(problem.y, masks[cand], problem.n_classes)
            cand = cand[present.all(axis=1)]  # a class left out changes the model's shape
        if cand.size == 0:
            return np.arange(K), theta0, at_ref
        excluded = np.argmin(masks[cand], axis=1)
        out, steps, status = solve_one_out(
            prep, problem.Xa, problem.y, excluded, self.tol, self.max_iter
        )
        params[cand], n_iter[cand] = out, steps
        converged[cand] = status == 0
        handed = cand[status == 2]
        if (status == 1).any():
            gmax = self.mean_gradient(
                out[status == 1],
                problem.Xa[:, :-1],
                problem.y,
                problem.n_classes,
                masks[cand[status == 1]],
            )
            worst[cand[status == 1]] = np.abs(gmax).max(axis=1)
        if handed.size:
            theta0 = np.array(theta0)
            at_ref = np.array(at_ref)
            theta0[handed] = params[handed]
            at_ref[handed] = False
        finished = np.zeros(K, dtype=bool)
        finished[cand] = status != 2
        return np.flatnonzero(~finished), theta0, at_ref

    def _reference(self, problem: _Problem, key: str | None) -> _Reference:
        if key is None:
            h = hashlib.sha256()
            for a in (problem.Xa, problem.y):
                h.update(str(a.shape).encode())
                h.update(np.ascontiguousarray(a).tobytes())
            key = h.hexdigest()
        cache_key = (key, problem.n_classes, self.C, self.tol, self.max_iter)
        ref = self._references.get(cache_key)
        if ref is not None:
            return ref
        full = np.ones((1, problem.n), dtype=bool)
        struct = _structure(problem, full)
        rows = _shared_rows(problem)
        theta, _, conv, _ = self._solve_chunk(
            problem,
            None,
            rows,
            full,
            struct,
            np.zeros((1, problem.n_params)),
            np.zeros(1, dtype=bool),
        )
        theta = theta[0]
        mask_f = full.astype(np.float64)
        parts = self._evaluate(rows, theta[None], mask_f, full, struct, per_row=True)
        loss_sum, grad_sum, proba, loss, resid = parts
        grad_sum = grad_sum[0] - _penalty_grad(theta[None], struct, self.C)[0]
        hess_sum = _stacked_data_hessian(problem, problem.Xa, proba, full.astype(np.float64))[0]
        one_out = {}
        if problem.n_rows == 1:
            hinv = np.linalg.inv(_finish_hessian(problem, hess_sum[None].copy(), struct, self.C))[0]
            lever = problem.Xa @ hinv
            curv = proba[0, :, 0] * (1.0 - proba[0, :, 0])
            leverage = curv * np.einsum("ij,ij->i", problem.Xa, lever)
            one_out = dict(hinv=hinv, lever=lever, curv=curv, leverage=leverage)
            if problem.n >= _ONE_OUT_MIN_ROWS_BINARY and one_out_kernels() is not None:
                one_out["one_out"] = prepare_one_out(
                    problem.Xa, problem.y, theta, hinv, struct.penalised[0] / self.C, 2
                )
        elif (
            problem.n >= _ONE_OUT_MIN_ROWS
            and struct.present[0].all()
            and one_out_kernels() is not None
        ):
            hfull = _finish_hessian(problem, hess_sum[None].copy(), struct, self.C)
            one_out = dict(
                one_out=prepare_one_out(
                    problem.Xa,
                    problem.y,
                    theta,
                    np.linalg.inv(hfull)[0],
                    struct.penalised[0] / self.C,
                    problem.n_classes,
                )
            )
        ref = _Reference(
            theta=theta,
            present=struct.present[0],
            loss_sum=float(loss_sum[0] - _penalty(theta[None], struct, self.C)[0]),
            grad_sum=grad_sum,
            hess_sum=hess_sum,
            proba=proba[0],
            loss=loss[0],
            resid=resid[0],
            converged=bool(conv[0]),
            **one_out,
        )
        while len(self._references) >= _CACHE_SIZE:
            self._references.pop(next(iter(self._references)))
        self._references[cache_key] = ref
        return ref

    def _evaluate(
        self,
        rows: _Rows,
        theta: np.ndarray,
        mask_f: np.ndarray,
        mask_b: np.ndarray,
        struct: _Structure,
        per_row: bool = False,
    ):
        """Objective (sum form), its gradient, and the row probabilities, for each subset.

        Returns ``(F, G, proba)`` with shapes ``(k,)``, ``(k, P)``, ``(k, m, R or n_classes)``
        (``m`` rows), plus the per-row losses and gradient weights when ``per_row``.
        """
        k, R = len(theta), rows.targets.shape[-1]
        z = _logits(rows.Xa, theta, R)  # (k, m, R)
        if R == 1:
            proba, softplus = _sigmoid_softplus(z)
            loss = softplus[..., 0] - rows.targets[..., 0] * z[..., 0]
            resid = proba - rows.targets
        else:
            proba, lse = _softmax(z + struct.logit_offset[:, None, :])
            labels = rows.y[:, :, None] if rows.stacked else rows.y[None, :, None]
            picked = np.take_along_axis(z, labels, axis=2)[..., 0]
            # Rows outside the subset may carry a class it lacks; their loss is meaningless.
            loss = np.where(mask_b, lse - picked, 0.0)
            resid = proba - rows.targets
        resid_m = resid * mask_f[:, :, None]
        F = np.where(mask_b, loss, 0.0).sum(axis=1) + _penalty(theta, struct, self.C)
        # X^T r per subset: one (d+1, m) x (m, R) product per stacked matrix.
        G = np.matmul(np.swapaxes(rows.Xa, -1, -2), resid_m).transpose(0, 2, 1).reshape(k, -1)
        G = (G + _penalty_grad(theta, struct, self.C)) * struct.free_params
        if per_row:
            return F, G, proba, loss, resid
        return F, G, proba

    def _solve_chunk(
        self,
        problem: _Problem,
        ref: _Reference | None,
        rows: _Rows,
        masks: np.ndarray,
        struct: _Structure,
        theta0: np.ndarray,
        at_ref: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Newton/chord iterations for one chunk of subsets; every step is per subset.

        ``masks`` select rows of ``rows`` (shape ``(k, rows.length)``); ``struct`` describes the
        subsets' classes and sizes.
        """
        k, P = len(masks), problem.n_params
        mask_f = masks.astype(np.float64)

        # Subsets that start exactly at the reference with its class structure reuse its
        # objective, gradient and Hessian, corrected by the rows they exclude, when those are
        # fewer than the rows they include.
        reuse = np.zeros(k, dtype=bool)
        if ref is not None and not rows.stacked:
            same_classes = (struct.present == ref.present).all(axis=1)
            excluded = problem.n - masks.sum(axis=1)
            reuse = at_ref & same_classes & (excluded <= masks.sum(axis=1))
        theta = _project(problem, np.array(theta0, dtype=np.float64), struct)
        if ref is not None:
            theta[reuse] = ref.theta

        F = np.empty(k)
        G = np.empty((k, P))
        proba = np.empty((k, rows.length, _proba_width(problem)))
        # Per subset either its Hessian (steps solve with it; a solve costs a third of an
        # inverse) or, from the Sherman-Morrison start, its inverse as the full-data inverse plus
        # a rank-one term ``scale * a a^T`` (steps multiply by it).
        hmat = np.empty((k, P, P))
        rank_one = np.zeros(k, dtype=bool)
        sm_a = np.zeros((k, P))
        sm_scale = np.zeros(k)
        have_h = np.zeros(k, dtype=bool)
        fresh = np.zeros(k, dtype=bool)  # Hessian evaluated at the current iterate

        # Binary subsets that leave out exactly one row (LOO) get the inverse Hessian by a
        # Sherman-Morrison update of the full one: O(d^2) each, no inverse per subset.
        one_out = np.zeros(k, dtype=bool)
        if reuse.any() and ref.hinv is not None:
            one_out = reuse & (masks.sum(axis=1) == problem.n - 1)
        if one_out.any():
            idx = np.flatnonzero(one_out)
            rank_one[idx] = True
            F[idx], G[idx], sm_a[idx], sm_scale[idx] = self._one_out_start(
                problem, ref, masks[idx], struct.take(idx)
            )
            proba[idx] = ref.proba
            have_h[idx] = True
            fresh[idx] = True
        if (reuse & ~one_out).any():
            idx = np.flatnonzero(reuse & ~one_out)
            Fr, Gr, Hr = self._downdated_start(problem, ref, masks[idx], struct.take(idx))
            F[idx], G[idx] = Fr, Gr
            proba[idx] = ref.proba
            hmat[idx] = Hr
            have_h[idx] = True
            fresh[idx] = True
        if (~reuse).any():
            idx = np.flatnonzero(~reuse)
            F[idx], G[idx], proba[idx] = self._evaluate(
                rows.take(idx), theta[idx], mask_f[idx], masks[idx], struct.take(idx)
            )
            # A warm start worse than the all-zero model (whose objective is |S| log(#classes)
            # in closed form) is discarded: far from the optimum the loss saturates, Newton's
            # curvature vanishes and progress would be slow.
            zero_f = struct.size * np.log(struct.present.sum(axis=1))
            worse = idx[F[idx] > zero_f[idx]]
            if worse.size:
                theta[worse] = 0.0
                F[worse], G[worse], proba[worse] = self._evaluate(
                    rows.take(worse), theta[worse], mask_f[worse], masks[worse], struct.take(worse)
                )

        n_iter = np.zeros(k, dtype=np.int64)
        stalled = np.zeros(k, dtype=bool)
        while True:
            gmax = np.abs(G).max(axis=1) / struct.size
            converged = gmax <= self.tol
            # Every subset takes at least one Newton step: a warm start from a neighbouring
            # solution (the full data, for LOO) can already meet the tolerance, and stopping
            # there would report an influence of exactly zero instead of its true, tiny value.
            first = (n_iter == 0) & (gmax > 0)
            active = (~converged | first) & ~stalled & (n_iter < self.max_iter)
            if not active.any():
                break
            # Recompute the Hessian at the current point where there is none or the reused one
            # stopped contracting.
            need = np.flatnonzero(active & ~have_h)
            if need.size:
                hmat[need] = self._hessians(
                    problem, rows.take(need), proba[need], mask_f[need], struct.take(need)
                )
                rank_one[need] = False
                have_h[need] = True
                fresh[need] = True
            act = np.flatnonzero(active)
            direction = np.empty((len(act), P))
            updated = rank_one[act]
            if updated.any():
                a = act[updated]
                Ga, va = G[a], sm_a[a]
                base = np.matmul(ref.hinv, Ga[:, :, None])[:, :, 0]
                along = sm_scale[a] * (va * Ga).sum(axis=1)
                direction[updated] = -(base + along[:, None] * va)
            if not updated.all():
                a = act[~updated]
                direction[~updated] = -np.linalg.solve(hmat[a], G[a][:, :, None])[:, :, 0]
            slope = np.matmul(G[act][:, None, :], direction[:, :, None])[:, 0, 0]
            bad = ~(slope < 0)
            if bad.any():
                # Not a descent direction: a stale Hessian is recomputed at the next pass; a
                # fresh one (numerically indefinite) falls back to steepest descent.
                stale = act[bad & ~fresh[act]]
                have_h[stale] = False
                keep = ~(bad & ~fresh[act])
                act, direction, slope = act[keep], direction[keep], slope[keep]
                steepest = ~(slope < 0)
                direction[steepest] = -G[act[steepest]]
                slope[steepest] = -np.einsum("ij,ij->i", G[act[steepest]], G[act[steepest]])
            self._line_search(
                rows,
                struct,
                masks,
                mask_f,
                act,
                direction,
                slope,
                theta,
                F,
                G,
                proba,
                have_h,
                fresh,
                n_iter,
                stalled,
            )
        gmax = np.abs(G).max(axis=1) / struct.size
        return theta, n_iter, gmax <= self.tol, gmax

    def _line_search(
        self,
        rows: _Rows,
        struct: _Structure,
        masks: np.ndarray,
        mask_f: np.ndarray,
        act: np.ndarray,
        direction: np.ndarray,
        slope: np.ndarray,
        theta: np.ndarray,
        F: np.ndarray,
        G: np.ndarray,
        proba: np.ndarray,
        have_h: np.ndarray,
        fresh: np.ndarray,
        n_iter: np.ndarray,
        stalled: np.ndarray,
    ) -> None:
        """Backtracking (Armijo) from the unit step, per subset; updates the state in place."""
        step = np.ones(len(act))
        pending = np.arange(len(act))
        while pending.size:
            idx = act[pending]
            t = step[pending]
            trial = theta[idx] + t[:, None] * direction[pending]
            Ft, Gt, Pt = self._evaluate(
                rows.take(idx), trial, mask_f[idx], masks[idx], struct.take(idx)
            )
            F0 = F[idx]
            armijo = Ft <= F0 + _ARMIJO * t * slope[pending]
            # Close to the optimum the decrease is below the rounding noise of the summed
            # objective; there a step is accepted when it does not visibly increase the
            # objective and it shrinks the gradient.
            g_old = np.abs(G[idx]).max(axis=1)
            g_new = np.abs(Gt).max(axis=1)
            noise = _OBJECTIVE_NOISE * (np.abs(F0) + 1.0)
            quiet = (Ft - F0 <= noise) & (g_new < g_old)
            ok = (armijo | quiet) & np.isfinite(Ft)
            acc = idx[ok]
            if acc.size:
                theta[acc] = trial[ok]
                F[acc], G[acc], proba[acc] = Ft[ok], Gt[ok], Pt[ok]
                n_iter[acc] += 1
                # Keep the Hessian (chord steps, linear convergence at rate rho) only while a full
                # step contracts the gradient fast enough to reach tol within a few more steps;
                # otherwise recompute it at the new point (Newton) before the next step.
                rho = g_new[ok] / g_old[ok]
                within = g_new[ok] * rho**_CHORD_STEPS <= self.tol * struct.size[acc]
                have_h[acc] = (t[ok] == 1.0) & (rho <= _CHORD_CONTRACTION) & within
                fresh[acc] = False
            failed = pending[~ok]
            if failed.size:
                # A failed step with a reused Hessian: recompute it rather than backtrack.
                stale = ~fresh[act[failed]]
                have_h[act[failed[stale]]] = False
                failed = failed[~stale]
                step[failed] *= 0.5
                tiny = step[failed] < _MIN_STEP
                stalled[act[failed[tiny]]] = True
                failed = failed[~tiny]
            pending = failed

    def _one_out_start(
        self, problem: _Problem, ref: _Reference, masks: np.ndarray, struct: _Structure
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Objective, gradient and inverse Hessian at the reference, for binary one-out subsets.

        Removing row ``i`` removes ``c_i x_i x_i^T`` from the Hessian, so by Sherman-Morrison
        ``H_{-i}^{-1} = H^{-1} + c_i a_i a_i^T / (1 - c_i x_i^T a_i)`` with ``a_i = H^{-1} x_i``.
        The inverse is returned as ``a_i`` and the scale ``c_i / (1 - c_i x_i^T a_i)`` (the full
        inverse is ``ref.hinv``). Every operation is per subset, so a subset's numbers do not
        depend on its batch.
        """
        k, P = len(masks), problem.n_params
        out = np.argmin(masks, axis=1)  # the one excluded row of each subset
        theta = np.broadcast_to(ref.theta, (k, P))
        F = ref.loss_sum - ref.loss[out] + _penalty(theta, struct, self.C)
        G = ref.grad_sum[None, :] - ref.resid[out, 0][:, None] * problem.Xa[out]
        G = G + _penalty_grad(theta, struct, self.C)
        scale = ref.curv[out] / (1.0 - ref.leverage[out])
        return F, G, ref.lever[out], scale

    def _downdated_start(
        self, problem: _Problem, ref: _Reference, masks: np.ndarray, struct: _Structure
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Objective, gradient and Hessian at the reference point, from the excluded rows."""
        k, P = len(masks), problem.n_params
        F = np.empty(k)
        G = np.empty((k, P))
        H = np.empty((k, P, P))
        theta = np.broadcast_to(ref.theta, (k, P))
        for j in range(k):
            out = np.flatnonzero(~masks[j])
            Xe = problem.Xa[out]
            F[j] = ref.loss_sum - ref.loss[out].sum()
            # Excluded rows' gradient part: (d+1, e) x (e, R) for this subset alone.
            ge = (Xe.T @ ref.resid[out]).T.reshape(-1)
            G[j] = ref.grad_sum - ge
            excluded = _stacked_data_hessian(
                problem, Xe, ref.proba[out][None], np.ones((1, len(out)))
            )
            H[j] = ref.hess_sum - excluded[0]
        F += _penalty(theta, struct, self.C)
        G = (G + _penalty_grad(theta, struct, self.C)) * struct.free_params
        return F, G, _finish_hessian(problem, H, struct, self.C)

    def _hessians(
        self,
        problem: _Problem,
        rows: _Rows,
        proba: np.ndarray,
        mask_f: np.ndarray,
        struct: _Structure,
    ) -> np.ndarray:
        """Hessians (sum form, penalty included) at the current points, from included rows."""
        H = _stacked_data_hessian(problem, rows.Xa, proba, mask_f)
        return _finish_hessian(problem, H, struct, self.C)


# ---------------------------------------------------------------------- helpers


@functools.cache
def _blas_controller():
    # Building a controller scans the loaded libraries (milliseconds); one per process suffices.
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


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


def _chunk_size(problem: _Problem, length: int = 0) -> int:
    """Subsets per internal chunk: about 8 arrays of shape (m, n_classes + 1) each, plus the
    gathered rows and two (P, P) matrices; ``m = length``, or ``n`` when it is 0.

    The chunk's budget is ``_CHUNK_BYTES``, or a quarter of the available memory when that is
    less; a subset's arithmetic never depends on its chunk, so neither do the values.
    """
    m = length or problem.n
    per_subset = 8 * m * 8 * (problem.n_classes + 1) + 8 * 2 * problem.n_params**2
    if length:
        per_subset += 8 * m * (problem.width + problem.n_rows + 1)
    return max(1, chunk_budget(_CHUNK_BYTES) // per_subset)


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


def _logits(Xa: np.ndarray, theta: np.ndarray, rows: int) -> np.ndarray:
    """(k, n, R) logits: one (n, d+1) x (d+1, R) product per subset, never mixing subsets."""
    k = len(theta)
    return np.matmul(Xa, theta.reshape(k, rows, Xa.shape[-1]).transpose(0, 2, 1))


def _sigmoid_softplus(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sigmoid(z)`` and ``log(1 + exp(z))`` from one exponential, stable for any ``z``.

    (Cheaper than ``expit`` plus ``np.logaddexp``, which dominate the cost of an evaluation.)
    """
    e = np.exp(-np.abs(z))
    inv = 1.0 / (1.0 + e)
    proba = np.where(z >= 0.0, inv, e * inv)
    softplus = np.maximum(z, 0.0) + np.log1p(e)
    return proba, softplus


def _softmax(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax over the last axis and the log-sum-exp, with -inf logits giving exactly 0."""
    top = z.max(axis=-1, keepdims=True)
    e = np.exp(z - top)
    total = e.sum(axis=-1, keepdims=True)
    return e / total, (np.log(total) + top)[..., 0]


def _penalty(theta: np.ndarray, struct: _Structure, C: float) -> np.ndarray:
    w = theta * struct.penalised
    return 0.5 / C * np.matmul(w[:, None, :], w[:, :, None])[:, 0, 0]


def _penalty_grad(theta: np.ndarray, struct: _Structure, C: float) -> np.ndarray:
    return theta * struct.penalised / C


def _stacked_data_hessian(
    problem: _Problem, Xa: np.ndarray, proba: np.ndarray, mask_f: np.ndarray
) -> np.ndarray:
    """Data Hessians of subsets, all class blocks: one stacked product per subset (and block).

    ``Xa`` is (m, d + 1) shared by the subsets or (k, m, d + 1) their own rows; ``mask_f`` (k, m)
    weighs the rows in. Blocks of classes a subset does not optimise are pinned later by
    :func:`_finish_hessian`.
    """
    width, R = problem.width, problem.n_rows
    XaT = np.swapaxes(Xa, -1, -2)
    if R == 1:
        p = proba[..., 0]
        return np.matmul(XaT, Xa * (p * (1.0 - p) * mask_f)[:, :, None])
    k = len(mask_f)
    H = np.zeros((k, R * width, R * width))
    for c in range(R):
        pc = proba[..., c] * mask_f
        for c2 in range(c, R):
            weight = pc * ((c == c2) - proba[..., c2])
            block = np.matmul(XaT, Xa * weight[:, :, None])
            H[:, c * width : (c + 1) * width, c2 * width : (c2 + 1) * width] = block
            if c2 != c:
                H[:, c2 * width : (c2 + 1) * width, c * width : (c + 1) * width] = block.transpose(
                    0, 2, 1
                )
    return H


def _finish_hessian(problem: _Problem, H: np.ndarray, struct: _Structure, C: float) -> np.ndarray:
    """Add the penalty, pin frozen coordinates, and lift the intercepts' flat direction.

    Frozen coordinates get an identity row (their gradient is zero, so they never move). With
    three or more classes the objective is flat along "all present intercepts + t"; adding
    ``a u u^T`` (u the normalised all-ones vector on those intercepts) makes the Hessian
    invertible without changing steps: the gradient is orthogonal to ``u``, hence so is the step.
    """
    P = H.shape[1]
    width, rows = problem.width, problem.n_rows
    diag = np.arange(P)
    H[:, diag, diag] += struct.penalised / C
    keep = struct.free_params
    if (keep == 0.0).any():
        H *= keep[:, :, None] * keep[:, None, :]
        fj, fi = np.nonzero(keep == 0.0)
        H[fj, fi, fi] = 1.0
    if rows > 1:
        icpt = np.arange(rows) * width + width - 1
        n_present = struct.present.sum(axis=1)
        for j in np.flatnonzero(n_present >= 3):
            idx = icpt[struct.present[j]]
            scale = H[j].diagonal()[struct.free_params[j] > 0].mean() / len(idx)
            H[j, idx[:, None], idx[None, :]] += scale
    return H
