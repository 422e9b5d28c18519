"""
Leave-one-out against TMC-Shapley
=================================

Exact leave-one-out (LOO) values a point by the difference of two fits; TMC-Shapley (Ghorbani and
Zou, ICML 2019) averages its marginal contribution over random orders of the training set. On
400 rows of the breast-cancer data the two disagree on most points: LOO is near zero for a
point whose neighbours can stand in for it, while Shapley credits it with what it adds to small
subsets too.
"""

import matplotlib.pyplot as plt

import dataworth as dw

task = dw.load_dataset("breast_cancer", train_size=400, seed=0)
u = dw.Utility(task, learner="logreg", metric="neg_log_loss")

loo = dw.loo(u)  # every training point: 401 exact fits
shapley = dw.tmc_shapley(u, permutations=10, tol=0.01, seed=0)
print(dw.compare_values(shapley, loo))

# %%
# The two valuations side by side; each dot is a training point.

fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(loo.values, shapley.values, s=8, alpha=0.6)
ax.axhline(0, color="grey", lw=0.5)
ax.axvline(0, color="grey", lw=0.5)
ax.set_xlabel("exact leave-one-out (neg. log-loss)")
ax.set_ylabel("TMC-Shapley, 10 permutations")
fig.tight_layout()

# %%
# The lowest-valued points, with their 95% intervals, as a pandas DataFrame.

shapley.to_frame().sort_values("value").head()
