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

The solver is Newton's method vectorised over subsets (a subset is a 0/1 weight per row), each
subset started from a warm start (by default the full-data solution, cached per task), with
Hessians from the full-data one less the excluded rows' curvature near the full set (one-out
subsets by a Sherman-Morrison or Woodbury update of its inverse, in compiled code from
``_ONE_OUT_MIN_ROWS`` rows, :mod:`dataworth.learners.logreg.one_out`), small subsets solved on
their own rows, chord steps while the gradient contracts fast, a per-subset backtracking line
search, and a subset stopped as soon as the max-abs gradient of the mean-scaled objective
``sum loss / |S| + ||W||^2 / (2 C |S|)`` is at most ``tol`` (docs/design.md, section 4).

*Chains* of nested subsets (a TMC permutation's prefixes) take another path when Numba is
installed: each chain is solved in order, every member warm-started from the one before, by
compiled BFGS steps (:mod:`dataworth.learners.logreg.chains`), to the same tolerance. A multiclass
chain is solved in runs of members with the same classes present; where a class joins, the last
solution is projected onto the new parametrisation exactly as a warm start is here.

**Bitwise determinism.** A subset's result never depends on the other subsets in its batch or on the
batch size: every per-subset quantity is computed by stacked operations that treat each subset's
matrices on their own with a fixed shape (``np.matmul`` on 3-D stacks, stacked ``np.linalg.inv``,
row-wise reductions), never by a 2-D matrix product whose rows mix subsets (BLAS may block those
differently with the batch size). Every decision (which Hessian, step length, when to stop) is taken
per subset from that subset's numbers alone. In a chain, a member's result depends on its chain's
earlier members as well, and still on nothing else. With Numba, multiclass probabilities
(:meth:`BatchedLogisticRegression.predict_proba`) come from a compiled kernel
(:mod:`~dataworth.learners.logreg.proba_kernels`) that loops over each model on its own.

The implementation is spread over sibling modules: :mod:`~dataworth.learners.logreg.problem` (the
prepared rows, each subset's class structure, warm-start projection, chunk sizes),
:mod:`~dataworth.learners.logreg.batches` (a batch's chunks, solved on several threads when it is
large: a subset's bits do not depend on its chunk, hence not on the threads either),
:mod:`~dataworth.learners.logreg.numerics` (logits, probabilities, penalties, Hessians),
:mod:`~dataworth.learners.logreg.near` (large test sets scored near the full-data model),
:mod:`~dataworth.learners.logreg.newton` (the Newton/chord solver of one chunk, and the hand-off
of one-out subsets to the compiled one-out path) and
:mod:`~dataworth.learners.logreg.chain_fits` (chains); this module holds the learner itself.
"""

from __future__ import annotations

import hashlib
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import expit

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.learners.logreg.batches import solve_in_chunks
from dataworth.learners.logreg.chain_fits import _ChainFits
from dataworth.learners.logreg.chains import chain_kernel, proba_kernel
from dataworth.learners.logreg.near import predict_proba_near
from dataworth.learners.logreg.newton import _NewtonSolver, _Reference
from dataworth.learners.logreg.numerics import (
    _finish_hessian,
    _logits,
    _penalty,
    _penalty_grad,
    _softmax,
    _stacked_data_hessian,
)
from dataworth.learners.logreg.one_out import (
    one_out_kernels,
    prepare_one_out,
)
from dataworth.learners.logreg.problem import (
    _CHUNK_BYTES,
    LogisticConvergenceWarning,
    _augment,
    _chunk_size,
    _class_presence,
    _compact_length,  # noqa: F401  (read from here by tests)
    _make_problem,
    _Problem,
    _require_two_classes,
    _shared_rows,
    _structure,
)
from dataworth.learners.memory import chunk_budget
from dataworth.machine import one_blas_thread, usable_threads

__all__ = ["BatchedLogisticRegression", "LogisticConvergenceWarning"]

# Bump when the solver's arithmetic changes, so cached utilities computed by an older solver are
# not mixed with new ones (part of the fingerprint).
# 4: the compiled one-out path on large tasks; 5: large test sets scored by the compiled path
# near the full-data model, multiclass chains and probabilities compiled (fexp) (docs/design.md,
# section 4)
_SOLVER_VERSION = "newton-chord-5"

# Keep the reference solutions of this many (task, parameters) pairs.
_CACHE_SIZE = 4
# Leave-one-out subsets take the compiled one-out path from this many training rows: multinomial
# (6x faster than the general solver at 1,000 rows, 4x at 10,000) and binary tasks (whose
# Sherman-Morrison path in NumPy is fast enough below). Smaller tasks keep the general solver and
# so exactly the values it has always given.
_ONE_OUT_MIN_ROWS = 1000
_ONE_OUT_MIN_ROWS_BINARY = 5000
# Predictions of at least this many probabilities (models x test rows x classes) are computed
# on threads; below, a pool's start costs more than it saves.
_PREDICT_THREAD_ENTRIES = 2**22


class BatchedLogisticRegression(_ChainFits, _NewtonSolver):
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
        key = (task.fingerprint, task.n_classes, self.C, self.tol, self.max_iter)
        ref = self._references.get(key)
        args = (task.X_test, params, present, task.n_classes, self.predict_proba)
        near = predict_proba_near(None if ref is None else ref.theta, *args)
        if near is not None:  # large test sets: compiled, from the full-data model
            return near
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
            warm-started from the one before (:mod:`dataworth.learners.logreg.chains`), for
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
        one), and parallelism comes from the executor's worker processes and from the threads
        that solve a batch's chunks side by side instead.
        """
        return one_blas_thread()

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
        # Large batches (LOO of 35,000 rows scores 35,000 models on 15,000 test rows) run their
        # chunks on threads: NumPy and the compiled probabilities release the GIL, and each
        # model's arithmetic is its own, so the threads change no bit.
        threads = usable_threads() if K * m * n_classes >= _PREDICT_THREAD_ENTRIES else 1
        per_model = 8 * max(m, 1) * (2 * n_classes + 2)
        step = max(1, chunk_budget(_CHUNK_BYTES * threads) // threads // per_model)
        kernel = proba_kernel() if rows > 1 else None
        if kernel is not None:
            XT = np.ascontiguousarray(Xa.T)
            params = np.ascontiguousarray(params)

        def predict(start: int) -> None:
            sl = slice(start, start + step)
            if kernel is not None:
                kernel(XT, params[sl], present[sl], out[sl])
                return
            z = _logits(Xa, params[sl], rows)
            if rows == 1:
                p1 = expit(z[..., 0])
                out[sl, :, 1] = p1
                out[sl, :, 0] = 1.0 - p1
            else:
                _softmax(z, np.where(present[sl], 0.0, -np.inf), out=out[sl])

        starts = range(0, K, step)
        if threads == 1 or len(starts) == 1:
            for start in starts:
                predict(start)
        else:
            with ThreadPoolExecutor(min(threads, len(starts))) as pool:
                list(pool.map(predict, starts))  # list() re-raises a chunk's exception
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
            return self._fit_newton(X, y, n_classes, masks, init, key)

    def _fit_newton(
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
        # The rest in chunks, on several threads when the batch is large enough to pay.
        solve_in_chunks(
            self, problem, ref, masks, todo, theta0, at_ref, params, n_iter, converged, worst
        )
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
