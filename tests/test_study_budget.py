"""A study that keeps its budget: what each method was given, did and valued, on real fits.

The cost study is replaced by fixed fit times (the input the budget decides from), so the
decisions are the same on any machine; every fit is a real fit of the real learner.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dataworth.engine.utility import Utility
from dataworth.methods.shapley import tmc_shapley
from dataworth.study import Step, run_study, steps_named
from dataworth.study.config import StudyConfig
from dataworth.study.cost.timing import CostResult


def _cost_step(seconds_per_fit: float) -> Step:
    """The cost step, with fit times given instead of measured: 0.1 s per fit on all rows."""

    def run(ctx) -> None:
        n = ctx.task.n_train
        times = pd.DataFrame(
            {
                "model": ["logreg", "logreg"],
                "fraction": [0.5, 1.0],
                "rows": [n // 2, n],
                "seconds": [seconds_per_fit / 2, seconds_per_fit],
                "n_timed": [1, 1],
                "note": ["", ""],
            }
        )
        ctx.results["cost"] = CostResult(
            fit_times=times, n_train=n, n_classes=ctx.task.n_classes, valuation_model="logreg"
        )

    return Step("cost", run)


def _study(tmp_path, budget: float, seconds_per_fit: float):
    config = StudyConfig(
        rows=200, train_size=100, budget_seconds=budget, ame_rows=0, oob_estimators=20
    )
    names = ("data", "budget", "loo", "groups", "tmc", "ame", "methods", "summary")
    steps = steps_named(*names)
    steps.insert(1, _cost_step(seconds_per_fit))
    return run_study(config, steps=steps, root=tmp_path / "runs")


def test_sampled_methods_stop_at_their_share_and_the_rest_value_every_row(tmp_path):
    outcome = _study(tmp_path, budget=60.0, seconds_per_fit=0.1)
    ctx = outcome.context
    budget = ctx.results["budget"]
    n = ctx.task.n_train
    plans = budget.methods
    # One TMC permutation of 100 rows is planned at 10 s and AME's subsets at 0.05 s each:
    # neither fits as configured in what is left of 60 s, so both are cut to their share.
    assert plans["tmc"].units < plans["tmc"].wanted and plans["ame"].units < plans["ame"].wanted
    ame = ctx.results["ame"]["ame_metric"]
    assert 100 <= ame.params["n_subsets"] <= plans["ame"].units
    # TMC stops by the clock, not by the plan: real permutations are far cheaper than 10 s.
    tmc = ctx.results["tmc"]
    assert 1 <= tmc.params["permutations"] <= 10
    assert "share of the study's budget" in tmc.params["stopping"]
    # Its values are those of that many permutations in one run, to the solver's tolerance: LOO
    # of every point ran first, and its one-out fits, the last prefixes of the permutations,
    # stand in the store (each side converged to the stated tolerance, not to the same bits).
    direct = tmc_shapley(
        Utility(ctx.task, metric=ctx.primary_metric),
        permutations=tmc.params["permutations"],
        tol=ctx.config.tmc_tol,
        seed=ctx.config.seed,
    )
    np.testing.assert_allclose(tmc.values, direct.values, rtol=0, atol=1e-10)
    # The methods that grow gently with the rows value every row.
    for name in ("knn_shapley", "data_oob", "influence"):
        assert len(ctx.results["methods"][name]) == n
    assert len(ctx.results["loo_all"]) == n
    # The run folder says what each method was given, took and valued.
    stored = json.loads((outcome.path / "budget.json").read_text())
    by_name = {m["name"]: m for m in stored["methods"]}
    for name in ("loo", "groups", "tmc", "tmc_groups", "loo_all", "ame", "data_oob"):
        assert by_name[name]["actual"] is not None and by_name[name]["valued"], name
    assert "of 10 permutations" in by_name["tmc"]["valued"]
    assert f"{ame.params['n_subsets']} random subsets" in by_name["ame"]["valued"]
    summary = (outcome.path / "summary.md").read_text()
    assert "## Budget: estimate against actual" in summary


def test_methods_that_do_not_fit_are_skipped_and_say_so(tmp_path):
    # 1 s per fit: LOO of every row (101 fits) and TMC (100 s a permutation) cannot fit 40 s.
    outcome = _study(tmp_path, budget=40.0, seconds_per_fit=1.0)
    ctx = outcome.context
    assert "tmc" not in ctx.results and "loo_all" not in ctx.results
    stored = json.loads((outcome.path / "budget.json").read_text())
    by_name = {m["name"]: m for m in stored["methods"]}
    assert by_name["tmc"]["valued"].startswith("skipped")
    assert by_name["loo_all"]["valued"].startswith("skipped")
    assert not (outcome.path / "shapley_points.parquet").exists()
    # LOO of the chosen points always runs.
    assert len(ctx.results["loo"]) == 10


@pytest.mark.parametrize("budget", [5.0])
def test_a_budget_too_small_for_the_baseline_stops_before_valuing(tmp_path, budget):
    from dataworth.errors import DataworthError

    with pytest.raises(DataworthError, match="raise --budget to at least"):
        _study(tmp_path, budget=budget, seconds_per_fit=1.0)


def test_the_study_on_dask_gives_the_serial_values(tmp_path):
    pytest.importorskip("distributed")
    names = ("data", "loo", "groups")
    values = {}
    for backend in ("serial", "dask"):
        config = StudyConfig(rows=200, train_size=100, backend=backend, n_jobs=2)
        ctx = run_study(config, steps=steps_named(*names), root=tmp_path / backend).context
        values[backend] = (ctx.results["loo"].values, ctx.results["lgo"].values)
    for serial, on_dask in zip(values["serial"], values["dask"], strict=True):
        np.testing.assert_array_equal(serial, on_dask)
