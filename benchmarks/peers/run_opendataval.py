"""OpenDataVal's side of the peer benchmark (run in .venv-opendataval).

LOO, Data Shapley (its TMC sampler) at 10 and at the larger number of permutations, Data
Banzhaf and AME, with scikit-learn's LogisticRegression behind its sklearn wrapper and accuracy.
OpenDataVal scores subsets on its *validation* split; the task's test rows are passed as both
validation and test, so every library scores on the same rows.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
from common import (
    HERE,
    N_SUBSETS,
    PERMUTATIONS_LARGE,
    PERMUTATIONS_SMALL,
    SEED,
    TASKS,
    Stopwatch,
    load_task,
    write_run,
)
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore")
sys.path.insert(0, str(HERE))
import torch  # noqa: E402,F401  (before the torchvision stand-in: see _tv_stub)
import transformers  # noqa: E402,F401
from _tv_stub import install  # noqa: E402

install()
from opendataval.dataloader import DataFetcher  # noqa: E402
from opendataval.dataval import AME, DataBanzhaf, DataShapley, LeaveOneOut  # noqa: E402
from opendataval.metrics import Metrics  # noqa: E402
from opendataval.model import ClassifierSkLearnWrapper  # noqa: E402


class CountingLogisticRegression(LogisticRegression):
    """scikit-learn's LogisticRegression that counts its successful fits."""

    fits = 0

    def fit(self, X, y, sample_weight=None):
        result = super().fit(X, y, sample_weight=sample_weight)
        CountingLogisticRegression.fits += 1
        return result


def _one_hot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[y]


def _tmc(permutations: int):
    # One "epoch" of exactly `permutations` permutations and no Gelman-Rubin check before
    # it ends, so the run stops at the same budget as the others. Their sampler's other
    # defaults (min_cardinality=5 starting coalition, their truncation) are kept and reported.
    return DataShapley(
        max_mc_epochs=1,
        models_per_epoch=permutations,
        min_models=permutations,
        cache_name=None,
        random_state=np.random.RandomState(SEED),
    )


def main() -> None:
    for name in TASKS:
        a = load_task(name)
        k = int(max(a["y_train"].max(), a["y_test"].max()) + 1)
        X_train, X_test = a["X_train"].astype(np.float32), a["X_test"].astype(np.float32)
        y_train, y_test = _one_hot(a["y_train"], k), _one_hot(a["y_test"], k)
        methods = {
            "loo": lambda: LeaveOneOut(random_state=np.random.RandomState(SEED)),
            "tmc_10": lambda: _tmc(PERMUTATIONS_SMALL),
            "tmc_large": lambda: _tmc(PERMUTATIONS_LARGE),
            "banzhaf": lambda: DataBanzhaf(
                num_models=N_SUBSETS, random_state=np.random.RandomState(SEED)
            ),
            # AME draws num_models subsets for each of its 4 proportions: 4 x 500 = N_SUBSETS.
            "ame": lambda: AME(num_models=N_SUBSETS // 4, random_state=np.random.RandomState(SEED)),
        }
        runs = []
        for method, make in methods.items():
            fetcher = DataFetcher.from_data_splits(
                X_train, y_train, X_test, y_test, X_test, y_test, one_hot=True
            )
            model = ClassifierSkLearnWrapper(CountingLogisticRegression, k, max_iter=1000)
            CountingLogisticRegression.fits = 0
            try:
                with Stopwatch() as watch:
                    evaluator = make().train(fetcher, model, Metrics.ACCURACY)
                    values = np.asarray(evaluator.data_values, dtype=np.float64)
            except Exception as error:  # record why, never fake a number
                runs.append({"method": method, "error": f"{type(error).__name__}: {error}"})
                print(f"opendataval {name} {method}: FAILED {type(error).__name__}: {error}")
                continue
            fits = CountingLogisticRegression.fits
            runs.append(
                {
                    "method": method,
                    "values": values.tolist(),
                    "seconds": watch.seconds,
                    "fits": fits,
                    "note": "",
                }
            )
            print(f"opendataval {name} {method}: {watch.seconds:.2f} s, {fits} fits")
        write_run("opendataval", name, runs)


if __name__ == "__main__":
    main()
