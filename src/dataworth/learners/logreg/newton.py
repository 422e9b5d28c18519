"""The Newton/chord solver of the batched logistic regression, one chunk of subsets at a time.

Vectorised over subsets: each subset starts from its warm start (or from the full-data solution,
reusing its objective, gradient and Hessian corrected by the excluded rows), takes Newton steps,
reuses a Hessian while it makes the gradient contract fast (chord steps), and backtracks per
subset (Armijo) until its mean-scaled gradient meets the tolerance. Every decision is taken per
subset from that subset's numbers alone. :class:`_NewtonSolver` is a base class of
:class:`dataworth.learners.logreg.learner.BatchedLogisticRegression`, whose ``C``, ``tol``
and ``max_iter`` it reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataworth.learners.logreg.numerics import (
    _finish_hessian,
    _logits,
    _penalty,
    _penalty_grad,
    _sigmoid_softplus,
    _softmax,
    _stacked_data_hessian,
)
from dataworth.learners.logreg.one_out import OneOutReference, solve_one_out
from dataworth.learners.logreg.problem import (
    _class_presence,
    _proba_width,
    _Problem,
    _project,
    _Rows,
    _Structure,
)

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
    # installed): what it reuses (:mod:`dataworth.learners.logreg.one_out`).
    one_out: OneOutReference | None = None


class _NewtonSolver:
    """The chunk solver's methods (a base class; ``C``, ``tol`` and ``max_iter`` come from it,
    and ``mean_gradient`` for the one-out path)."""

    C: float
    tol: float
    max_iter: int

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
            proba, lse = _softmax(z, struct.logit_offset)
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
