"""Every kind of bad input fails with one DataworthError line saying what is wrong and the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dataworth.data import load_dataset
from dataworth.errors import DataworthError


def _fails(match: str, **kwargs) -> str:
    with pytest.raises(DataworthError, match=match) as info:
        load_dataset(**kwargs)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    return message


def _frame(n: int = 20) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": np.arange(n, dtype=float),
            "z": np.linspace(-1, 1, n),
            "label": ["a", "b"] * (n // 2),
        }
    )


def _csv(tmp_path, frame: pd.DataFrame, name: str = "data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_missing_file(tmp_path):
    _fails("does not exist; check the path", csv=tmp_path / "nope.csv", target="label")
    _fails("does not exist", parquet=tmp_path / "nope.parquet", target="label")


def test_directory_is_not_a_file(tmp_path):
    _fails("is not a file", csv=tmp_path, target="label")


def test_empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    _fails("is empty", csv=path, target="label")


def test_header_only_csv(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("x,label\n")
    _fails("has no data rows", csv=path, target="label")


def test_unreadable_csv(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"x,label\n\xff\xfe\x00\x81,\x9f\n")
    _fails("Cannot read CSV file", csv=path, target="label")


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all")
    _fails("Cannot read Parquet file", parquet=path, target="label")


def test_misspelled_target_suggests_close_names(tmp_path):
    path = _csv(tmp_path, _frame())
    message = _fails("Target column 'lable' is not in", csv=path, target="lable")
    assert "did you mean 'label'" in message
    message = _fails("Target column 'Label'", frame=_frame(), target="Label")
    assert "'label'" in message


def test_unrelated_target_lists_columns():
    message = _fails("is not in the DataFrame", frame=_frame(), target="outcome")
    assert message.endswith("pass target= one of: 'x', 'z', 'label'")


def test_target_required_for_user_data(tmp_path):
    _fails("pass target=NAME", csv=_csv(tmp_path, _frame()))
    _fails("pass target=NAME", frame=_frame())


def test_wrong_target_for_builtin():
    _fails(
        "Target column 'label' is not in the built-in dataset 'iris'", name="iris", target="label"
    )


def test_target_with_one_class():
    frame = _frame().assign(label="a")
    _fails("has a single class \\('a'\\)", frame=frame, target="label")


def test_target_with_missing_labels():
    frame = _frame()
    frame.loc[3, "label"] = None
    _fails("has 1 missing label", frame=frame, target="label")


def test_class_with_one_row_cannot_be_stratified():
    frame = _frame()
    frame.loc[5, "label"] = "c"
    _fails(
        "Class 'c' has only 1 row; a stratified split needs at least 2", frame=frame, target="label"
    )


def test_too_few_rows_for_the_test_side():
    frame = pd.DataFrame({"x": np.arange(9.0), "label": list("aaabbbccc")})
    # 8 training rows leave 1 test row for 3 classes.
    _fails(
        "leaves a side with fewer rows than the 3 classes",
        frame=frame,
        target="label",
        train_size=8,
    )


def test_numeric_junk_names_column_and_value(tmp_path):
    frame = _frame()
    frame["z"] = frame["z"].astype(object)
    frame.loc[13, "z"] = "abc"
    path = _csv(tmp_path, frame)
    message = _fails("Column 'z' looks numeric", csv=path, target="label")
    assert "'abc'" in message and "row id 13" in message


def test_text_column_is_not_mistaken_for_junk():
    frame = _frame()
    frame["colour"] = ["1", "2", "red", "blue"] * 5
    task = load_dataset(frame=frame, target="label", train_size=10)
    assert any(name.startswith("colour_") for name in task.feature_names)


def test_all_nan_column(tmp_path):
    frame = _frame().assign(empty=np.nan)
    _fails("Column 'empty' has no values", csv=_csv(tmp_path, frame), target="label")


def test_column_empty_in_training_split():
    frame = _frame().assign(t=np.arange(20))
    frame["late"] = np.where(frame["t"] >= 15, 1.0, np.nan)
    _fails(
        "Column 'late' has no values in the training split",
        frame=frame,
        target="label",
        split="time:t",
        train_size=10,
    )


def test_infinite_values(tmp_path):
    frame = _frame()
    frame.loc[[2, 4], "x"] = np.inf
    _fails("Column 'x' has 2 infinite value", csv=_csv(tmp_path, frame), target="label")


def test_train_size_leaves_no_test_rows():
    _fails("leaves no test rows out of 20", frame=_frame(), target="label", train_size=20)


def test_too_few_rows_for_any_split():
    frame = pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]})
    _fails("Class 'a' has only 1 row", frame=frame, target="label", train_size=0.5)


@pytest.mark.parametrize("train_size", [0.0, 1.0, -3, 1, 1.5, "half", True])
def test_train_size_out_of_range(train_size):
    _fails(f"train_size={train_size!r} is", name="iris", train_size=train_size)


def test_unknown_dataset_lists_known_names():
    message = _fails("Unknown dataset 'breastcancer'", name="breastcancer")
    assert "did you mean 'breast_cancer'" in message
    assert "digits" in message and "iris" in message and "synthetic" in message


def test_no_source_at_all():
    _fails("No data given", name=None)


def test_two_sources(tmp_path):
    _fails(
        "Give exactly one data source", csv=_csv(tmp_path, _frame()), frame=_frame(), target="label"
    )


@pytest.mark.parametrize("split", ["randomly", "time", "group:", "kfold:5", 3])
def test_bad_split_spec(split):
    _fails("split|Unknown split", name="iris", split=split)


def test_split_column_missing():
    message = _fails(
        "The time column 'date' is not in the data",
        frame=_frame(),
        target="label",
        split="time:date",
    )
    assert "name an existing column" in message
    _fails(
        "The group column 'zz' is not in the data; did you mean 'z'",
        frame=_frame(),
        target="label",
        split="group:zz",
    )


def test_split_on_target_column():
    _fails("uses the target column", frame=_frame(), target="label", split="group:label")


def test_split_column_with_missing_values():
    frame = _frame().assign(site=["s1", "s2", None, "s3"] * 5)
    _fails("The group column 'site' has 5 missing", frame=frame, target="label", split="group:site")


def test_time_column_that_is_not_time():
    frame = _frame().assign(when=["soon", "later"] * 10)
    _fails("The time column 'when' holds 20 value", frame=frame, target="label", split="time:when")


def test_single_group():
    frame = _frame().assign(site="s1")
    _fails("needs at least 2 groups", frame=frame, target="label", split="group:site")


def test_time_split_without_a_class_in_training():
    frame = _frame().assign(t=np.arange(20), label=["a"] * 12 + ["b"] * 8)
    _fails(
        "puts no row of class 'b' in training",
        frame=frame,
        target="label",
        split="time:t",
        train_size=10,
    )


def test_datetime_feature_needs_a_decision():
    frame = _frame().assign(when=pd.date_range("2024-01-01", periods=20))
    _fails("Column 'when' has type datetime64", frame=frame, target="label")


def test_duplicate_index_labels():
    frame = _frame().set_axis([0, 1] * 10)
    _fails("index label 0 more than once", frame=frame, target="label")


def test_no_feature_columns():
    _fails("no feature columns", frame=_frame()[["label"]], target="label")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "seed=-1"),
        ({"seed": 1.5}, "seed=1.5"),
        ({"flip": 1.5}, "flip=1.5 is out of range"),
        ({"flip": -0.1}, "flip=-0.1"),
        ({"rows": 3}, "rows=3 is too few for 3 classes"),
        ({"rows": 2.5}, "rows=2.5 is not a whole number"),
    ],
)
def test_bad_options(kwargs, match):
    _fails(match, name="iris", **kwargs)


def test_not_a_dataframe():
    _fails("frame= must be a pandas DataFrame", frame=np.zeros((3, 2)), target="label")
