"""
AME of a single prediction
==========================

The average marginal effect (Lin et al., ICML 2022) of each training point on one test
prediction: submodels trained on random subsets, then a LASSO over subset membership. Knockoffs
select the points whose effect is distinguishable from zero at a false discovery rate of 0.1.
"""

import matplotlib.pyplot as plt
import numpy as np

import dataworth as dw

task = dw.load_dataset("breast_cancer", train_size=400, seed=0)
u = dw.Utility(task, learner="logreg", metric="neg_log_loss")
result = dw.ame(u, target=0, n_subsets=1000, fdr=0.1, seed=0)  # test row 0
order = np.argsort(result.values)
print("largest effects:", result.to_frame().iloc[order[::-1][:5]][["player_id", "value"]])

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.hist(result.values[result.values != 0], bins=30)
ax.set_xlabel("AME on test row 0 (nonzero values)")
ax.set_ylabel("training points")
fig.tight_layout()
