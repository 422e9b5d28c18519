"""Beta Shapley (Kwon and Zou, AISTATS 2022) through the shared subset sampler.

A semivalue gives a coalition ``S`` of the other players a weight that depends only on its size.
Beta Shapley with parameters ``(alpha, beta)`` weighs one coalition of size ``s`` (of ``n - 1``
others) by ``B(s + beta, n - 1 - s + alpha) / B(alpha, beta)``. That is exactly the probability
of ``S`` when ``p ~ Beta(beta, alpha)`` and every other point joins with probability ``p``, so
Beta Shapley is the AME of Lin et al. (ICML 2022) for ``P = Beta(beta, alpha)`` (note the swap:
the paper's default ``(4, 1)``, which favours small coalitions, is ``p ~ Beta(1, 4)``), and the
AME estimator of :mod:`dataworth.methods.ame` estimates it from one shared set of subsets.
``Beta(1, 1)`` is the Shapley value.
"""

from __future__ import annotations

from math import comb

import numpy as np
from scipy import integrate, special, stats

from dataworth.errors import DataworthError
from dataworth.methods.ame import ame
from dataworth.methods.result import ValuationResult
from dataworth.methods.sampler import Beta
from dataworth.methods.shapley.exact import exact_semivalue
from dataworth.methods.shapley.tmc import tmc_shapley


def beta_weights(n: int, alpha: float, beta: float, eps: float = 0.0) -> np.ndarray:
    """Weight of one coalition of each size ``0..n-1`` of the other players.

    With ``eps > 0`` the law of ``p`` is ``Beta(beta, alpha)`` truncated to ``[eps, 1 - eps]``,
    the law the sampling estimator actually uses.
    """
    if alpha <= 0 or beta <= 0:
        raise DataworthError(f"Beta Shapley needs alpha, beta > 0; got ({alpha}, {beta}).")
    sizes = np.arange(n)
    if eps == 0.0:
        return np.exp(
            special.betaln(sizes + beta, n - 1 - sizes + alpha) - special.betaln(alpha, beta)
        )
    law = stats.beta(beta, alpha)
    mass = law.cdf(1 - eps) - law.cdf(eps)
    return np.array(
        [
            integrate.quad(
                lambda p, s=s: p**s * (1 - p) ** (n - 1 - s) * law.pdf(p), eps, 1 - eps, limit=200
            )[0]
            / mass
            for s in sizes
        ]
    )


def exact_beta_shapley(
    utility, alpha: float = 4.0, beta: float = 1.0, *, eps: float = 0.0, groups=None
) -> ValuationResult:
    """Beta Shapley values by enumerating every subset (at most 20 players); the reference."""
    return exact_semivalue(
        utility,
        lambda n: beta_weights(n, alpha, beta, eps),
        groups=groups,
        method="exact_beta_shapley",
        params={"alpha": alpha, "beta": beta, "eps": eps},
    )


def beta_shapley(
    utility,
    alpha: float = 4.0,
    beta: float = 1.0,
    *,
    n_subsets: int | None = None,
    k: int | None = None,
    eps: float = 0.01,
    estimator: str = "lasso",
    groups=None,
    seed: int = 0,
    permutations: int = 100,
    tol: float = 0.0,
    progress=None,
    until=None,
    rank_k: int = 10,
    rank_level: float = 0.9,
    time_budget: float | None = None,
) -> ValuationResult:
    """Beta Shapley values (Kwon and Zou, AISTATS 2022) estimated from random subsets.

    Parameters
    ----------
    utility : Utility or Game
        The game to value.
    alpha, beta : float, default=(4, 1)
        The paper's parameters; ``(4, 1)`` emphasises small coalitions, ``(1, 1)`` is Shapley.
    n_subsets, k : int, optional
        The number of subsets, or the assumed number of influential points (see :func:`ame`).
    eps : float, default=0.01
        ``p`` is drawn from ``Beta(beta, alpha)`` truncated to ``[eps, 1 - eps]``: the ``1/p``
        encoding needs it when ``alpha <= 1`` or ``beta <= 1``. Each value then differs from
        the untruncated one by at most ``2 * (mass of the law outside [eps, 1 - eps]) *
        max |marginal contribution|``; the bound's mass factor is in ``params``.
    estimator : {"lasso", "ols", "moment", "permutation"}, default="lasso"
        How values come from the subsets (see :func:`ame`). ``"permutation"`` instead walks
        random permutations as TMC-Shapley does and reweights each marginal contribution to a
        coalition of size ``s`` by ``n C(n-1, s) w(s)`` (no truncation of ``p`` is needed).
    permutations, tol : int, float
        For ``estimator="permutation"``: the number of permutations and the TMC truncation
        tolerance (0, no truncation, by default: truncation biases a semivalue that weighs the
        large coalitions it skips).
    groups : dict or list, optional
        Value groups instead of points.
    seed : int, default=0
        Determines the subsets.
    progress : callable, optional
        ``progress(done, total)``.
    until, rank_k, rank_level, time_budget : optional
        For ``estimator="permutation"``: run until the ranks are stable, as
        :func:`~dataworth.methods.shapley.tmc.tmc_shapley` does (``permutations`` is then ignored).

    Returns
    -------
    ValuationResult
        With the permutation estimator, 95% Student-t intervals across permutations (as
        :func:`~dataworth.methods.shapley.tmc.tmc_shapley` gives them) and the samples for
        :func:`~dataworth.methods.stability.rank_stability`; the subset estimators give no
        interval (``ci_note`` says so).

    References
    ----------
    Kwon, Y. and Zou, J. "Beta Shapley: a Unified and Noise-reduced Data Valuation Framework
    for Machine Learning", AISTATS 2022.
    """
    if until is not None and estimator != "permutation":
        raise DataworthError("until= stops a permutation run; use estimator='permutation' with it.")
    if estimator == "permutation":

        def multipliers(n: int) -> np.ndarray:
            counts = np.array([comb(n - 1, s) for s in range(n)], dtype=np.float64)
            return n * counts * beta_weights(n, alpha, beta)

        result = tmc_shapley(
            utility,
            permutations=permutations,
            tol=tol,
            seed=seed,
            groups=groups,
            progress=progress,
            size_weights=(f"beta({alpha},{beta})", multipliers),
            until=until,
            rank_k=rank_k,
            rank_level=rank_level,
            time_budget=time_budget,
        )
        result.method = "beta_shapley"
        result.params |= {"alpha": alpha, "beta": beta, "estimator": "permutation"}
        return result
    law = Beta(beta, alpha, eps)
    result = ame(
        utility,
        n_subsets=n_subsets,
        k=k,
        law=law,
        estimator=estimator,
        groups=groups,
        seed=seed,
        progress=progress,
    )
    outside = 1.0 - (stats.beta(beta, alpha).cdf(1 - eps) - stats.beta(beta, alpha).cdf(eps))
    result.method = "beta_shapley"
    result.params |= {"alpha": alpha, "beta": beta, "eps": eps, "mass_outside": float(outside)}
    result.ci_note = "no interval: the subset regression's sampling error is not estimated"
    return result
