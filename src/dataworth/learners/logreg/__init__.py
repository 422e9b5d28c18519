"""Exact L2 logistic regression on many training subsets at once (docs/design.md, section 4).

The objective is scikit-learn's ``LogisticRegression(C=C)``; every subset is solved to a stated
gradient tolerance, so a difference of two fits is the data's effect, not the optimizer's.

* ``learner``: :class:`BatchedLogisticRegression`, the learner the engine calls.
* ``problem``, ``numerics``: the prepared rows, class structures, logits, Hessians.
* ``batches``, ``newton``: a batch's chunks and the vectorised Newton/chord solver of each.
* ``one_out``, ``one_out_kernels``: one-out subsets by Sherman-Morrison updates (compiled).
* ``near``, ``near_kernels``: large test sets scored near the full-data model.
* ``chains``, ``chain_fits``, ``chains_kernels``, ``chains_math``: chains of nested subsets
  (TMC's prefixes), each member warm-started from the one before, in compiled BFGS.
* ``proba_kernels``: multiclass probabilities, one model at a time (compiled).
"""

from __future__ import annotations

from dataworth.learners.logreg.learner import BatchedLogisticRegression
from dataworth.learners.logreg.problem import LogisticConvergenceWarning

__all__ = ["BatchedLogisticRegression", "LogisticConvergenceWarning"]
