"""Attributions of single predictions from gradients at the trained model.

* ``similarity``: a TracIn-style gradient similarity at one checkpoint (Pruthi, Liu, Kale and
  Sundararajan, "Estimating Training Data Influence by Tracing Gradient Descent", NeurIPS 2020):
  a training point's loss gradient against the prediction's gradient
  (:func:`gradient_similarity`).
* ``network_influence``: influence functions for networks (Koh and Liang, ICML 2017), the
  Hessian replaced by a damped empirical Fisher and solved in the space of the training points.
* ``per_example``: the per-example gradients of a network checkpoint both of them use.

The logistic regression's own influence functions are :mod:`dataworth.methods.influence`.
"""

from __future__ import annotations

from dataworth.methods.gradients.similarity import gradient_similarity

__all__ = ["gradient_similarity"]
