"""
Leave-group-out: group size against influence
=============================================

Removing a group of points can matter far more, or far less, than the sum of its points' LOO
values. Exact leave-group-out refits the model without each group.
"""

import matplotlib.pyplot as plt

import dataworth as dw

task = dw.load_dataset("breast_cancer", train_size=400, seed=0)
u = dw.Utility(task, learner="logreg", metric="accuracy")
groups = dw.random_groups(task.n_train, [0.05, 0.1, 0.2, 0.4, 0.6, 0.8], seed=0)
result = dw.leave_group_out(u, groups)
frame = result.to_frame()
print(frame[["player_id", "value"]])

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(result.extra["size"], result.values, "o-")
ax.set_xlabel("rows removed")
ax.set_ylabel("accuracy lost")
fig.tight_layout()
