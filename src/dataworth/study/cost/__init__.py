"""The cost study and the plan: how long one fit takes, and what each method would cost.

* ``timing``: the fit times at full size and on subsamples, and each method's own path timed
  (a batch of one-out subsets, a chain of prefixes, a few trees, a few test rows).
* ``paths``: the timed path of each method; ``groups``: leave-group-out and TMC of groups timed
  on the study's own groups; ``warm_up``: the compiled kernels a study will use, compiled on a
  second thread while the models are timed.
* ``result``: what the cost study measured; ``plan``: each method's refits and seconds against a
  budget.
"""
