"""Score every library's values with the same measures and print the table (project venv).

Reads out/values_<library>_<task>.json, computes the flipped-label detection measures and the
removal-curve areas (refitted through dataworth's engine with accuracy, the same for every
library, so the numbers compare), and prints per method and library: wall time, fits, the
measures, the ratios to dataworth, and the rank agreement with dataworth's values. Writes
out/results.md (the table for benchmarks/README.md) and out/results.csv.
"""

from __future__ import annotations

import json
import platform
from datetime import date

import numpy as np
import pandas as pd
from common import METRIC, N_SUBSETS, OUT, PERMUTATIONS_LARGE, SEED, TASKS, load_task
from scipy.stats import spearmanr

import dataworth as dw
from dataworth.evaluate import detection_scores, removal_curves

LIBRARIES = ("dataworth", "pydvl", "opendataval")
METHODS = ("loo", "tmc_10", "tmc_large", "banzhaf", "ame")

# Every default of the peers that differs from the papers, printed with the table.
DIFFERENCES = [
    "pyDVL TMC-Shapley: RelativeTruncation's default burn_in_fraction=0.4 checks truncation only "
    "after 40% of each permutation; the paper (and this run, burn_in_fraction=0) checks from the "
    "first prefix. Its default stop is HistoryDeviation(rtol=0.05, 100 samples), the paper's "
    "rule; this run stops at a fixed number of permutations (MaxUpdates) for an equal budget.",
    "pyDVL: a subset the model cannot be fitted on (empty, one class) scores the scorer's "
    "`default` (no default is given by pyDVL; this run passes the majority-class test accuracy); "
    "dataworth scores it with its prior-only policy (one-class subsets predict their class).",
    "OpenDataVal Data Shapley (GrTMCSampler): each permutation starts from a coalition of its "
    "first min_cardinality=5 points (they get no marginal contribution in that permutation), "
    "not from the empty set; truncation stops a permutation after 10 consecutive marginal "
    "contributions of ~0 (|delta| / sum < 1e-8), not the paper's |U(D) - v| < 1% |U(D)|; its "
    "stop is a Gelman-Rubin statistic below 1.05 (min 1000 models, 100 epochs of 100), not "
    "the paper's 5% mean relative change. This run: one epoch of exactly the permutations.",
    "OpenDataVal AME: z-scores each subset row (encoding (x - p)/sqrt(p(1-p)) with the row's "
    "own p) instead of the paper's 1/p, -1/(1-p); no per-p intercepts; LassoCV 5-fold, "
    "unshuffled, lambda_min; coefficients returned unscaled, so values are a sqrt(p(1-p))-"
    "weighted AME scaled by about 0.45, not the AME in the metric's units (rankings can "
    "still agree). Subsets: num_models per proportion in {0.2, 0.4, 0.6, 0.8} (here 500 x 4). "
    "An empty subset keeps utility 0.",
    "OpenDataVal scores subsets on its validation split; the test rows are passed as both "
    "validation and test here, so all libraries score on the same rows.",
    "OpenDataVal Data Banzhaf: num_models random p=1/2 subsets, MSR difference of means "
    "(the paper's).",
    "pyDVL has no AME (no regression-based estimator); OpenDataVal and dataworth only.",
]


def _load(library: str, task: str) -> dict[str, dict]:
    path = OUT / f"values_{library}_{task}.json"
    if not path.exists():
        return {}
    return {run["method"]: run for run in json.loads(path.read_text())}


def main() -> None:
    rows = []
    for task_name in TASKS:
        a = load_task(task_name)
        task = dw.Task.from_arrays(a["X_train"], a["y_train"], a["X_test"], a["y_test"])
        flipped = a["flipped"]
        ids = np.arange(task.n_train)
        runs = {lib: _load(lib, task_name) for lib in LIBRARIES}
        with dw.Utility(task, learner="logreg", metric=METRIC, seed=SEED) as u:
            for method in METHODS:
                ours = runs["dataworth"].get(method)
                for lib in LIBRARIES:
                    run = runs[lib].get(method)
                    row = {"task": task_name, "method": method, "library": lib}
                    if run is None:
                        row["note"] = (
                            "not offered" if lib == "pydvl" and method == "ame" else "not run"
                        )
                        rows.append(row)
                        continue
                    if "error" in run:
                        row["note"] = run["error"][:120]
                        rows.append(row)
                        continue
                    values = np.asarray(run["values"], dtype=np.float64)
                    result = dw.ValuationResult(f"{lib}:{method}", values, ids)
                    scores = detection_scores(values, flipped, seed=SEED)
                    curves = removal_curves(u, result, n_random=5, seed=SEED)
                    row |= {
                        "seconds": run["seconds"],
                        "fits": run["fits"],
                        "roc_auc": scores["roc_auc"],
                        "ap": scores["average_precision"],
                        "f1_2means": scores["f1_two_means"],
                        "recall@10": scores["recall_at_10"],
                        "area_hi": curves.area_high,
                        "area_lo": curves.area_low,
                    }
                    if ours is not None and "values" in ours:
                        row["time_ratio"] = run["seconds"] / ours["seconds"]
                        row["fits_ratio"] = run["fits"] / max(ours["fits"], 1)
                        row["spearman_vs_dw"] = float(spearmanr(values, ours["values"]).statistic)
                    row["note"] = ""
                    rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(OUT / "results.csv", index=False)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    shown = table.drop(columns="note").round(3)
    print(shown.to_string(index=False))
    failed = table[table["note"].fillna("") != ""]
    for _, r in failed.iterrows():
        print(f"note: {r['task']} {r['method']} {r['library']}: {r['note']}")
    print(
        "\ntime_ratio, fits_ratio: the library's wall time and fits divided by dataworth's on "
        "the same task and method (above 1: dataworth is faster / fits fewer models)."
    )
    print("Peers' defaults that differ from the papers:")
    for line in DIFFERENCES:
        print(f"- {line}")
    _markdown(table)


def _markdown(table: pd.DataFrame) -> None:
    columns = [
        "task", "method", "library", "seconds", "fits", "roc_auc", "ap", "f1_2means",
        "recall@10", "area_hi", "area_lo", "time_ratio", "fits_ratio", "spearman_vs_dw", "note",
    ]  # fmt: skip
    table = table.reindex(columns=columns)

    def cell(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = [
        f"Run on {date.today().isoformat()}, {platform.machine()}, 2 cores, no GPU, Python "
        f"{platform.python_version()}; metric {METRIC}; LogisticRegression (C=1); TMC tolerance "
        f"1%; 10 and {PERMUTATIONS_LARGE} permutations; {N_SUBSETS} subsets for Banzhaf and AME.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in table.itertuples(index=False)]
    lines += ["", "Peers' defaults that differ from the papers:", ""]
    lines += [f"- {d}" for d in DIFFERENCES]
    (OUT / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
