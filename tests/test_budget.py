"""The budget: durations, the subsample decision, and a study that follows it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dataworth.config import parse_duration
from dataworth.cost import CostResult
from dataworth.errors import DataworthError
from dataworth.study import valuation_size


@pytest.mark.parametrize(
    ("text", "seconds"), [("600", 600.0), ("90s", 90.0), ("10m", 600.0), ("1h", 3600.0), (5, 5.0)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["ten minutes", "-5m", "0"])
def test_bad_durations(text):
    with pytest.raises(DataworthError, match="budget"):
        parse_duration(text)


def _cost(seconds_per_fit_at_100_rows: float) -> CostResult:
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
    return CostResult(fit_times=times, n_train=1000, n_classes=2, valuation_model="logreg")


def _total_seconds(cost: CostResult, rows: int, ame_subsets: int) -> float:
    # The study's methods: LOO of 10 points, 10 groups, TMC on points and on 10 groups, AME.
    fits = 11 + 11 + (10 * rows + 1) + 101 + ame_subsets
    return fits * cost.seconds_per_fit(rows)


def test_no_subsample_when_the_study_fits_the_budget():
    cost = _cost(1e-4)  # 1 ms per fit on all 1,000 rows: about 14 s in all
    assert valuation_size(cost, 600.0, ame_subsets=4000) is None


def test_subsample_is_the_largest_size_whose_total_fits():
    cost = _cost(1e-3)  # 10 ms per fit at 1,000 rows: about 140 s for the full study
    rows = valuation_size(cost, 30.0, ame_subsets=4000)
    assert rows is not None and rows < 1000
    assert _total_seconds(cost, rows, 4000) <= 30.0 < _total_seconds(cost, rows + 1, 4000)


def test_impossible_budget_is_one_clear_error():
    with pytest.raises(DataworthError, match="raise --budget"):
        valuation_size(_cost(1.0), 1.0, ame_subsets=4000)


def test_subsample_keeps_ids_classes_and_test_rows(cancer_400):
    small = cancer_400.subsample_train(100, seed=1)
    assert small.n_train == 100 and small.n_test == cancer_400.n_test
    share = np.bincount(cancer_400.y_train) / cancer_400.n_train
    assert np.abs(np.bincount(small.y_train) - 100 * share).max() <= 1
    positions = cancer_400.positions_of(small.train_ids)
    np.testing.assert_array_equal(cancer_400.X_train[positions], small.X_train)
