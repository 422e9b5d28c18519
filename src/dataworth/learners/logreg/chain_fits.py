"""Chains of nested subsets for the batched logistic regression: the Python side.

Checks a batch's chains, starts each from its warm start and hands it to the one compiled chain
solver (:func:`dataworth.learners.logreg.chains.chain_kernel`), binary and multiclass alike.
:class:`_ChainFits` is a base class of
:class:`dataworth.learners.logreg.learner.BatchedLogisticRegression`.
"""

from __future__ import annotations

import warnings

import numpy as np

from dataworth.errors import DataworthError
from dataworth.learners.logreg.chains import (
    chain_kernel,
    class_runs,
    join_order,
)
from dataworth.learners.logreg.problem import (
    LogisticConvergenceWarning,
    _chain_groups,
    _make_problem,
    _Problem,
    _project,
    _require_two_classes,
    _structure,
)

# The solver takes the binary model's 0/1 targets and the softmax model's labels; each model
# passes an empty array for the other's.
_NO_LABELS = np.zeros(0, dtype=np.int64)
_NO_TARGETS = np.zeros(0, dtype=np.float64)


class _ChainFits:
    """Chain fits (a base class; ``C``, ``tol``, ``max_iter`` and ``_reference`` come from it)."""

    C: float
    tol: float
    max_iter: int

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
        one_row = np.ones(1, dtype=bool)  # one parameter row, present and free
        chain_kernel()(
            np.ascontiguousarray(problem.Xa[order]),
            np.ascontiguousarray(problem.targets[order, 0]),
            _NO_LABELS,
            sizes,
            np.ascontiguousarray(start),
            one_row,
            one_row,
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
        kernel = chain_kernel()
        theta = np.array(start, dtype=np.float64)
        for a, b in class_runs(struct.present):
            theta = _project(problem, theta[None].copy(), struct.take(np.array([a])))[0]
            kernel(
                X,
                _NO_TARGETS,
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
