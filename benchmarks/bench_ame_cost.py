"""AME's estimate in the study's budget against the AME the study then runs.

``python benchmarks/bench_ame_cost.py --dw-ame MODE`` times ``dw.ame(u, n_subsets=4000)`` on the
10,000 binary rows of the issue (make_classification, 20 features, logistic regression,
neg_log_loss) with ``mode=MODE`` (``auto``, the default path, or ``flat``), wall and CPU seconds.

``python benchmarks/bench_ame_cost.py KIND:ROWS [KIND:ROWS ...]`` (kinds of
``benchmarks/tables.py``; default ``numeric2:2000 mixed5:2000 numeric2:10000 mixed5:10000``),
``--subsets M`` (default 4000, the study's), ``--scaling KIND`` instead: the flat estimation's
seconds at 100 to 3,000 players and 100 to 4,000 subsets (what
:data:`dataworth.study.cost.paths.AME_EXPONENT_RANGE` rests on).

Each case runs in a fresh process: the cost study as the study runs it (its AME timing timed
apart), the estimate ``fixed + per_subset * M`` of :func:`dataworth.study.cost.plan.estimate_ame`
for the study's shape (the metric and 3 test rows), the estimate of the previous model (the square
of the players from the 100-player timing, level 2 at the flat limit) from the same timing, then the
AME the study runs on that path: flat (3 hardest test rows, then the metric, one set of fits) or
hierarchical (:func:`dataworth.methods.ame.scale.hierarchical_metric`, the metric), with its wall
and CPU seconds, each level's fits and estimation, and actual / estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TARGETS = 4  # the study's shape: the metric and its 3 hardest test rows (ame_rows=3)
DEFAULT_CASES = ("numeric2:2000", "mixed5:2000", "numeric2:10000", "mixed5:10000")


def _old_estimate(cost, players: int, targets: int) -> tuple[float, float]:
    """The previous model: the square of the players from the 100-player timing; above the flat
    limit, twice the fits and regressions on the groups and on the limit's players."""
    from dataworth.methods.ame.plan import FLAT_COLUMN_LIMIT, hierarchy_size

    timing = cost.paths["ame_estimation"]
    per_fit = cost.seconds_per_fit(max(1, cost.n_train // 2))

    def square(p: int) -> float:
        return timing["seconds"] * (p / timing["players"]) ** 2

    if players > FLAT_COLUMN_LIMIT:
        return targets * (square(hierarchy_size(players)) + square(FLAT_COLUMN_LIMIT)), 2 * per_fit
    return targets * square(players), per_fit


def _case(spec: str, m: int) -> dict:
    import dataworth as dw
    import dataworth.study.cost.paths as cost_paths
    import dataworth.study.cost.plan as plan_module
    from dataworth.engine.utility import Utility
    from dataworth.methods.ame import ame
    from dataworth.methods.ame.scale import hierarchical_metric, study_ame_plan
    from dataworth.study.cost.plan import ame_level_sizes, estimate_ame
    from dataworth.study.cost.timing import run_cost_study
    from dataworth.study.steps import hardest_test_rows
    from tables import make_frame

    kind, rows = spec.split(":")
    task = dw.load_dataset(frame=make_frame(kind, int(rows)), target="label", seed=0)
    n = task.n_train
    timed = {}
    original = cost_paths._time_ame

    def timing_ame(*args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        out = original(*args, **kwargs)
        timed.update(wall=time.perf_counter() - start, cpu=time.process_time() - cpu)
        return out

    cost_paths._time_ame = timing_ame
    start = time.perf_counter()
    cost = run_cost_study(task, models=["logreg"])
    cost_seconds = time.perf_counter() - start
    fixed, per_subset = estimate_ame(cost, n, TARGETS)
    shares = {}
    for share in (0.25, 0.5, 1.0):  # what the modelled size of level 2 changes
        kept, plan_module.LEVEL2_SHARE = plan_module.LEVEL2_SHARE, share
        f, p = estimate_ame(cost, n, TARGETS)
        plan_module.LEVEL2_SHARE = kept
        shares[str(share)] = round(f + p * m, 1)
    old_fixed, old_per_subset = _old_estimate(cost, n, TARGETS)
    plan = study_ame_plan(n, n_subsets=m, k=None, fdr=0.1, n_targets=TARGETS)
    row = {
        "case": spec,
        "n_train": n,
        "classes": task.n_classes,
        "m": m,
        "path": plan.mode,
        "modelled_levels": ame_level_sizes(n),
        "cost_study_s": round(cost_seconds, 1),
        "ame_timing_s": round(timed.get("wall", float("nan")), 2),
        "ame_timing_cpu_s": round(timed.get("cpu", float("nan")), 2),
        "timing": cost.paths["ame_estimation"],
        "per_fit_half_rows_s": cost.seconds_per_fit(max(1, n // 2)),
        "estimate_s": fixed + per_subset * m,
        "estimate_fixed_s": fixed,
        "estimate_per_subset_s": per_subset,
        "old_estimate_s": old_fixed + old_per_subset * m,
        "estimate_by_level2_share_s": shares,
    }
    start, cpu = time.perf_counter(), time.process_time()
    with Utility(task, learner="logreg", metric="neg_log_loss", seed=0) as u:
        if plan.mode == "hierarchical":
            levels = list(
                hierarchical_metric(u, plan, n_subsets=m, k=None, fdr=0.1, seed=0).values()
            )
            row["selected_groups"] = int(levels[0].extra["selected"].sum())
            row["level2_players"] = (
                len(levels[1].values) + len(levels[1].params["context_groups"])
                if len(levels) > 1
                else 0
            )
        else:
            targets = hardest_test_rows(u, TARGETS - 1)
            levels = list(ame(u, n_subsets=m, fdr=0.1, target=targets, seed=0).values())[:1]
            levels.append(ame(u, n_subsets=m, fdr=0.1, seed=0))
    row["actual_s"] = time.perf_counter() - start
    row["actual_cpu_s"] = time.process_time() - cpu
    row["fits_s"] = [round(r.timings["evaluate"], 2) for r in levels]
    row["regress_s"] = [round(r.timings["regress"], 2) for r in levels]
    row["actual_over_estimate"] = row["actual_s"] / row["estimate_s"]
    row["actual_over_old_estimate"] = row["actual_s"] / row["old_estimate_s"]
    return row


def _scaling(kind: str) -> None:
    import dataworth as dw
    from tables import make_frame

    task = dw.load_dataset(frame=make_frame(kind, 8000), target="label", seed=0)
    for players in (100, 200, 400, 800, 1600, 3000):
        sub = task.subsample_train(players, seed=0)
        with dw.Utility(sub, learner="logreg", metric="neg_log_loss", seed=0) as u:
            dw.ame(u, n_subsets=4000, fdr=0.1, seed=0, mode="flat")  # the fits, stored
            for m in (100, 1000, 4000):
                start, cpu = time.perf_counter(), time.process_time()
                r = dw.ame(u, n_subsets=m, fdr=0.1, seed=0, mode="flat")
                print(
                    json.dumps(
                        {
                            "kind": kind,
                            "players": players,
                            "m": m,
                            "seconds": round(time.perf_counter() - start, 3),
                            "cpu_s": round(time.process_time() - cpu, 3),
                            "walked": r.params.get("cv_alphas_walked"),
                        }
                    ),
                    flush=True,
                )


def _dw_ame(mode: str) -> None:
    import numpy as np
    from sklearn.datasets import make_classification

    import dataworth as dw

    X, y = make_classification(n_samples=12500, n_features=20, n_informative=10, random_state=0)
    task = dw.Task.from_arrays(X[:10000], y[:10000], X[10000:], y[10000:])
    with dw.Utility(task, learner="logreg", metric="neg_log_loss") as u:
        start, cpu = time.perf_counter(), time.process_time()
        result = dw.ame(u, n_subsets=4000, mode=mode)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    row = {
        "mode": mode,
        "path": result.params["ame_path"],
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "fits_s": round(result.timings["evaluate"], 1),
        "regress_s": round(result.timings["regress"], 1),
        "nonzero": int(np.count_nonzero(result.values)),
    }
    print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(DEFAULT_CASES))
    parser.add_argument("--subsets", type=int, default=4000)
    parser.add_argument("--scaling", metavar="KIND")
    parser.add_argument("--dw-ame", choices=("auto", "flat"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling:
        _scaling(args.scaling)
        return
    if args.dw_ame:
        _dw_ame(args.dw_ame)
        return
    if args.one:
        print(json.dumps(_case(args.one, args.subsets)), flush=True)
        return
    for spec in args.cases:
        done = subprocess.run(
            [sys.executable, __file__, "--one", spec, "--subsets", str(args.subsets)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"{spec}: failed\n{done.stderr[-3000:]}", flush=True)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)
        print(
            f"{spec} ({row['n_train']} training rows, {row['classes']} classes, {row['path']}): "
            f"actual {row['actual_s']:.0f} s ({row['actual_cpu_s']:.0f} CPU s), estimate "
            f"{row['estimate_s']:.0f} s, actual / estimate {row['actual_over_estimate']:.2f} "
            f"(previous model {row['old_estimate_s']:.0f} s, "
            f"{row['actual_over_old_estimate']:.2f}); AME timing in the cost study "
            f"{row['ame_timing_s']:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
