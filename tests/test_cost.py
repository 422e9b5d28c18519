"""Cost study: positive times, sensible refit counts, plans that respect the budget."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from dataworth import DataworthError, Task
from dataworth.report.figures import cost_figures
from dataworth.study.cost.timing import (
    MIN_ROWS_PER_CLASS,
    default_ame_subsets,
    plan_table,
    run_cost_study,
    stratified_subsample,
    time_fit,
)
from dataworth.study.runfolder import to_jsonable


@pytest.fixture(scope="module")
def task() -> Task:
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=0.7, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    return Task.from_arrays(scaler.transform(X_train), y_train, scaler.transform(X_test), y_test)


@pytest.fixture(scope="module")
def cost(task):
    # The engine is timed in its own test; these use scikit-learn fit times only.
    return run_cost_study(task, models=["logreg", "knn"], repeats=2, utility_subsets=0, seed=0)


def test_fit_times_are_positive_and_small_sizes_are_skipped_with_a_reason(task, cost):
    times = cost.fit_times
    assert set(times["model"]) == {"logreg", "knn"}
    full = times[times["fraction"] == 1.0]
    assert (full["rows"] == task.n_train).all()
    assert (full["seconds"] > 0).all()
    tenth = times[times["fraction"] == 0.1]
    assert (tenth["seconds"] > 0).all()
    assert (abs(tenth["rows"] - round(0.1 * task.n_train)) <= 2).all()
    # 1% of 398 rows is 4 rows: fewer than 3 per class for two classes.
    one = times[times["fraction"] == 0.01]
    assert one["seconds"].isna().all()
    assert all("skipped" in note for note in one["note"])
    assert any("1%" in note for note in cost.notes)


def test_engine_time_per_subset_is_measured(task):
    cost = run_cost_study(task, models=["logreg"], fractions=(1.0,), repeats=1, utility_subsets=5)
    assert cost.utility is not None, cost.utility_note
    assert cost.utility["seconds_per_subset"] > 0
    assert cost.utility["subsets"] == 5
    assert cost.utility["rows"] == round(0.9 * task.n_train)
    # Plans then use the engine's time per subset, which is what valuation methods pay.
    assert cost.seconds_per_fit() == pytest.approx(cost.utility["seconds_per_subset"])
    # Each method's own path is timed too, and the plan estimates from it.
    assert {"loo_one_out", "tmc_chain", "data_oob", "knn_shapley", "ame_estimation"} <= set(
        cost.paths
    )
    plan = plan_table(cost).set_index("method")
    one_out = cost.paths["loo_one_out"]
    assert plan.loc["LOO (all points)", "estimated_seconds"] == pytest.approx(
        one_out["full_fit_seconds"] + task.n_train * one_out["per_subset"]
    )
    assert "one-out path" in plan.loc["LOO (all points)", "note"]
    assert "chain of nested prefixes" in plan.loc["TMC-Shapley (10 perms)", "note"]
    assert 0 < cost.paths["tmc_chain"]["fitted_share"] <= 1
    assert {"KNN-Shapley", "Data-OOB (200 models)"} <= set(plan.index)
    assert plan.loc["KNN-Shapley", "fits"] == 0


def test_plan_counts_refits(task, cost):
    n = task.n_train
    assert cost.utility is None and "skipped" in cost.utility_note
    plan = plan_table(cost, budget_seconds=1e9).set_index("method")
    assert plan.loc["LOO (10 points)", "fits"] == 11
    assert plan.loc["LOO (all points)", "fits"] == n + 1
    assert plan.loc["leave-group-out (10 groups)", "fits"] == 11
    assert plan.loc["TMC-Shapley (10 perms)", "fits"] == 10 * n + 1
    ame = plan.index[plan.index.str.startswith("AME")][0]
    assert plan.loc[ame, "fits"] == default_ame_subsets(n)
    assert (plan["estimated_seconds"] > 0).all()
    np.testing.assert_allclose(
        plan["estimated_seconds"], plan["fits"] * plan["seconds_per_fit"], rtol=1e-12
    )
    assert plan["feasible"].all() and plan["suggested_rows"].isna().all()
    assert "upper bound" in plan.loc["TMC-Shapley (10 perms)", "note"]


def test_plan_suggests_fewer_rows_when_over_budget(task, cost):
    per_fit = cost.seconds_per_fit()
    # A budget for about 50 full-size fits: LOO of 10 points fits, LOO of all points does not.
    plan = plan_table(cost, budget_seconds=50 * per_fit).set_index("method")
    assert plan.loc["LOO (10 points)", "feasible"]
    assert not plan.loc["LOO (all points)", "feasible"]
    suggested = plan.loc["LOO (all points)", "suggested_rows"]
    assert suggested is not None and 0 < suggested < task.n_train
    fits_at_suggested = suggested + 1
    assert fits_at_suggested * cost.seconds_per_fit(suggested) <= 50 * per_fit


def test_stratified_subsample_keeps_every_class():
    y = np.array([0] * 95 + [1] * 5)
    rng = np.random.default_rng(0)
    picks = stratified_subsample(y, 10, rng)
    assert len(np.unique(picks)) == len(picks)
    assert (y[picks] == 1).sum() >= MIN_ROWS_PER_CLASS
    assert (y[picks] == 0).sum() >= 7


def test_time_fit_returns_a_fitted_model(task):
    fitted, seconds, n_timed = time_fit(
        LogisticRegression(max_iter=1000), task.X_train, task.y_train, repeats=3
    )
    assert hasattr(fitted, "coef_") and seconds > 0 and 1 <= n_timed <= 3


def test_unknown_metric_fails_before_timing(task):
    with pytest.raises(DataworthError, match="Unknown metric"):
        run_cost_study(task, models=["logreg"], metric="logloss")


def test_cost_result_is_json_able_and_plotted(cost, tmp_path):
    json.dumps(to_jsonable(cost.to_dict()))
    saved = cost_figures(cost, tmp_path)
    assert [p.suffix for p in saved["fit_time"]] == [".png", ".svg"]
    assert all(p.stat().st_size > 1000 for p in saved["fit_time"])


def test_full_size_times_from_the_baseline_are_not_measured_again(task):
    cost = run_cost_study(
        task,
        models=["logreg", "knn"],
        fractions=(1.0, 0.1),
        repeats=1,
        utility_subsets=0,
        full_fit_seconds={"logreg": (123.0, 3)},
    )
    times = cost.fit_times.set_index(["model", "fraction"])
    assert times.loc[("logreg", 1.0), "seconds"] == 123.0
    assert times.loc[("logreg", 1.0), "n_timed"] == 3
    # Other sizes and other models are timed as before.
    assert 0 < times.loc[("knn", 1.0), "seconds"] < 123.0
    assert 0 < times.loc[("logreg", 0.1), "seconds"] < 123.0


@pytest.mark.parametrize("fixture", ["cancer_small", "wine_small"])
def test_the_kernel_warm_up_compiles_what_the_real_calls_use(fixture, request):
    pytest.importorskip("numba")
    from dataworth.engine.utility import Utility
    from dataworth.learners.logreg.chains import chain_kernel, proba_kernel
    from dataworth.methods.knn.shapley import knn_shapley
    from dataworth.methods.shapley import tmc_shapley
    from dataworth.study.cost.warm_up import KernelWarmUp

    task = request.getfixturevalue(fixture)
    warm = KernelWarmUp(task, "logreg", knn_k=10)
    warm.wait()
    assert warm.error is None
    kernel = chain_kernel()
    compiled = len(kernel.signatures)
    assert compiled >= 1
    if task.n_classes > 2:  # and the compiled probabilities of its models
        assert len(proba_kernel().signatures) >= 1
    # The study's own calls find the signatures the warm-up compiled: none is added.
    with Utility(task, learner="logreg", metric="neg_log_loss") as utility:
        tmc_shapley(utility, permutations=1)
    knn_shapley(task, 10, test_rows=[0])
    assert len(kernel.signatures) == compiled


@pytest.mark.parametrize("fixture", ["cancer_400", "wine_small"])
def test_the_truncation_search_bounds_the_prefixes_tmc_fits(fixture, request):
    from dataworth.engine.utility import Utility
    from dataworth.methods.shapley.tmc import _permutation
    from dataworth.study.cost.paths import TRUNCATION_PERMUTATIONS, _truncation

    task = request.getfixturevalue(fixture)
    n, tol = task.n_train, 0.01
    with Utility(task, learner="logreg", metric="neg_log_loss") as utility:
        ends = utility.evaluate(np.array([np.zeros(n, bool), np.ones(n, bool)])).scores
        found = _truncation(utility, float(ends[0]), float(ends[1]), seed=0, tol=tol)
        # The reference: every prefix of the same permutations, and the paper's rule.
        truncated_at = []
        for t in range(TRUNCATION_PERMUTATIONS):
            order = _permutation(0, t, n)
            masks = np.tri(n, dtype=bool)[:, np.argsort(order)]  # row j holds order[: j + 1]
            scores = utility.evaluate(masks).scores
            close = np.flatnonzero(np.abs(ends[1] - scores) < tol * abs(ends[1]))
            truncated_at.append(int(close[0]) + 1 if len(close) else n)
    assert max(truncated_at) <= found["truncation_rows"] <= min(n, 1.5 * max(truncated_at) + 16)
    assert found["fitted_rows"] == min(n, max(found["truncation_rows"], 1))


def test_group_paths_are_timed_on_the_study_groups_and_scale_with_the_kept_rows(task):
    from dataworth.engine.utility import Utility
    from dataworth.methods.groups import random_groups
    from dataworth.methods.shapley import tmc_shapley
    from dataworth.study.cost.groups import estimate_leave_group_out, time_group_paths

    n = task.n_train
    groups = random_groups(n, (0.1, 0.3, 0.5, 1.0), seed=0)
    with Utility(task, learner="logreg", metric="neg_log_loss") as utility:
        utility.evaluate(np.ones((1, n), dtype=bool))
        paths = time_group_paths(utility, groups, seed=0, tol=0.01)
        # The timing ran TMC's own first permutation of the groups (the real run's first), so
        # its fits are all stored now.
        again = tmc_shapley(utility, permutations=1, tol=0.01, seed=0, groups=groups)
    kept = [n - len(g) for g in groups.values()]
    lgo = paths["leave_group_out"]
    assert lgo["total_kept_rows"] == sum(kept)
    # The smallest group's removal (most rows kept) and the median group's were timed.
    assert lgo["kept_rows"] == kept[0] + sorted(kept, reverse=True)[len(kept) // 2]
    assert estimate_leave_group_out(lgo) == pytest.approx(lgo["per_kept_row"] * sum(kept))
    assert paths["tmc_groups"]["permutations"] == 1 and paths["tmc_groups"]["seconds"] > 0
    assert again.n_fitted == 0


def test_tmc_estimate_counts_the_permutations_run_side_by_side(task):
    from dataworth.study.cost.plan import estimate_tmc
    from dataworth.study.cost.result import CostResult

    chain = {"per_prefix": 0.01, "fitted_rows": 100, "fitted_share": 1.0}

    def cost_with(threads: int) -> CostResult:
        paths = {"tmc_chain": {**chain, "threads": threads}}
        return CostResult(
            pd.DataFrame(), n_train=task.n_train, n_classes=2, valuation_model="logreg", paths=paths
        )

    one = estimate_tmc(cost_with(1), 10)
    two = estimate_tmc(cost_with(2), 10)
    per_permutation = 100 * 0.01
    assert one == pytest.approx(10 * per_permutation)
    # The first permutation alone (it paces the clock), the other nine two at a time.
    assert two == pytest.approx(per_permutation * (1 + 9 / 2))
    assert estimate_tmc(cost_with(2), 1) == pytest.approx(per_permutation)


def test_data_oob_estimate_is_a_fixed_part_plus_a_part_per_model(task):
    from dataworth.study.cost.paths import OOB_MODELS, _time_data_oob

    timed = _time_data_oob(task, seed=0)
    assert timed["models"] == OOB_MODELS and timed["per_model"] > 0
    assert timed["fixed"] >= 0
    assert timed["fixed"] + OOB_MODELS * timed["per_model"] == pytest.approx(
        max(timed["seconds"], OOB_MODELS * timed["per_model"])
    )
