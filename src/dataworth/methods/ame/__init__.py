"""Average marginal effects by randomized subsets and sparse regression (docs/design.md, section 5).

One set of subset evaluations serves three methods:

* :func:`ame` (Lin et al., ICML 2022, the "explain" mode): ``p`` from a law ``P`` (the grid
  {0.2, 0.4, 0.6, 0.8} by default), subsets ``S ~ Bernoulli(p)``, the encoding ``1/p`` for a
  member and ``-1/(1-p)`` for a non-member, per-``p`` centring, a cross-validated LASSO, and
  ``AME = c * beta`` with ``c = E_P[1/(p(1-p))]``; optionally Knockoffs for selection at a
  target false discovery rate.
* :func:`ame_shapley` (the paper's SV estimator): ``logit(p)`` uniform on
  ``[logit(eps), logit(1-eps)]``, the encoding ``x - p``; the coefficient is the AME for
  ``Uniform(eps, 1-eps)``, within ``4 * eps * max|marginal|`` of the Shapley value.
* :func:`banzhaf` (Wang and Jia, AISTATS 2023): ``p = 1/2``, the maximum-sample-reuse (MSR)
  difference of means.

:func:`ame_hierarchical` values groups first (a group in or out as a whole), then the points
of the groups selected at the first level.

Why ``c * beta``: given ``p`` the encoded columns have mean 0, are uncorrelated, have variance
``1/(p(1-p))`` and ``E[x_i y | p] = Delta_i(p)``, the expected marginal effect at ``p``. So the
population least-squares coefficient is ``E[x_i y] / E[x_i^2] = AME_P(i) / c``. (The authors'
released code divides by ``c`` instead and is off by ``c^2``; ours is in the metric's units.)

References
----------
Lin, Zhang, Lécuyer, Li, Panda and Sen, "Measuring the Effect of Training Data on Deep Learning
Predictions via Randomized Experiments", ICML 2022.
Wang and Jia, "Data Banzhaf: A Robust Data Valuation Framework for Machine Learning",
AISTATS 2023.
"""

from __future__ import annotations

# The methods live in modules with one job each; this module is their public face and keeps every
# name it has always exported (the private ones for the tests and benchmarks that reach in):
#   players        the players: points, or groups in or out as a whole
#   subsets        the targets, and drawing, evaluating and journaling the subsets
#   encoding       the encoded design and its per-p centring
#   regression     the LASSO, OLS and moment regressions
#   estimate       the estimator the methods share (regression, Knockoffs, intervals)
#   explain        ame()
#   semivalues     ame_shapley() and banzhaf()
#   hierarchy      ame_hierarchical()
# and beside them: flat (the flat estimator), design_ahead, intervals (the bootstrap), knockoffs,
# plan (the memory plan), scale (which path), and lasso/ (the cross-validated LASSO).
from dataworth.methods.ame.encoding import _centre, _design, _p_strata, encode
from dataworth.methods.ame.estimate import (
    _Bounds,
    _Config,
    _each,
    _estimate,
    _intervals,
    _single,
    _size,
)
from dataworth.methods.ame.explain import ame
from dataworth.methods.ame.hierarchy import HierarchicalResult, _within_budget, ame_hierarchical
from dataworth.methods.ame.players import PlayerGame, _players
from dataworth.methods.ame.regression import _ESTIMATORS, _Fit, _folds, _lasso_cv, _moments, _ols
from dataworth.methods.ame.semivalues import ame_shapley, banzhaf
from dataworth.methods.ame.subsets import (
    _BLOCK,
    _DESIGN_VERSION,
    ProgressCallback,
    Target,
    _evaluate_design,
    _Evaluated,
    _resolve_target,
    _run_key,
)

__all__ = [
    "_BLOCK",
    "_DESIGN_VERSION",
    "_ESTIMATORS",
    "HierarchicalResult",
    "PlayerGame",
    "ProgressCallback",
    "Target",
    "_Bounds",
    "_Config",
    "_Evaluated",
    "_Fit",
    "_centre",
    "_design",
    "_each",
    "_estimate",
    "_evaluate_design",
    "_folds",
    "_intervals",
    "_lasso_cv",
    "_moments",
    "_ols",
    "_p_strata",
    "_players",
    "_resolve_target",
    "_run_key",
    "_single",
    "_size",
    "_within_budget",
    "ame",
    "ame_hierarchical",
    "ame_shapley",
    "banzhaf",
    "encode",
]
