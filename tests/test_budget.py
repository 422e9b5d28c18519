"""The budget: durations, how the study shares it among methods, and a study that keeps it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dataworth.errors import DataworthError
from dataworth.methods.ame.plan import FLAT_COLUMN_LIMIT
from dataworth.study.budget import (
    AME_BYTES_PER_CELL,
    AME_MIN_SUBSETS,
    StudyShape,
    ame_memory_limit,
    reserve_seconds,
    share_budget,
    unit_seconds,
)
from dataworth.study.config import parse_duration
from dataworth.study.cost.timing import CostResult


@pytest.mark.parametrize(
    ("text", "seconds"), [("600", 600.0), ("90s", 90.0), ("10m", 600.0), ("1h", 3600.0), (5, 5.0)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["ten minutes", "-5m", "0"])
def test_bad_durations(text):
    with pytest.raises(DataworthError, match="budget"):
        parse_duration(text)


def _cost(seconds_per_fit_at_100_rows: float, n_train: int = 1000) -> CostResult:
    """A cost study whose fits take the given time at 100 rows and grow linearly with rows."""
    times = pd.DataFrame(
        {
            "model": ["logreg", "logreg"],
            "fraction": [0.1, 1.0],
            "rows": [100, 1000],
            "seconds": [seconds_per_fit_at_100_rows, 10 * seconds_per_fit_at_100_rows],
            "n_timed": [3, 3],
            "note": ["", ""],
        }
    )
    return CostResult(fit_times=times, n_train=n_train, n_classes=2, valuation_model="logreg")


STEPS = {"loo", "groups", "tmc", "ame", "methods"}


def _shape(n: int = 1000, **changes) -> StudyShape:
    options = dict(
        n_train=n,
        n_test=200,
        loo_points=10,
        n_groups=10,
        permutations=10,
        ame_subsets=4000,
        ame_players=n,
        oob_estimators=200,
        steps=STEPS,
        batched=True,
        influence=True,
    )
    return StudyShape(**(options | changes))


def test_everything_runs_as_configured_when_it_fits():
    cost = _cost(1e-5)  # 0.1 ms per fit on all 1,000 rows
    budget = share_budget(cost, _shape(), 600.0, spent_seconds=5.0, now=0.0)
    assert all(m.run for m in budget.methods.values())
    for name in ("tmc", "tmc_groups", "ame"):
        method = budget.methods[name]
        assert method.units == method.wanted and method.allotted >= method.estimate
    # All that is left is shared out, nothing more.
    total = sum(m.allotted for m in budget.methods.values())
    assert total == pytest.approx(600.0 - 5.0 - reserve_seconds(600.0))
    # The study's order: the methods whose cost is known in advance before those that stop by
    # the clock, so a table too large for everything loses permutations, not whole methods.
    assert list(budget.methods) == [
        "loo",
        "groups",
        "loo_all",
        "knn_shapley",
        "data_oob",
        "influence",
        "tmc",
        "tmc_groups",
        "ame",
    ]


def test_sampled_methods_share_what_the_full_row_methods_leave():
    cost = _cost(1e-3)  # 10 ms per fit on 1,000 rows: TMC alone would take 100 s
    budget = share_budget(cost, _shape(), 60.0, spent_seconds=10.0, now=0.0)
    full = [budget.methods[m] for m in ("loo", "groups", "loo_all")]
    assert all(m.run and m.allotted == m.estimate for m in full)
    left = 60.0 - 10.0 - reserve_seconds(60.0) - sum(m.allotted for m in full)
    tmc, groups, ame = (budget.methods[m] for m in ("tmc", "tmc_groups", "ame"))
    assert tmc.allotted + groups.allotted + ame.allotted == pytest.approx(left)
    # TMC of groups needs little and gets it all; the other two split the rest evenly.
    assert groups.units == groups.wanted and groups.allotted == pytest.approx(groups.estimate)
    assert tmc.allotted == pytest.approx(ame.allotted)
    assert tmc.units == int(tmc.allotted // unit_seconds(tmc)) < tmc.wanted
    assert AME_MIN_SUBSETS <= ame.units < ame.wanted
    assert ame.units * unit_seconds(ame) <= ame.allotted
    assert "of 10 permutations" in tmc.note and "of 4000 subsets" in ame.note


def test_a_method_whose_smallest_run_does_not_fit_is_skipped_and_says_why():
    cost = _cost(1e-2)  # 100 ms per fit: one TMC permutation of 1,000 rows is 100 s
    budget = share_budget(cost, _shape(batched=False), 120.0, spent_seconds=5.0, now=0.0)
    tmc = budget.methods["tmc"]
    assert not tmc.run and tmc.allotted == 0 and tmc.note.startswith("skipped")
    assert "1 permutations" in tmc.note
    # Its share went to the others.
    assert budget.methods["ame"].run and budget.methods["ame"].units > AME_MIN_SUBSETS


def test_loo_of_all_points_values_as_many_random_points_as_fit():
    cost = _cost(1e-2)
    budget = share_budget(cost, _shape(loo_points=1000), 60.0, spent_seconds=5.0, now=0.0)
    loo = budget.methods["loo"]
    assert 10 <= loo.units < 1000 and loo.wanted == 1000 and "random points" in loo.note


def test_a_full_row_method_that_does_not_fit_is_skipped():
    cost = _cost(1e-2)  # LOO of all 1,000 rows: 1,001 fits of 100 ms
    budget = share_budget(cost, _shape(), 60.0, spent_seconds=5.0, now=0.0)
    loo_all = budget.methods["loo_all"]
    assert not loo_all.run and "skipped" in loo_all.note and "1000 rows" in loo_all.note


def test_budget_too_small_for_the_baseline_is_one_clear_error():
    with pytest.raises(DataworthError, match="too small even for the baseline") as error:
        share_budget(_cost(1e-3), _shape(), 10.0, spent_seconds=12.0, now=0.0)
    message = str(error.value)
    assert "\n" not in message and "raise --budget to at least" in message
    need = int(message.split("at least ")[1].split(" ")[0])
    # The budget it names is enough.
    share_budget(_cost(1e-3), _shape(), float(need), spent_seconds=12.0, now=0.0)


def test_ame_subsets_are_capped_by_memory():
    from dataworth.study.cost.plan import ame_level_sizes

    memory = 256 * 1024**2
    # 5,000 players with Knockoffs are 10,000 columns: the hierarchy runs, and its widest
    # regression (level 2) is what must fit.
    widest = max(ame_level_sizes(5_000))
    assert widest < 5_000
    limit = ame_memory_limit(widest, memory)
    assert limit is not None and limit * widest * AME_BYTES_PER_CELL <= 0.5 * memory
    budget = share_budget(
        _cost(1e-6, n_train=5_000),
        _shape(5_000, ame_players=5_000),
        600.0,
        spent_seconds=5.0,
        memory_bytes=memory,
        now=0.0,
    )
    assert budget.methods["ame"].units == limit < 4000
    assert "memory" in budget.methods["ame"].note


def test_ame_above_the_flat_limit_is_planned_as_the_hierarchy():
    # 50,000 players: the study runs hierarchical AME, whose regressions have at most the flat
    # limit's columns, so memory caps its subsets as for that many players, not for 50,000.
    memory = 8 * 1024**3
    budget = share_budget(
        _cost(1e-6, n_train=50_000),
        _shape(50_000, ame_players=50_000),
        600.0,
        spent_seconds=5.0,
        memory_bytes=memory,
        now=0.0,
    )
    capped = ame_memory_limit(FLAT_COLUMN_LIMIT, memory)
    assert budget.methods["ame"].units == min(4000, capped)
    assert ame_memory_limit(50_000, memory) < budget.methods["ame"].units


def test_subsample_keeps_ids_classes_and_test_rows(cancer_400):
    small = cancer_400.subsample_train(100, seed=1)
    assert small.n_train == 100 and small.n_test == cancer_400.n_test
    share = np.bincount(cancer_400.y_train) / cancer_400.n_train
    assert np.abs(np.bincount(small.y_train) - 100 * share).max() <= 1
    positions = cancer_400.positions_of(small.train_ids)
    np.testing.assert_array_equal(cancer_400.X_train[positions], small.X_train)


def test_ame_is_skipped_when_its_lasso_alone_would_overrun_its_share():
    cost = _cost(1e-5)
    # AME's estimation timed at 1 s for 100 players (one size: the square of the players):
    # about 100 s for the metric at 1,000 players, and 2/3 of that per further target.
    cost.paths["ame_estimation"] = {"players": 100, "subsets": 100, "seconds": 1.0}
    budget = share_budget(cost, _shape(ame_targets=4), 120.0, spent_seconds=5.0, now=0.0)
    ame = budget.methods["ame"]
    assert ame.fixed == pytest.approx(300.0)
    assert not ame.run and ame.note.startswith("skipped") and "100 subsets" in ame.note
    # With time for it, the same AME runs as configured.
    roomy = share_budget(cost, _shape(ame_targets=4), 3600.0, spent_seconds=5.0, now=0.0)
    assert roomy.methods["ame"].run and roomy.methods["ame"].units == 4000


def test_a_method_of_known_cost_is_skipped_when_its_turn_comes_too_late():
    from time import perf_counter
    from types import SimpleNamespace

    from dataworth.study.budget import MethodBudget, StudyBudget
    from dataworth.study.steps import _skipped

    budget = StudyBudget(600.0, 100.0, 10.0)
    budget.methods = {
        name: MethodBudget(name, name, estimate, allotted=estimate)
        for name, estimate in (("knn_shapley", 5.0), ("data_oob", 20.0), ("tmc", 100.0))
    }
    said: list[str] = []
    ctx = SimpleNamespace(results={"budget": budget}, log=said.append)
    # The methods before them overran: 15 s are left of the valuation's time.
    budget.deadline = perf_counter() + 15.0
    assert not _skipped(ctx, "knn_shapley")  # 5 s fit
    assert _skipped(ctx, "data_oob")  # 20 s do not, and it could not stop once started
    assert not budget.methods["data_oob"].run
    assert "when its turn came" in said[-1]
    # TMC stops by the clock: it is never skipped this way.
    assert not _skipped(ctx, "tmc")


def test_the_clean_steps_share_is_kept_out_of_every_methods_share():
    cost = _cost(1e-3)
    plain = share_budget(cost, _shape(), 60.0, spent_seconds=10.0, now=0.0)
    kept = share_budget(cost, _shape(), 60.0, spent_seconds=10.0, now=0.0, kept_seconds=9.0)
    assert kept.deadline == pytest.approx(plain.deadline - 9.0)
    total = sum(m.allotted for m in kept.methods.values())
    assert total == pytest.approx(sum(m.allotted for m in plain.methods.values()) - 9.0)
    # Too small a budget names one that pays for the kept share too.
    with pytest.raises(DataworthError, match="the cleaning and the report") as error:
        share_budget(cost, _shape(), 20.0, spent_seconds=16.0, now=0.0, kept_seconds=3.0)
    need = int(str(error.value).split("at least ")[1].split(" ")[0])
    share_budget(cost, _shape(), float(need), spent_seconds=16.0, now=0.0, kept_seconds=0.15 * need)
