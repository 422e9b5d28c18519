"""``ame(mode=...)``: the plan's path by default (flat or hierarchical), either on request, the
path and its reason in ``params``, and the flat shape kept on the hierarchical path."""

from __future__ import annotations

import numpy as np
import pytest

from dataworth.engine.game import Game
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.methods.ame import ame
from dataworth.methods.ame import plan as ame_plan
from dataworth.methods.ame.flat import flat_ame
from dataworth.methods.ame.plan import plan_ame, random_partition
from dataworth.methods.ame.scale import choose_ame_path, hierarchical_metric
from dataworth.methods.sampler import subsets_for


def _linear_game(n: int) -> tuple[Game, np.ndarray]:
    w = np.zeros(n)
    w[[3, 14, 27, 90]] = 1.0
    return Game(lambda masks: masks @ w, n), w


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.extra["value_1se"], b.extra["value_1se"])
    np.testing.assert_array_equal(a.extra["selected"], b.extra["selected"])


def test_small_real_task_stays_flat_and_bitwise_the_same(cancer_small):
    """Below the flat limit the default is the flat estimator, the values are its own bits,
    and ``params`` says which path ran and why (the plan's reason)."""
    with Utility(cancer_small, learner="logreg", metric="neg_log_loss") as u:
        auto = ame(u, n_subsets=200, fdr=0.2, cv=5, n_alphas=30, seed=1)
        flat = flat_ame(u, n_subsets=200, fdr=0.2, cv=5, n_alphas=30, seed=1)
    _same(auto, flat)
    np.testing.assert_array_equal(auto.extra["w"], flat.extra["w"])
    plan = plan_ame(u.n_players, 200, knockoffs=True)
    assert plan.mode == "flat"
    assert auto.params["mode"] == "auto" and auto.params["ame_path"] == "flat"
    # The plan's reason (the memory it names is what was free at the time).
    assert auto.params["ame_path_reason"].startswith("flat AME: the regression on 120 columns")
    assert auto.params["ame_plan"]["mode"] == "flat"


def test_auto_takes_the_hierarchy_above_the_limit_on_real_fits(cancer_small, monkeypatch):
    """A small task stands in for a large one (the flat limit lowered below its 60 rows): the
    default follows the plan into the hierarchy, with one value per point, those of level 2
    for the points of the valued groups and 0 elsewhere."""
    monkeypatch.setattr(ame_plan, "FLAT_COLUMN_LIMIT", 40)
    options = {"n_subsets": 300, "k": None, "fdr": None, "seed": 0}
    with Utility(cancer_small, learner="logreg", metric="neg_log_loss") as u:
        plan = plan_ame(u.n_players, 300)
        assert plan.mode == "hierarchical" and plan.n_groups == 8
        out = ame(u, n_subsets=300, seed=0)
        levels = hierarchical_metric(u, plan, **options)
    assert out.method == "ame" and len(out.values) == u.n_players
    np.testing.assert_array_equal(out.player_ids, cancer_small.train_ids)
    assert out.params["ame_path"] == "hierarchical" and out.params["mode"] == "auto"
    assert out.params["ame_path_reason"] == plan.reason
    assert out.params["n_groups"] == 8 and out.params["ame_plan"]["n_groups"] == 8
    assert out.ci_low is None and "not asked for" in out.ci_note
    groups = levels["ame_groups"]
    parts = random_partition(u.n_players, 8, 0)
    for name, value in zip(groups.player_ids, groups.values, strict=True):
        np.testing.assert_array_equal(out.extra["group"][parts[name]], name)
        np.testing.assert_array_equal(out.extra["group_value"][parts[name]], value)
    valued = out.extra["valued"]
    if "ame_metric" in levels:
        points = levels["ame_metric"]
        at = points.extra["position"]
        np.testing.assert_array_equal(np.flatnonzero(valued), at)
        np.testing.assert_array_equal(out.values[at], points.values)
        assert out.params["n_subsets"] == points.params["n_subsets"] == 300
        assert out.params["selected_groups"] == points.params["selected_groups"]
    assert not out.values[~valued].any() and not out.extra["selected"][~valued].any()
    assert out.params["n_valued_points"] == int(valued.sum())
    assert out.n_evaluations == sum(level.n_evaluations for level in levels.values())
    assert out.timings["evaluate"] > 0


@pytest.mark.parametrize("limit", [40, 1000])
def test_auto_is_the_plans_choice(monkeypatch, limit):
    monkeypatch.setattr(ame_plan, "FLAT_COLUMN_LIMIT", limit)
    memory = 8 * 2**30  # fixed: what the machine has free must not change the choice
    for n, fdr in ((60, None), (60, 0.1), (500, None), (2000, 0.1)):
        path, plan, reason = choose_ame_path(n, n_subsets=400, k=None, fdr=fdr, memory_limit=memory)
        expected = plan_ame(n, 400, knockoffs=fdr is not None, memory_limit=memory)
        assert path == expected.mode == plan.mode and reason == expected.reason
    # Sized by k: the plan sees the subsets the sizing rule gives.
    path, plan, _ = choose_ame_path(500, n_subsets=None, k=5, fdr=None, memory_limit=memory)
    assert plan.n_subsets == subsets_for(5, 500)
    assert path == plan_ame(500, plan.n_subsets, memory_limit=memory).mode


