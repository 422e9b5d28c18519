"""Valuation methods: what each training point or group is worth (docs/design.md, sections 2-6).

Families, each a package that reads on its own:

* :mod:`~dataworth.methods.shapley`: TMC-Shapley, exact enumeration, Beta Shapley, Banzhaf
  until stable, the stopping rules.
* :mod:`~dataworth.methods.ame`: the average marginal effect (Lin et al., ICML 2022): subsets,
  the encoded design, the LASSO (:mod:`~dataworth.methods.ame.lasso`), Knockoffs, the hierarchy,
  AME-based Shapley and Banzhaf.
* :mod:`~dataworth.methods.trees`: Data-OOB and its compiled trees.
* :mod:`~dataworth.methods.knn`: KNN-Shapley in closed form.
* :mod:`~dataworth.methods.gradients`: attributions of single predictions from gradients
  (TracIn-style gradient similarity, influence functions of networks).

Beside them: exact leave-one-out and leave-group-out (``loo``), influence functions
(``influence``), group builders (``groups``), diagnostics of the valued points
(``diagnostics``), how two valuations agree (``compare``), and what the families share: the one
list of methods (``registry``), the result every method returns (``result``), the randomized
subset design (``sampler``), sampled intervals (``intervals``) and rank stability
(``stability``).
"""
