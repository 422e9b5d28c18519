"""Preprocessing is fitted on training rows only, and ids trace rows back to the source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dataworth.data import load_dataset
from dataworth.data.preprocess import column_kinds, encode_labels


def _mixed_frame(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 1, n),
            "count": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "city": rng.choice(["paris", "rome", "oslo"], n),
            "member": rng.choice([True, False], n),
            "label": rng.choice(["bad", "good", "ok"], n),
        },
        index=[f"row{i}" for i in range(n)],
    )
    frame.loc[frame.index[::7], "age"] = np.nan
    frame.loc[frame.index[::9], "city"] = None
    frame.loc[frame.index[::11], "count"] = pd.NA
    return frame


def test_scaling_and_imputation_are_fitted_on_training_rows_only():
    frame = _mixed_frame()
    task = load_dataset(frame=frame, target="label", train_size=50, seed=0)
    names = list(task.feature_names)
    numeric = [names.index(c) for c in ("age", "income", "count")]
    np.testing.assert_allclose(task.X_train[:, numeric].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(task.X_train[:, numeric].std(axis=0), 1.0, atol=1e-12)
    # The test rows are scaled with training statistics, so they are not standardised.
    assert np.abs(task.X_test[:, numeric].mean(axis=0)).max() > 1e-3

    raw_train = frame.loc[task.train_ids]
    imputer = task.metadata["preprocessor"].named_transformers_["numeric"]["impute"]
    np.testing.assert_allclose(
        imputer.statistics_, raw_train[["age", "income", "count"]].astype(float).median()
    )
    scaler = task.metadata["preprocessor"].named_transformers_["numeric"]["scale"]
    ages = raw_train["age"].fillna(raw_train["age"].median())
    assert scaler.mean_[0] == pytest.approx(ages.mean())
    assert scaler.scale_[0] == pytest.approx(ages.std(ddof=0))


def test_categorical_columns_are_imputed_and_one_hot_encoded():
    frame = _mixed_frame()
    task = load_dataset(frame=frame, target="label", train_size=50, seed=0)
    assert task.feature_names == (
        "age",
        "income",
        "count",
        "city_oslo",
        "city_paris",
        "city_rome",
        "member_False",
        "member_True",
    )
    raw_train = frame.loc[task.train_ids]
    most_frequent = raw_train["city"].mode().sort_values().iloc[0]
    cities = task.X_train[:, 3:6]
    assert np.all(cities.sum(axis=1) == 1.0)  # missing cities imputed, so one hot each
    missing = raw_train["city"].isna().to_numpy()
    column = ["oslo", "paris", "rome"].index(most_frequent)
    assert np.all(cities[missing, column] == 1.0)


def test_ids_trace_back_to_source_rows():
    frame = _mixed_frame()
    task = load_dataset(frame=frame, target="label", train_size=50, seed=2)
    preprocessor = task.metadata["preprocessor"]
    for position in (0, 17, 49):
        source_row = frame.loc[[task.train_ids[position]]]
        np.testing.assert_allclose(preprocessor.transform(source_row)[0], task.X_train[position])
        assert task.class_names[task.y_train[position]] == source_row["label"].iloc[0]
    for position in (0, 29):
        source_row = frame.loc[[task.test_ids[position]]]
        np.testing.assert_allclose(preprocessor.transform(source_row)[0], task.X_test[position])
    pd.testing.assert_frame_equal(task.metadata["raw_train"], frame.loc[task.train_ids])
    pd.testing.assert_frame_equal(task.metadata["raw_test"], frame.loc[task.test_ids])


def test_csv_ids_trace_back_to_file_rows(tmp_path):
    frame = _mixed_frame(40).reset_index(drop=True)
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    task = load_dataset(csv=path, target="label", train_size=0.5, seed=1)
    on_disk = pd.read_csv(path)
    position = 7
    row = on_disk.iloc[[task.train_ids[position]]]
    np.testing.assert_allclose(
        task.metadata["preprocessor"].transform(row)[0], task.X_train[position]
    )


def test_unknown_test_category_encodes_to_zeros():
    frame = pd.DataFrame(
        {
            "x": np.arange(12.0),
            "shop": ["a", "b"] * 5 + ["new", "new"],
            "t": np.arange(12),
            "y": [0, 1] * 6,
        }
    )
    task = load_dataset(frame=frame, target="y", split="time:t", train_size=10)
    assert task.feature_names == ("x", "shop_a", "shop_b")
    np.testing.assert_array_equal(task.X_test[:, 1:], 0.0)


def test_labels_keep_their_names():
    codes, names = encode_labels(pd.Series([10, 9, 2, 9]))
    assert names == ("2", "9", "10") and codes.tolist() == [2, 1, 0, 1]
    codes, names = encode_labels(pd.Series([1.0, 0.0, 1.0]))
    assert names == ("0", "1") and codes.tolist() == [1, 0, 1]
    codes, names = encode_labels(pd.Series(pd.Categorical(["hi", "lo"], ["lo", "mid", "hi"])))
    assert names == ("lo", "hi") and codes.tolist() == [1, 0]
    codes, names = encode_labels(pd.Series(["b", "a", "b"]))
    assert names == ("a", "b") and codes.tolist() == [1, 0, 1]


def test_column_kinds():
    frame = _mixed_frame(10)
    frame["cat"] = pd.Categorical(["u", "v"] * 5)
    kinds = column_kinds(frame.drop(columns="label"))
    assert kinds == {
        "age": "numeric",
        "income": "numeric",
        "count": "numeric",
        "city": "categorical",
        "member": "categorical",
        "cat": "categorical",
    }


def test_numeric_labels_and_integer_columns_from_csv(tmp_path):
    path = tmp_path / "ints.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    task = load_dataset(csv=path, target="label", train_size=10, seed=0)
    assert task.class_names == ("0", "1") and task.feature_names == ("a", "b")
    assert np.bincount(task.y_train).tolist() == [5, 5]