def test_either_path_on_request(monkeypatch):
    game, w = _linear_game(120)
    flat = flat_ame(game, n_subsets=400, seed=0)
    forced = ame(game, n_subsets=400, seed=0, mode="hierarchical")
    assert (
        forced.params["ame_path"] == "hierarchical"
        and "asked for" in forced.params["ame_path_reason"]
    )
    assert len(forced.values) == 120 and forced.params["n_groups"] == 11
    # The linear game's weights come back at level 2 (LASSO-shrunk), 0 for the others.
    assert forced.values[w == 1].min() > 0.7 and np.abs(forced.values[w == 0]).max() < 0.2
    monkeypatch.setattr(ame_plan, "FLAT_COLUMN_LIMIT", 50)
    kept = ame(game, n_subsets=400, seed=0, mode="flat")
    _same(kept, flat)
    assert (
        kept.params["ame_path"] == "flat"
        and "asked for (mode='flat')" in kept.params["ame_path_reason"]
    )
    assert kept.params["ame_plan"]["mode"] == "hierarchical"  # what the plan would have done


def test_hierarchy_with_knockoffs_and_one_test_row(monkeypatch):
    """Knockoffs run at both levels (``w`` over every point); one target keeps one result."""
    monkeypatch.setattr(ame_plan, "FLAT_COLUMN_LIMIT", 50)
    game, _ = _linear_game(120)
    out = ame(game, n_subsets=600, fdr=0.2, seed=0)
    assert out.params["ame_path"] == "hierarchical" and out.params["fdr"] == 0.2
    assert out.extra["w"].shape == (120,) and not out.extra["w"][~out.extra["valued"]].any()
    assert set(np.flatnonzero(out.extra["selected"])) <= set(np.flatnonzero(out.extra["valued"]))


def test_one_test_row_takes_the_hierarchy(cancer_small, monkeypatch):
    monkeypatch.setattr(ame_plan, "FLAT_COLUMN_LIMIT", 40)
    with Utility(cancer_small, learner="logreg", metric="neg_log_loss") as u:
        out = ame(u, n_subsets=200, target=0, cv=5, n_alphas=30, seed=0)
    assert out.params["ame_path"] == "hierarchical" and out.params["target"] == "test:0"
    assert len(out.values) == u.n_players


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"target": [0, 1]}, "one target"),
        ({"target": "all-test"}, "one target"),
        ({"estimator": "moment"}, "estimator='moment'"),
        ({"estimator": "ols"}, "estimator='ols'"),
        ({"intervals": True}, "intervals=True"),
        ({"groups": [np.arange(10 * g, 10 * g + 10) for g in range(12)]}, "groups="),
    ],
)
def test_flat_where_the_hierarchy_does_not_apply(options, why):
    path, plan, reason = choose_ame_path(50_000, n_subsets=4000, k=None, **options)
    assert path == "flat" and plan is None and why in reason
    with pytest.raises(DataworthError, match="does not apply"):
        choose_ame_path(50_000, n_subsets=4000, k=None, mode="hierarchical", **options)


def test_flat_runs_say_why(cancer_small, monkeypatch):
    monkeypatch.setattr(ame_plan, "FLAT_COLUMN_LIMIT", 40)
    with Utility(cancer_small, learner="logreg", metric="neg_log_loss") as u:
        rows = ame(u, n_subsets=100, target=[0, 1], cv=3, n_alphas=10, seed=0)
        moment = ame(u, n_subsets=100, estimator="moment", seed=0)
        groups = ame(u, n_subsets=100, groups=[np.arange(30), np.arange(30, 60)], seed=0)
        with pytest.raises(DataworthError, match="does not apply"):
            ame(u, n_subsets=100, target=[0, 1], mode="hierarchical")
    for result in [*rows.values(), moment, groups]:
        assert result.params["ame_path"] == "flat" and "ame_plan" not in result.params
    assert len(rows) == 2 and "one target" in rows[0].params["ame_path_reason"]
    assert len(moment.values) == 60 and len(groups.values) == 2


def test_unknown_mode_is_refused():
    game, _ = _linear_game(120)
    with pytest.raises(DataworthError, match="mode"):
        ame(game, n_subsets=50, mode="sideways")


@pytest.mark.parametrize("mode", ["flat", "hierarchical"])
def test_a_time_budget_stops_the_fits_with_the_values_of_a_smaller_run(mode):
    """Past its time budget AME stops fitting after the block in progress (256 subsets) and
    regresses on what it has: the values of a run asked for that many subsets, bit for bit."""
    game, _ = _linear_game(120)
    stopped = ame(game, n_subsets=1000, fdr=0.2, seed=0, mode=mode, time_budget=0.0)
    smaller = ame(game, n_subsets=256, fdr=0.2, seed=0, mode=mode)
    assert stopped.params["n_subsets"] == 256
    assert stopped.params["stopped_by"] == "time budget"
    assert stopped.params["n_subsets_asked"] == 1000
    _same(stopped, smaller)
    np.testing.assert_array_equal(stopped.extra["w"], smaller.extra["w"])
    # A budget that is not reached changes nothing.
    ample = ame(game, n_subsets=600, fdr=0.2, seed=0, mode=mode, time_budget=1e6)
    _same(ample, ame(game, n_subsets=600, fdr=0.2, seed=0, mode=mode))
    assert "stopped_by" not in ample.params
