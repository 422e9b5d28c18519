"""Write the benchmark's tasks as arrays every environment can read (project venv).

breast_cancer: 398 training rows, 10% of their labels flipped on purpose (seed 0).
synthetic: the built-in generator (its own 10% planted label noise), 500 rows -> 350 training.
"""

from __future__ import annotations

import numpy as np
from common import OUT, SEED

import dataworth as dw


def main() -> None:
    OUT.mkdir(exist_ok=True)
    tasks = {
        "breast_cancer": dw.load_dataset("breast_cancer", flip=0.1, seed=SEED),
        "synthetic": dw.load_dataset("synthetic", rows=500, seed=SEED),
    }
    for name, task in tasks.items():
        flipped = np.isin(task.train_ids, task.metadata["flipped_ids"])
        np.savez(
            OUT / f"task_{name}.npz",
            X_train=task.X_train,
            y_train=task.y_train,
            X_test=task.X_test,
            y_test=task.y_test,
            train_ids=task.train_ids,
            flipped=flipped,
        )
        print(f"{name}: {task.n_train} train, {task.n_test} test, {flipped.sum()} flipped")


if __name__ == "__main__":
    main()
