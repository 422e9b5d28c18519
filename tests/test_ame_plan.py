"""AME's memory plan: the estimate against the real peak, refusals before any fit, the switch
to the hierarchical estimator in the study and the CLI."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from typer.testing import CliRunner

from dataworth.cli import app
from dataworth.engine.game import Game
from dataworth.errors import DataworthError
from dataworth.methods.ame import ame
from dataworth.methods.ame import plan as ame_plan
from dataworth.methods.ame.plan import (
    ame_memory_bytes,
    check_fits,
    max_subsets,
    plan_ame,
    random_partition,
)
from dataworth.methods.ame.scale import hierarchical_metric
from dataworth.methods.result import ValuationResult

SMALL = ["--rows", "150", "--train-size", "100"]


def test_estimate_bounds_the_measured_peak_of_the_regression():
    """The peak that numpy allocates during AME (fits are a linear game: no memory) lies
    between the design's own size and the estimate."""
    n, m = 300, 800
    w = np.zeros(n)
    w[:5] = 1.0
    game = Game(lambda masks: masks @ w, n)
    tracemalloc.start()
    try:
        ame(game, n_subsets=m, fdr=0.1, cv=5, n_alphas=20, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    estimate = ame_memory_bytes(n, m, knockoffs=True)
    assert 8 * m * 2 * n < peak <= estimate, (peak, estimate)
    # Knockoffs double the design; the estimate grows with the subsets.
    assert ame_memory_bytes(n, m, knockoffs=True) > 1.9 * ame_memory_bytes(n, m) - 12 * n * n
    assert ame_memory_bytes(n, 2 * m) > ame_memory_bytes(n, m)


def test_refusal_names_the_size_that_fits():
    limit = 200 * 2**20
    most = max_subsets(5000, True, limit)
    assert ame_memory_bytes(5000, most, True) <= limit < ame_memory_bytes(5000, most + 1, True)
    assert check_fits(5000, most, knockoffs=True, memory_limit=limit) <= limit
    with pytest.raises(DataworthError, match=f"at most {most} subsets would fit"):
        check_fits(5000, most + 1, knockoffs=True, memory_limit=limit)


def test_a_design_too_large_is_refused_before_any_fit():
    calls = []
    game = Game(lambda masks: calls.append(len(masks)) or masks.sum(axis=1) * 1.0, 50_000)
    with pytest.raises(DataworthError, match="GiB"):
        ame(game, n_subsets=10**9, fdr=0.1)
    assert calls == []


def test_plan_is_flat_when_small_and_hierarchical_when_wide():
    # A fixed memory limit: what the machine has free at the moment must not change the plan.
    plenty = 64 * 2**30
    flat = plan_ame(2000, 4000, memory_limit=plenty)
    assert flat.mode == "flat" and flat.n_groups is None and "flat AME" in flat.reason
    wide = plan_ame(50_000, 4000, knockoffs=True, memory_limit=plenty)
    assert wide.mode == "hierarchical" and wide.n_groups == 224
    assert "224 groups" in wide.reason and "100000 columns" in wide.reason
    tight = plan_ame(3000, 4000, memory_limit=10 * 2**20)
    assert tight.mode == "hierarchical" and "GiB" in tight.reason
    with pytest.raises(DataworthError, match="subsets"):
        plan_ame(3000, 4000, memory_limit=2**20)  # not even the groups fit
    assert flat.describe()["mode"] == "flat"


def test_random_partition_is_a_seeded_partition():
    parts = random_partition(103, 10, seed=3)
    joined = np.concatenate(list(parts.values()))
    np.testing.assert_array_equal(np.sort(joined), np.arange(103))
    assert {len(p) for p in parts.values()} == {10, 11}
    again = random_partition(103, 10, seed=3)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    assert not np.array_equal(parts["part_0"], random_partition(103, 10, seed=4)["part_0"])


@pytest.fixture
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_cli_runs_hierarchical_ame_when_the_plan_says_so(tmp_path, monkeypatch, _in_tmp):
    # A small task stands in for a large one: the flat limit is lowered below its 100 rows.
    monkeypatch.setattr(ame_plan, "FLAT_COLUMN_LIMIT", 50)
    result = CliRunner().invoke(app, ["ame", *SMALL, "--subsets", "300", "--out", "h"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Estimator: hierarchical AME" in text and "10 groups of about 10 points" in text
    groups = ValuationResult.load(tmp_path / "h" / "ame_groups")
    assert len(groups.values) == 10 and groups.params["ame_plan"]["mode"] == "hierarchical"
    assert groups.method == "ame_hierarchical_groups"
    assert "Estimator: hierarchical AME" in (tmp_path / "h" / "summary.md").read_text()


def test_hierarchical_metric_keeps_level_two_within_the_budget(monkeypatch):
    """Level 2 never grows past the flat width: the strongest selected groups are kept."""
    n = 400
    w = np.zeros(n)
    w[np.arange(0, n, 7)] = 1.0  # a dense game: every group matters
    game = Game(lambda masks: masks @ w, n)
    monkeypatch.setattr(ame_plan, "FLAT_COLUMN_LIMIT", 100)
    plan = plan_ame(n, 300)
    assert plan.mode == "hierarchical" and plan.n_groups == 20
    out = hierarchical_metric(game, plan, n_subsets=300, k=None, fdr=None, seed=0)
    groups, points = out["ame_groups"], out["ame_metric"]
    assert groups.extra["selected"].sum() > 4  # more groups selected than the budget holds
    budget = 100 - 20
    assert 0 < len(points.values) <= budget
    dropped = points.params["groups_dropped_for_size"]
    assert dropped and not set(dropped) & set(points.params["selected_groups"])
    # What is kept are the groups of largest value.
    kept = groups.values[np.isin(groups.player_ids, points.params["selected_groups"])]
    lost = groups.values[np.isin(groups.player_ids, dropped)]
    assert kept.min() >= lost.max()
    # The kept points' values follow the linear game's weights (1 or 0), LASSO-shrunk.
    truth = w[points.extra["position"]]
    assert points.values[truth == 1].mean() > 0.7 > 0.1 > np.abs(points.values[truth == 0]).mean()


def test_cli_refuses_a_design_too_large_with_exit_code_2(_in_tmp):
    result = CliRunner().invoke(app, ["ame", *SMALL, "--subsets", "1000000000"])
    # Progress lines may come first on a slow machine; the refusal itself is one ``error:`` line.
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(errors) == 1 and "GiB" in errors[0] and "subsets would fit" in errors[0], errors
    assert result.output.rstrip().splitlines()[-1] == errors[0]
