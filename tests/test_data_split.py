"""Splits and subsampling: stratification, exact sizes, time order, groups kept apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, load_wine

from dataworth.data import load_dataset
from dataworth.data.split import (
    _allocate,
    group_split,
    parse_split,
    random_split,
    resolve_train_size,
    stratified_subsample,
    time_split,
)


def _assert_stratified(codes: np.ndarray, part: np.ndarray, total: int) -> None:
    """Each class's count in ``part`` is within one row of its ideal share."""
    counts = np.bincount(codes, minlength=codes.max() + 1)
    got = np.bincount(codes[part], minlength=codes.max() + 1)
    ideal = len(part) * counts / total
    assert np.all(np.abs(got - ideal) < 1.0), (got, ideal)


@pytest.mark.parametrize("train_size", [0.7, 0.3, 100, 55])
def test_random_split_is_stratified_within_one_row(train_size):
    task = load_dataset("wine", train_size=train_size, seed=4)
    codes = load_wine().target
    n_train = train_size if isinstance(train_size, int) else round(train_size * 178)
    assert task.n_train == n_train and task.n_test == 178 - n_train
    train, test = task.train_ids, task.test_ids
    assert len(np.intersect1d(train, test)) == 0
    assert len(np.union1d(train, test)) == 178
    _assert_stratified(codes, train, 178)
    _assert_stratified(codes, test, 178)


def test_random_split_keeps_every_class_on_both_sides():
    codes = np.array([0] * 97 + [1] * 3)
    train, test = random_split(codes, 90, np.random.default_rng(0))
    # The ideal 2.7 training rows of class 1 would leave 0.3 for testing: one must stay there.
    assert np.bincount(codes[train]).tolist() == [88, 2]
    assert np.bincount(codes[test]).tolist() == [9, 1]


def test_allocate_sums_and_respects_bounds():
    counts = np.array([50, 30, 15, 5])
    for total in range(4, 97):
        alloc = _allocate(counts, total, np.ones(4), counts - 1)
        assert alloc.sum() == total
        assert np.all(alloc >= 1) and np.all(alloc <= counts - 1)


def test_rows_subsample_is_exact_and_stratified():
    task = load_dataset("digits", rows=300, train_size=200, seed=1)
    ids = np.concatenate([task.train_ids, task.test_ids])
    assert len(ids) == 300 and len(np.unique(ids)) == 300
    codes = load_digits().target
    counts = np.bincount(codes)
    kept = np.bincount(codes[ids], minlength=10)
    assert np.all(np.abs(kept - 300 * counts / len(codes)) < 1.0)
    assert task.metadata["description"].n_source_rows == 1797
    assert task.metadata["description"].n_rows == 300


def test_rows_at_or_above_size_keeps_everything():
    task = load_dataset("iris", rows=10_000, train_size=100)
    assert task.n_train + task.n_test == 150


def test_stratified_subsample_keeps_two_of_a_rare_class():
    codes = np.array([0] * 990 + [1] * 10)
    kept = stratified_subsample(codes, 50, np.random.default_rng(0))
    assert len(kept) == 50 and np.bincount(codes[kept]).tolist() == [48, 2]


def _timed_frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "when": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.permutation(n), "D"),
            "site": rng.integers(0, 8, n).astype(str),
            "x": rng.normal(size=n),
            "y": np.tile(["no", "yes"], n // 2),
        }
    )


def test_time_split_trains_on_the_earliest_rows_and_drops_the_column():
    frame = _timed_frame()
    task = load_dataset(frame=frame, target="y", split="time:when", train_size=0.75)
    assert task.n_train == 45
    train_times = frame.loc[task.train_ids, "when"]
    test_times = frame.loc[task.test_ids, "when"]
    assert train_times.max() <= test_times.min()
    # Numeric columns first, then one-hot columns of the training sites; no time column.
    sites = sorted(frame.loc[task.train_ids, "site"].unique())
    assert task.feature_names == ("x", *(f"site_{s}" for s in sites))
    split = task.metadata["description"].split
    assert split["kind"] == "time" and not split["stratified"]


def test_time_split_with_ties_orders_train_before_test():
    times = pd.Series([3, 1, 2, 2, 2, 1, 3, 0])
    train, test = time_split(times, 4, "t")
    assert times.iloc[train].max() <= times.iloc[test].min()
    assert sorted(train.tolist()) == [1, 2, 5, 7]


def test_time_split_parses_text_dates_instead_of_sorting_text(tmp_path):
    days = pd.date_range("2024-01-01", periods=40, freq="5D")
    order = np.random.default_rng(1).permutation(40)
    frame = pd.DataFrame(
        {
            # US-style text dates: as text, "10/5/2024" would sort before "9/1/2024".
            "day": [f"{d.month}/{d.day}/{d.year}" for d in days[order]],
            "x": np.arange(40.0),
            "y": ["p", "q"] * 20,
        }
    )
    frame.to_csv(tmp_path / "days.csv", index=False)
    task = load_dataset(csv=tmp_path / "days.csv", target="y", split="time:day", train_size=30)
    train_days = pd.to_datetime(frame.loc[task.train_ids, "day"], format="%m/%d/%Y")
    test_days = pd.to_datetime(frame.loc[task.test_ids, "day"], format="%m/%d/%Y")
    assert train_days.max() < test_days.min()
    assert sorted(test_days) == list(days[30:])


def test_group_split_keeps_groups_apart():
    frame = _timed_frame(200).drop(columns="when")
    task = load_dataset(frame=frame, target="y", split="group:site", train_size=0.6, seed=3)
    train_groups = set(frame.loc[task.train_ids, "site"])
    test_groups = set(frame.loc[task.test_ids, "site"])
    assert train_groups and test_groups and not train_groups & test_groups
    assert not any(name.startswith("site") for name in task.feature_names)
    assert task.n_train + task.n_test == 200
    split = task.metadata["description"].split
    assert split["n_train_groups"] == len(train_groups)
    assert split["n_test_groups"] == len(test_groups)


def test_group_split_is_closest_prefix_of_a_seeded_order():
    groups = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    for seed in range(5):
        train, test = group_split(groups, 70, np.random.default_rng(seed), "g")
        sizes = len(train)
        # Whatever the order, a side made of whole groups is within the nearest reachable size.
        assert sizes in {50, 70, 80, 30, 20}
        assert set(groups.iloc[train]).isdisjoint(groups.iloc[test])
        assert len(test) > 0


def test_split_is_a_pure_function_of_the_seed():
    a = load_dataset("iris", seed=11)
    b = load_dataset("iris", seed=11)
    c = load_dataset("iris", seed=12)
    np.testing.assert_array_equal(a.train_ids, b.train_ids)
    assert not np.array_equal(a.train_ids, c.train_ids)


@pytest.mark.parametrize(
    ("spec", "kind", "column"),
    [("random", "random", None), ("time:date", "time", "date"), ("group: site ", "group", "site")],
)
def test_parse_split(spec, kind, column):
    parsed = parse_split(spec)
    assert (parsed.kind, parsed.column) == (kind, column)


@pytest.mark.parametrize(("train_size", "n"), [(0.5, 10), (0.7, 569), (400, 569), (400.0, 569)])
def test_resolve_train_size(train_size, n):
    expected = round(train_size * n) if train_size < 1 else int(train_size)
    assert resolve_train_size(train_size, n) == expected
