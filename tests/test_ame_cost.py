"""AME's estimate in the study's budget: the path the plan will choose, the estimation's growth
measured at two sizes, AME's own fits, and each level of the hierarchy at its modelled size."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import dataworth.study.cost.plan as study_plan
from dataworth.methods.ame import plan as ame_plan
from dataworth.study.cost.paths import (
    AME_EXPONENT_RANGE,
    AME_SUBSET_EXPONENT,
    _time_ame,
    ame_estimation_model,
)
from dataworth.study.cost.plan import (
    AME_TARGET_SHARE,
    LEVEL2_FIT_FACTOR,
    ame_level_sizes,
    estimate_ame,
    plan_table,
)
from dataworth.study.cost.result import CostResult


def _timing(small: float, large: float, more: float, fit: float | None = None) -> dict:
    sizes = [
        {"players": 100, "subsets": 300, "seconds": small},
        {"players": 400, "subsets": 300, "seconds": large},
        {"players": 400, "subsets": 600, "seconds": more},
    ]
    out = {"players": 100, "subsets": 300, "seconds": small, "knockoffs": True, "sizes": sizes}
    if fit is not None:
        out |= {"fit_subsets": 64, "fit_seconds": fit, "fit_rows": 10_000}
    return out


def _cost(n: int, paths: dict) -> CostResult:
    """Fits that take 1 ms per 1,000 rows (linear)."""
    times = pd.DataFrame(
        {
            "model": ["logreg"] * 2,
            "fraction": [0.1, 1.0],
            "rows": [n // 10, n],
            "seconds": [1e-6 * n / 10, 1e-6 * n],
            "n_timed": [3, 3],
            "note": ["", ""],
        }
    )
    return CostResult(times, n_train=n, n_classes=2, valuation_model="logreg", paths=paths)


def test_the_exponent_is_measured_and_bounded():
    low, high = AME_EXPONENT_RANGE
    model = ame_estimation_model(_timing(0.1, 0.1 * 4**1.7, 0.1 * 4**1.7 + 1.5))
    assert model.exponent == pytest.approx(1.7) and model.measured
    assert model.anchor_players == 400 and model.anchor_subsets == 300
    assert model.per_subset_anchor == pytest.approx(0.005)  # 1.5 s over 300 more subsets
    # Within the bounds whatever the noise of the small timings.
    assert ame_estimation_model(_timing(0.1, 0.11, 0.2)).exponent == low
    assert ame_estimation_model(_timing(0.01, 5.0, 6.0)).exponent == high
    # A longer walk at fewer subsets: the growth per subset is at least the mean per subset of
    # the larger timing.
    noisy = ame_estimation_model(_timing(0.1, 2.0, 1.2))
    assert noisy.anchor_seconds == 2.0 and noisy.per_subset_anchor == pytest.approx(0.002)
    # The model: the anchor grown as the power of the players, plus the growth per subset.
    expected = 2.0 * 10**high + 0.002 * 10**AME_SUBSET_EXPONENT * (4000 - 300)
    assert noisy.seconds(4000, 4000) == pytest.approx(expected)
    assert "400 players" in noisy.describe()


def test_a_single_timing_scales_as_the_square():
    """A cost result of an earlier version (or a small table: one size timed)."""
    model = ame_estimation_model({"players": 100, "subsets": 100, "seconds": 0.5})
    assert model.exponent == 2.0 and not model.measured and model.per_subset_anchor == 0.0
    assert model.seconds(1000) == pytest.approx(50.0)


def test_the_plan_models_the_path_it_will_choose(monkeypatch):
    """Flat up to the flat limit's columns (twice the players with Knockoffs), then the two
    levels: about sqrt(n) groups, then level 2 at its modelled share of the point budget."""
    assert ame_level_sizes(3000) is None and ame_level_sizes(6000, knockoffs=False) is None
    groups, level2 = ame_level_sizes(3001)
    assert groups == ame_plan.hierarchy_size(3001) == 55
    budget = ame_plan.FLAT_COLUMN_LIMIT // 2 - groups
    assert level2 == math.ceil(study_plan.LEVEL2_SHARE * budget) + groups
    monkeypatch.setattr(study_plan, "LEVEL2_SHARE", 0.25)
    assert ame_level_sizes(50_000) == (224, math.ceil(0.25 * (3000 - 224)) + 224)


def test_flat_estimate_shares_the_design_among_targets():
    n = 2000
    timing = _timing(0.1, 0.8, 1.1, fit=0.004)
    cost = _cost(n, {"ame_estimation": timing})
    model = ame_estimation_model(timing)
    fixed, per_subset = estimate_ame(cost, n, targets=4)
    share = 1 + 3 * AME_TARGET_SHARE
    assert fixed == pytest.approx(share * model.seconds(n))
    # AME's own fits, timed on all 10,000 rows, scaled to half of these 2,000 as fits grow.
    per_fit = 0.004 * cost.seconds_per_fit(1000) / cost.seconds_per_fit(5000)
    assert per_subset == pytest.approx(per_fit + share * model.per_subset(n))
    # Without the fits' own timing: the engine's seconds per fit at half the rows.
    del timing["fit_seconds"]
    _, generic = estimate_ame(cost, n, targets=1)
    assert generic == pytest.approx(cost.seconds_per_fit(1000) + model.per_subset(n))


def test_hierarchical_estimate_has_two_levels_and_one_target():
    n = 50_000
    timing = _timing(0.1, 0.8, 1.1, fit=0.01)
    cost = _cost(n, {"ame_estimation": timing})
    model = ame_estimation_model(timing)
    groups, level2 = ame_level_sizes(n)
    fixed, per_subset = estimate_ame(cost, n, targets=4)
    assert fixed == pytest.approx(model.seconds(groups) + model.seconds(level2))
    per_fit = 0.01 * cost.seconds_per_fit(n // 2) / cost.seconds_per_fit(5000)
    expected = per_fit * (1 + LEVEL2_FIT_FACTOR) + model.per_subset(groups)
    assert per_subset == pytest.approx(expected + model.per_subset(level2))
    # The previous model put level 2 at 6,000 players and scaled 100 players' seconds as the
    # square: far longer than both levels here.
    assert fixed < 0.1 * (60**2 + 2.24**2)
    # Untimed: the fits of both levels only.
    assert estimate_ame(_cost(n, {}), n) == (0.0, pytest.approx(2 * cost.seconds_per_fit(n // 2)))


def test_plan_note_says_which_path():
    cost = _cost(50_000, {"ame_estimation": _timing(0.1, 0.8, 1.1, fit=0.01)})
    notes = plan_table(cost, ame_subsets=200).set_index("method")["note"]
    note = next(text for label, text in notes.items() if label.startswith("AME"))
    assert "hierarchical: 224 groups" in note and "measured" in note


def test_the_cost_study_times_two_sizes_and_the_fits(cancer_400):
    timing = _time_ame(cancer_400, "logreg", "neg_log_loss", 0)
    assert [(s["players"], s["subsets"]) for s in timing["sizes"]] == [
        (100, 300),
        (400, 300),
        (400, 600),
    ]
    assert all(s["seconds"] > 0 for s in timing["sizes"])
    assert timing["fit_rows"] == 400 and timing["fit_seconds"] > 0 and timing["knockoffs"]
    assert ame_estimation_model(timing).measured
