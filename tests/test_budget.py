"""The budget: durations, the subsample decision, and a study that follows it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dataworth.config import parse_duration
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


def _plan(feasible, suggested):
    methods = [
        "LOO (10 points)",
        "LOO (all points)",
        "leave-group-out (10 groups)",
        "TMC-Shapley (10 perms)",
        "AME (4000 subsets)",
    ]
    return pd.DataFrame(
        {
            "method": methods,
            "feasible": feasible,
            "suggested_rows": pd.array(suggested, dtype="Int64"),
        }
    )


def test_no_subsample_when_every_study_method_fits():
    # LOO of all points does not fit, but the study does not run it.
    plan = _plan([True, False, True, True, True], [None, 300, None, None, None])
    assert valuation_size(plan) is None


def test_subsample_is_the_smallest_suggestion_among_late_methods():
    plan = _plan([True, True, True, False, False], [None, None, None, 250, 400])
    assert valuation_size(plan) == 250


def test_impossible_budget_is_one_clear_error():
    plan = _plan([True, True, True, False, True], [None, None, None, None, None])
    with pytest.raises(DataworthError, match=r"TMC-Shapley .* raise --budget"):
        valuation_size(plan)


def test_subsample_keeps_ids_classes_and_test_rows(cancer_400):
    small = cancer_400.subsample_train(100, seed=1)
    assert small.n_train == 100 and small.n_test == cancer_400.n_test
    share = np.bincount(cancer_400.y_train) / cancer_400.n_train
    assert np.abs(np.bincount(small.y_train) - 100 * share).max() <= 1
    positions = cancer_400.positions_of(small.train_ids)
    np.testing.assert_array_equal(cancer_400.X_train[positions], small.X_train)
