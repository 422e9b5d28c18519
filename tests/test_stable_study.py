"""Exact group values beside the estimates, and the study's TMC run until its ranks are stable."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dataworth.engine.game import Game
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.methods.result import ValuationResult
from dataworth.methods.shapley import exact_shapley, tmc_shapley
from dataworth.methods.shapley.affordable import distance_to_exact, exact_beside, exact_player_limit
from dataworth.study import run_study, steps_named
from dataworth.study.config import StudyConfig


def test_player_limit_follows_the_cost():
    assert exact_player_limit(0.001, 1.024) == 10  # 2^10 evaluations of 1 ms fit in 1.024 s
    assert exact_player_limit(0.001, 1.0) == 9
    assert exact_player_limit(1.0, 0.5) == 0
    assert exact_player_limit(0.0, 1.0) == 20  # free evaluations: the enumeration's own cap


def test_exact_beside_a_group_estimate(cancer_small):
    u = Utility(cancer_small, learner="knn", metric="accuracy")
    groups = {f"g{k}": np.arange(k, cancer_small.n_train, 8) for k in range(8)}
    estimate = tmc_shapley(u, permutations=10, groups=groups, seed=0)
    assert exact_beside(u, estimate, groups=groups, seconds=1e-9) is None
    exact = exact_beside(u, estimate, groups=groups)
    reference = exact_shapley(u, groups=groups)
    np.testing.assert_array_equal(exact.values, reference.values)
    np.testing.assert_array_equal(estimate.extra["exact_value"], reference.values)
    d = estimate.params["exact_distance"]
    error = np.abs(estimate.values - reference.values)
    assert d["max_abs_error"] == pytest.approx(error.max())
    assert d["outside_2se"] == int(np.sum(error > 2 * estimate.stderr))
    missed = (reference.values < estimate.ci_low) | (reference.values > estimate.ci_high)
    assert d["with_ci"] == 8 and d["outside_ci"] == int(missed.sum())


def test_distance_counts_intervals_that_miss():
    game = Game(lambda m: 1.0 - np.exp(-(m @ np.linspace(0.1, 1.5, 10))), n_players=10)
    estimate = tmc_shapley(game, permutations=40, tol=0, seed=2)
    exact = exact_shapley(game)
    d = distance_to_exact(estimate, exact)
    missed = (exact.values < estimate.ci_low) | (exact.values > estimate.ci_high)
    assert d["with_ci"] == 10 and d["outside_ci"] == int(missed.sum())


@pytest.fixture(scope="module")
def stable_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stable") / "run"
    config = StudyConfig(
        rows=150, train_size=100, baselines=["logreg"], stable_permutations=60, out=str(out)
    )
    steps = steps_named("data", "loo", "groups", "tmc", "stable_tmc", "report")
    run_study(config, steps=steps)
    return out, config


def test_study_runs_exact_groups_and_a_stable_run(stable_run):
    out, _ = stable_run
    summary = json.loads((out / "shapley_stability.json").read_text())
    groups = ValuationResult.load(out / "shapley_groups")
    exact = ValuationResult.load(out / "shapley_groups_exact")
    assert exact.exact and summary["groups"]["players"] == 10
    np.testing.assert_array_equal(groups.extra["exact_value"], exact.values)
    total = exact.manifest["full_value"] - exact.manifest["empty_value"]
    assert exact.values.sum() == pytest.approx(total)
    stable = ValuationResult.load(out / "shapley_points_stable")
    used = stable.params["permutations"]
    assert 30 <= used <= 60 and summary["points"]["permutations"] == used
    short = ValuationResult.load(out / "shapley_points")
    assert short.params["stopped_by"] == "10 permutations"
    assert np.isfinite(short.ci_low).all() and np.isfinite(stable.ci_low).all()
    # More permutations, narrower intervals (both floored by the pooled standard error).
    assert np.median(stable.ci_high - stable.ci_low) < np.median(short.ci_high - short.ci_low)
    table = pd.read_csv(out / "shapley_rank_stability.csv")
    assert list(table["end"].unique()) == ["top", "bottom"] and len(table) == 20


def test_stable_run_equals_a_fresh_run_of_the_same_length(stable_run):
    out, config = stable_run
    from dataworth.data import load_dataset

    stable = ValuationResult.load(out / "shapley_points_stable")
    task = load_dataset("breast_cancer", rows=150, train_size=100, seed=0)
    u = Utility(task, learner="logreg", metric=stable.manifest["metric"])
    assert [str(i) for i in task.train_ids] == [str(i) for i in stable.player_ids]
    # The stable run extends the course's permutations (resumed from the store's journal):
    # it equals a fresh run of the same length.
    fresh = tmc_shapley(
        u, permutations=stable.params["permutations"], tol=config.tmc_tol, seed=config.seed
    )
    # Equal to the solver's tolerance: warm starts differ with what the store already held.
    np.testing.assert_allclose(fresh.values, stable.values, rtol=0, atol=1e-9)


def test_report_shows_both_runs_and_explains_the_loo_agreement(stable_run):
    out, _ = stable_run
    md = (out / "report.md").read_text()
    summary = json.loads((out / "shapley_stability.json").read_text())["points"]
    assert "### How far the course's run is from the answer" in md
    assert summary["stability"]["verdict"] in md
    assert "figures/shapley_intervals.png" in md
    assert "Spearman with LOO is" in md
    assert "estimate - exact" in md


def test_bad_stable_options_are_one_clear_error():
    with pytest.raises(DataworthError, match="stable_share"):
        StudyConfig(stable_share=2.0)
