"""The AME paper's backdoor experiment in miniature (`dataworth evaluate --task backdoor`).

Lin et al. (ICML 2022, section 5) poison training images with a trigger patch relabelled to a
target class and ask whether the attributions of patched test predictions find the poisons.

* ``data``: the poisoned digits, their clean twins and the patched queries.
* ``learner``: the experiment's small network.
* ``experiment``: the attack check, then per-query AME (LASSO and Knockoffs at
  ``m = c k log2 N`` subsets) and the baselines at the same number of trained models
  (:func:`~dataworth.evaluate.backdoor.experiment.run_backdoor`); ``backdoor.json``.
* ``refits``: LOO and TMC-Shapley of many queries at a budget of trained models.
* ``network``: the one-network baselines (last-layer influence, TracIn, hidden-layer KNN-Shapley).
* ``page``: the report page.

Needs the ``torch`` extra; nothing here is imported by :mod:`dataworth.evaluate` itself.
"""
