"""The LASSO at one alpha on a working set of columns, with an optimality check on the rest.

scikit-learn's coordinate descent on a Gram matrix pays about ``n^2`` per alpha whatever the
support (the products ``G w`` of its duality-gap checks): on the sparse part of a path over a
wide design (AME with Knockoffs, more columns than subsets) that is most of the time. Here the
descent runs on the Gram matrix of a working set ``W``: the current support plus the columns the
sequential strong rule keeps (Tibshirani et al., "Strong rules for discarding predictors in
lasso-type problems", JRSS-B 2012): ``|x_j'r| >= 2 lam - lam_prev`` with ``lam = alpha * m``.
Every other column is then checked against the optimality condition ``|x_j'r| <= lam``; those
that violate it join ``W`` and the solve repeats. When none does, the solution on ``W`` padded
with zeros solves the whole problem with the same duality gap (the dual point it defines is
feasible for every column), so the stopping rule is scikit-learn's own.
"""

from __future__ import annotations

import numpy as np

# Working sets above this share of the columns go back to the whole Gram matrix.
MAX_SHARE = 0.25


def working_set_solve(
    path,
    gram: np.ndarray,
    xy: np.ndarray,
    y: np.ndarray,
    alpha: float,
    alpha_prev: float,
    coef: np.ndarray,
    options: dict,
) -> np.ndarray | None:
    """The LASSO at ``alpha`` warm-started from ``coef`` (the solution at ``alpha_prev``).

    ``path`` is :func:`dataworth.methods.ame.lasso.paths._path`. Returns the coefficients, or
    None when the working set would exceed :data:`MAX_SHARE` of the columns (the caller then runs
    the whole problem).
    """
    n = gram.shape[0]
    m = len(y)
    lam, lam_prev = alpha * m, alpha_prev * m
    support = np.flatnonzero(coef)
    grad = xy - gram[:, support] @ coef[support] if support.size else xy.copy()
    work = np.union1d(support, np.flatnonzero(np.abs(grad) >= 2.0 * lam - lam_prev))
    limit = MAX_SHARE * n
    while True:
        if work.size > limit:
            return None
        out = np.zeros(n, dtype=coef.dtype)
        if work.size:
            sub = np.ascontiguousarray(gram[np.ix_(work, work)])
            out[work] = path(
                m,
                y,
                np.array([alpha], dtype=coef.dtype),
                sub,
                np.ascontiguousarray(xy[work]),
                coef_init=coef[work].copy(),
                **options,
            )[:, 0]
        active = np.flatnonzero(out)
        grad = xy - gram[:, active] @ out[active] if active.size else xy.copy()
        grad[work] = 0.0
        violators = np.flatnonzero(np.abs(grad) > lam)
        if not violators.size:
            return out
        work = np.union1d(work, violators)
