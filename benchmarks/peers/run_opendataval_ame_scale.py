"""OpenDataVal's AME on the 2,000-row binary task, timed (run in .venv-opendataval).

The task is the one ``benchmarks/bench_ame.py --scale`` values with dataworth:
``make_classification(n_samples=n + 500, n_features=10, n_informative=5, flip_y=0.1,
random_state=0)``, the first ``n`` rows to train, the last 500 to score on (OpenDataVal's
"validation" split). The model is scikit-learn's ``LogisticRegression`` behind OpenDataVal's
sklearn wrapper and the metric is OpenDataVal's accuracy, as in ``run_opendataval.py``.
OpenDataVal's AME draws ``num_models`` subsets for each of its 4 proportions (0.2, 0.4, 0.6, 0.8),
so ``--subsets 4000`` runs ``num_models = 1000``.

The whole valuation is timed with ``time.perf_counter``: ``train`` (the fits, one per subset) and
then ``data_values`` (its ``LassoCV`` on the z-scored subsets), each also reported apart.

Threads: by default BLAS, OpenMP and torch are held to one thread (``--threads 0`` leaves the
libraries' defaults). Every fit here is a 10-column logistic regression on at most 2,000 rows,
and on the busy 2-core machine the default two OpenBLAS threads made it several times slower
(400 subsets: fits 39 s against 9 s with one thread), which would flatter any ratio against
OpenDataVal; one thread is its faster setting there. Prints one JSON line::

    /path/to/.venv-opendataval/bin/python benchmarks/peers/run_opendataval_ame_scale.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

HERE = Path(__file__).resolve().parent
N_TEST = 500
PROPORTIONS = 4  # OpenDataVal's AME: one set of num_models subsets per proportion
SEED = 0

os.environ.setdefault("TQDM_DISABLE", "1")  # its per-subset progress bars, not wanted here
warnings.filterwarnings("ignore")
sys.path.insert(0, str(HERE))
import torch  # noqa: E402  (before the torchvision stand-in: see _tv_stub)
import transformers  # noqa: E402,F401
from _tv_stub import install  # noqa: E402

install()
from opendataval.dataloader import DataFetcher  # noqa: E402
from opendataval.dataval import AME  # noqa: E402
from opendataval.metrics import Metrics  # noqa: E402
from opendataval.model import ClassifierSkLearnWrapper  # noqa: E402


class CountingLogisticRegression(LogisticRegression):
    """scikit-learn's LogisticRegression that counts its fits (subsets with one class get
    OpenDataVal's dummy model instead and are not counted)."""

    fits = 0

    def fit(self, X, y, sample_weight=None):
        result = super().fit(X, y, sample_weight=sample_weight)
        CountingLogisticRegression.fits += 1
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subsets", type=int, default=4000, help="in all; a multiple of 4")
    parser.add_argument("--n-train", type=int, default=2000, help="training rows")
    parser.add_argument(
        "--threads", type=int, default=1, help="BLAS/OpenMP/torch threads; 0: libraries' defaults"
    )
    args = parser.parse_args()
    if args.subsets <= 0 or args.subsets % PROPORTIONS:
        parser.error(f"--subsets must be a positive multiple of {PROPORTIONS}, not {args.subsets}")

    x, y = make_classification(
        n_samples=args.n_train + N_TEST,
        n_features=10,
        n_informative=5,
        flip_y=0.1,
        random_state=SEED,
    )
    x = x.astype(np.float32)
    y = np.eye(2, dtype=np.float32)[y]  # OpenDataVal takes one-hot labels
    x_train, y_train = x[: args.n_train], y[: args.n_train]
    x_test, y_test = x[args.n_train :], y[args.n_train :]
    # The test rows are both OpenDataVal's validation split (what subsets are scored on) and
    # its test split (unused by AME), as in run_opendataval.py.
    fetcher = DataFetcher.from_data_splits(
        x_train, y_train, x_test, y_test, x_test, y_test, one_hot=True
    )
    model = ClassifierSkLearnWrapper(CountingLogisticRegression, 2, max_iter=1000)
    num_models = args.subsets // PROPORTIONS
    evaluator = AME(num_models=num_models, random_state=np.random.RandomState(SEED))

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads if args.threads > 0 else None):
        blas_threads = sorted({pool["num_threads"] for pool in threadpool_info()})
        start = time.perf_counter()
        evaluator.train(fetcher, model, Metrics.ACCURACY)
        fitted = time.perf_counter()
        values = np.asarray(evaluator.data_values, dtype=np.float64)
        end = time.perf_counter()

    print(
        json.dumps(
            {
                "library": "opendataval",
                "method": "AME",
                "seconds": end - start,
                "fits_s": fitted - start,
                "lasso_s": end - fitted,
                "n_train": args.n_train,
                "n_test": N_TEST,
                "subsets": args.subsets,
                "num_models": num_models,
                "proportions": [0.2, 0.4, 0.6, 0.8],
                "fits": CountingLogisticRegression.fits,
                "model": "sklearn LogisticRegression(max_iter=1000) via ClassifierSkLearnWrapper",
                "metric": "accuracy (opendataval Metrics.ACCURACY)",
                "random_state": SEED,
                "threads": {"blas_openmp": blas_threads, "torch": torch.get_num_threads()},
                "nonzero_values": int(np.count_nonzero(values)),
                "versions": {
                    "opendataval": version("opendataval"),
                    "sklearn": sklearn.__version__,
                    "numpy": np.__version__,
                    "torch": torch.__version__,
                    "python": sys.version.split()[0],
                },
            }
        )
    )


if __name__ == "__main__":
    main()
