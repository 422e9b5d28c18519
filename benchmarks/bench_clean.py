"""dataworth clean against cleanlab on the same splits, scored on a clean holdout neither sees.

For every case (a table and a kind of label noise) and every split seed:

Tables: scikit-learn's breast cancer and digits, and 1,500 rows of ``benchmarks/tables.py``'s
``numeric2`` (20 numeric columns, 5% random labels built in), ``mixed2`` (numeric and
categorical columns, 70/30 classes, missing values) and ``mixed5`` (5 unequal, overlapping
classes); categories one-hot, missing numbers at the median.

1. a stratified split into training rows (70%) and a holdout (30%) whose labels stay clean;
2. noise on the training labels only: a share flipped symmetrically (each to another class at
   random), or class-conditional (rows of the first half of the classes moved to the next class
   with probability 0.3);
3. dataworth: ``dw.clean(X_train, y_noisy, seed=seed)`` with its defaults (remove; no rows when
   it recommends no action). cleanlab: ``find_label_issues`` on 5-fold out-of-fold probabilities
   of the same logistic regression, then the rows it does not flag;
4. the same model (scikit-learn's ``LogisticRegression(C=1)``) refitted on each tool's kept rows
   and on all training rows, and scored on the holdout.

Printed per case: each tool's held-out accuracy gain over the refit on every row, with its 95%
interval (Nadeau-Bengio corrected over the overlapping splits), the paired difference
dataworth - cleanlab, the gain dataworth's flags would have given had it acted without its
verification (the share its removal curve on folds chose, "unverified"), the detection AUROC of
each tool's ranking (dataworth's suspicion, cleanlab's label quality) against the flipped rows,
the precision and recall of the flagged rows, and each tool's seconds.

cleanlab is not a dependency of dataworth. Install it beside the benchmark only, e.g.
``pip install --target /tmp/cleanlab-pkgs --no-deps cleanlab termcolor tqdm`` and run
``PYTHONPATH=/tmp/cleanlab-pkgs python benchmarks/bench_clean.py`` (``--cases`` and ``--splits``
reduce the run).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.preprocessing import StandardScaler

import dataworth as dw
from dataworth.clean.intervals import corrected_interval

sys.path.insert(0, str(Path(__file__).parent))
from tables import make_frame

NOISES = ("0", "0.1", "0.2", "0.3", "cc")


def _table(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "breast_cancer":
        data = load_breast_cancer()
        return data.data, data.target
    if name == "digits":
        data = load_digits()
        return data.data, data.target
    frame = make_frame(name, 1500, 0)  # a synthetic table of benchmarks/tables.py
    y = np.unique(frame.pop("label").to_numpy(), return_inverse=True)[1]
    # Mixed tables: categories one-hot, missing numbers at the column's median (both tools
    # see the same encoded rows).
    frame = frame.fillna(frame.median(numeric_only=True))
    frame = pd.get_dummies(frame, dtype=float)
    return frame.to_numpy(dtype=float), y


def _noisy(y: np.ndarray, noise: str, rng: np.random.Generator) -> np.ndarray:
    C = int(y.max()) + 1
    if noise == "cc":
        moved = (y < max(1, C // 2)) & (rng.random(len(y)) < 0.3)
        return np.where(moved, (y + 1) % C, y)
    flipped = rng.random(len(y)) < float(noise)
    return np.where(flipped, (y + rng.integers(1, C, len(y))) % C, y)


def _model() -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=2000)


def _accuracy(X, y, X_test, y_test) -> float:
    return float((_model().fit(X, y).predict(X_test) == y_test).mean())


def _cleanlab(X, y, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    proba = cross_val_predict(_model(), X, y, cv=folds, method="predict_proba")
    flagged = find_label_issues(y, proba)
    return flagged, 1.0 - get_label_quality_scores(y, proba)


def _detection(flagged, score, truth) -> tuple[float, float, float]:
    auroc = roc_auc_score(truth, score) if 0 < truth.sum() < len(truth) else float("nan")
    precision = (flagged & truth).sum() / flagged.sum() if flagged.any() else float("nan")
    recall = (flagged & truth).sum() / truth.sum() if truth.any() else float("nan")
    return float(auroc), float(precision), float(recall)


def run_case(name: str, noise: str, splits: int) -> dict:
    X_all, y_all = _table(name)
    keys = ("dw", "cl", "diff", "forced", "dw_det", "cl_det", "dw_s", "cl_s", "dw_n")
    rows = {k: [] for k in keys}
    n_train = n_test = 0
    for seed in range(splits):
        train, test = train_test_split(
            np.arange(len(y_all)), test_size=0.3, stratify=y_all, random_state=seed
        )
        scaler = StandardScaler().fit(X_all[train])
        X, X_test = scaler.transform(X_all[train]), scaler.transform(X_all[test])
        y_clean, y_test = y_all[train], y_all[test]
        y = _noisy(y_clean, noise, np.random.default_rng(1000 + seed))
        truth = y != y_clean
        n_train, n_test = len(y), len(y_test)
        base = _accuracy(X, y, X_test, y_test)

        t0 = time.perf_counter()
        result = dw.clean(X, y, seed=seed)
        rows["dw_s"].append(time.perf_counter() - t0)
        keep = ~result.flagged
        dw_acc = _accuracy(X[keep], y[keep], X_test, y_test)
        # What acting regardless of the verification would have given: the share its removal
        # curve on folds chose, most suspect rows first.
        order = np.argsort(-result.score, kind="stable")
        forced = np.ones(len(y), bool)
        forced[order[: round(result.fraction * len(y))]] = False
        rows["forced"].append(_accuracy(X[forced], y[forced], X_test, y_test) - base)

        t0 = time.perf_counter()
        cl_flagged, cl_score = _cleanlab(X, y, seed)
        cl_acc = _accuracy(X[~cl_flagged], y[~cl_flagged], X_test, y_test)
        rows["cl_s"].append(time.perf_counter() - t0)

        rows["dw"].append(dw_acc - base)
        rows["cl"].append(cl_acc - base)
        rows["diff"].append(dw_acc - cl_acc)
        rows["dw_n"].append(int(result.n_flagged))
        rows["dw_det"].append(_detection(result.flagged, result.score, truth))
        rows["cl_det"].append(_detection(cl_flagged, cl_score, truth))
    out = {
        key: corrected_interval(np.array(rows[key]) * 100, n_train, n_test)
        for key in ("dw", "cl", "diff", "forced")
    }
    with warnings.catch_warnings():  # a measure no split defines (nothing flagged) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        out["dw_det"] = np.nanmean(np.array(rows["dw_det"]), axis=0)
        out["cl_det"] = np.nanmean(np.array(rows["cl_det"]), axis=0)
    out["dw_s"], out["cl_s"] = np.mean(rows["dw_s"]), np.mean(rows["cl_s"])
    out["acted"] = sum(n > 0 for n in rows["dw_n"])
    return out


def _ci(i) -> str:
    return f"{i.mean:+5.2f} [{i.low:+5.2f}, {i.high:+5.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        default="breast_cancer:all,numeric2:all,mixed2:0+0.2+cc,mixed5:0,digits:0+0.1+cc",
        help="TABLE:NOISES, comma-separated; NOISES is 'all' or values joined by '+'",
    )
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'case':<22} {'dataworth gain (pts)':<24} {'cleanlab gain':<24} {'dw - cl':<24} "
        f"{'AUROC dw/cl':<12} {'P dw/cl':<11} {'R dw/cl':<11} {'acted':<6} {'s dw/cl':<11} "
        "dataworth unverified gain",
        flush=True,
    )
    for spec in args.cases.split(","):
        name, noises = spec.split(":")
        for noise in NOISES if noises == "all" else noises.split("+"):
            r = run_case(name, noise, args.splits)
            dd, cd = r["dw_det"], r["cl_det"]
            print(
                f"{name + ' ' + noise:<22} {_ci(r['dw']):<24} {_ci(r['cl']):<24} "
                f"{_ci(r['diff']):<24} {dd[0]:.3f}/{cd[0]:.3f}  {dd[1]:.2f}/{cd[1]:.2f}  "
                f"{dd[2]:.2f}/{cd[2]:.2f}  {r['acted']}/{args.splits}  "
                f"{r['dw_s']:.1f}/{r['cl_s']:.1f}  {_ci(r['forced'])}",
                flush=True,
            )


if __name__ == "__main__":
    main()
