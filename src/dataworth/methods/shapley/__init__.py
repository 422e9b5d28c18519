"""Shapley values and their kin: sampled by permutations, weighted by coalition size, or exact.

* :func:`tmc_shapley`: Truncated Monte Carlo Shapley (Ghorbani and Zou, "Data Shapley: Equitable
  Valuation of Data for Machine Learning", ICML 2019), of points or groups (``tmc``).
* :func:`exact_shapley` and :func:`exact_semivalue`: every subset enumerated, the reference the
  sampled estimators are checked against (``exact``).
* :func:`beta_shapley`: Beta Shapley (Kwon and Zou, AISTATS 2022) through the shared subset
  sampler (``beta``).
* :func:`banzhaf_until`: MSR Banzhaf values (Wang and Jia, AISTATS 2023) grown until their ranks
  are stable (``banzhaf``).
* ``stopping``: the composable rules that stop a sampled valuation (counts, time, convergence,
  stable ranks); ``affordable``: exact values beside an estimate when the game is small.

The intervals and rank stability every sampled method reports live one level up, in
:mod:`dataworth.methods.intervals` and :mod:`dataworth.methods.stability`, because AME's results
use them too.
"""

from __future__ import annotations

from dataworth.methods.shapley.banzhaf import banzhaf_until
from dataworth.methods.shapley.beta import beta_shapley, exact_beta_shapley
from dataworth.methods.shapley.exact import (
    EXACT_MAX_PLAYERS,
    exact_semivalue,
    exact_shapley,
    group_sums,
    shapley_weights,
)
from dataworth.methods.shapley.tmc import tmc_shapley

__all__ = [
    "EXACT_MAX_PLAYERS",
    "banzhaf_until",
    "beta_shapley",
    "exact_beta_shapley",
    "exact_semivalue",
    "exact_shapley",
    "group_sums",
    "shapley_weights",
    "tmc_shapley",
]
