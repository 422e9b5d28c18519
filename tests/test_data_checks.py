"""Data checks: a corpus of small tables, each with one planted problem that must be found (and
named, with its fix), one clean table that must raise nothing, and no false alarms on the
built-in datasets."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

import dataworth as dw
from dataworth.data import DataCheckWarning, Finding, check_data, get_dataset, load_dataset
from dataworth.data.checks import baseline_findings, label_findings
from dataworth.errors import DataworthError
from dataworth.study.baseline import run_baseline

N = 200


def _clean(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Two noisy numeric features, a categorical one, and a label that depends on them."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "colour": rng.choice(["red", "green", "blue", "grey"], size=n),
        }
    )
    frame["y"] = np.where(x1 + 0.5 * x2 + rng.normal(scale=0.8, size=n) > 0, "pos", "neg")
    return frame


def _checks(frame: pd.DataFrame, **options) -> list[Finding]:
    return check_data(None, frame=frame, target="y", **options)


def _only(findings: list[Finding], check: str) -> Finding:
    """The one finding of the table; it must be the planted problem."""
    assert [f.check for f in findings] == [check], [f.message for f in findings]
    return findings[0]


def test_clean_table_raises_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataCheckWarning)
        task = load_dataset(frame=_clean(), target="y", seed=0)
    assert task.metadata["checks"] == []
    assert _checks(_clean(seed=1), seed=3) == []


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "digits", "iris", "synthetic"])
def test_no_false_alarm_on_builtin_datasets(name):
    findings = check_data(name, seed=0)
    assert [f for f in findings if f.severity == "warning"] == []
    if name == "digits":
        # Blank border pixels: a note, since a constant column cannot change any fit.
        constant = _only(findings, "constant_column")
        assert constant.severity == "info"
        assert "pixel_0_0" in constant.columns and "--drop pixel_0_0" in constant.message


def test_numeric_column_restating_the_label():
    frame = _clean()
    rng = np.random.default_rng(1)
    frame["score"] = (frame["y"] == "pos") * 10.0 + rng.uniform(size=N)
    finding = _only(_checks(frame), "label_leakage")
    assert finding.columns == ("score",)
    assert "'score'" in finding.message and "--drop score" in finding.message


def test_numeric_copy_of_a_ten_class_label():
    frame = get_dataset("digits").loader().frame
    noise = np.random.default_rng(0).uniform(size=len(frame)) * 0.5
    frame["digit_again"] = frame["target"].cat.codes * 1.0 + noise
    findings = check_data(None, frame=frame, target="target")
    assert [(f.check, f.columns) for f in findings if f.severity == "warning"] == [
        ("label_leakage", ("digit_again",))
    ]


def test_categorical_column_restating_the_label_counts_as_one_column():
    frame = _clean()
    frame["outcome"] = frame["y"].map({"pos": "survived", "neg": "died"})
    with pytest.warns(DataCheckWarning, match="Column 'outcome' alone predicts the label 'y'"):
        task = load_dataset(frame=frame, target="y")
    finding = _only(task.metadata["checks"], "label_leakage")
    assert finding.columns == ("outcome",)  # not one finding per one-hot column
    assert "--drop outcome" in finding.message


def test_unnamed_index_column_written_by_pandas(tmp_path):
    frame = _clean().sample(frac=1.0, random_state=0)  # a shuffled index, written as a column
    path = tmp_path / "data.csv"
    frame.to_csv(path)
    findings = check_data(None, csv=path, target="y")
    finding = _only(findings, "identifier")
    assert finding.columns == ("Unnamed: 0",)
    assert "--drop 'Unnamed: 0'" in finding.message


def test_names_unique_per_row_are_an_identifier():
    frame = _clean()
    frame["name"] = [f"passenger {i:03d} {c}" for i, c in enumerate(np.repeat(list("ab"), N // 2))]
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    finding = _only(_checks(frame), "identifier")
    assert finding.columns == ("name",) and "different value in every row" in finding.message
    assert "--drop name" in finding.message


def test_shuffled_integer_id_and_increasing_column():
    frame = _clean()
    frame["customer_id"] = np.random.default_rng(2).permutation(N) + 1000
    finding = _only(_checks(frame), "identifier")
    assert finding.columns == ("customer_id",)
    frame = _clean()
    frame["recorded"] = np.cumsum(np.random.default_rng(3).uniform(1, 5, size=N))
    finding = _only(_checks(frame), "identifier")
    assert "increases strictly with the row number" in finding.message
    assert "--split time:recorded" in finding.message


def test_integer_measurement_is_not_an_identifier():
    frame = _clean()
    # Unique whole numbers with gaps and no id-like name: a measurement, not an id.
    frame["income"] = np.random.default_rng(4).choice(np.arange(10_000, 90_000), N, replace=False)
    assert _checks(frame) == []


def test_repeated_header_name_in_a_csv(tmp_path):
    frame = _clean()
    path = tmp_path / "data.csv"
    text = frame.to_csv(index=False).replace("x1,x2,colour,y", "x1,x2,x1,y", 1)
    path.write_text(text)
    finding = _only(check_data(None, csv=path, target="y"), "duplicate_column_name")
    assert finding.columns == ("x1", "x1.1")
    assert "'x1' appears 2 times" in finding.message and "--drop x1.1" in finding.message
    # Dropping the copy silences the finding; a column really named "x1.1" raises nothing.
    assert check_data(None, csv=path, target="y", drop="x1.1") == []
    frame.rename(columns={"colour": "x1.1"}).to_csv(path, index=False)
    assert check_data(None, csv=path, target="y") == []


def test_constant_column_is_a_note():
    frame = _clean()
    frame["country"] = "NL"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataCheckWarning)  # a note never warns
        task = load_dataset(frame=frame, target="y")
    finding = _only(task.metadata["checks"], "constant_column")
    assert finding.severity == "info" and finding.columns == ("country",)


def _timed(frame: pd.DataFrame) -> pd.DataFrame:
    """A time column so that the first 150 rows train and the last 50 test."""
    frame = frame.copy()
    frame["t"] = np.arange(len(frame))
    return frame


def test_duplicate_rows_inside_training_are_listed_by_id():
    frame = _timed(_clean())
    frame.iloc[100:130, :4] = frame.iloc[0:30, :4].to_numpy()  # 30 copies, all in training
    findings = _checks(frame, split="time:t", train_size=150)
    finding = _only(findings, "duplicate_rows")
    assert finding.severity == "warning"  # 60 of 150 training rows are in copy groups
    assert finding.rows[0] == [0, 100] or finding.rows[0] == (0, 100)
    assert "60 training rows" in finding.message


def test_rows_in_both_training_and_test():
    frame = _timed(_clean())
    frame.iloc[150:170, :4] = frame.iloc[0:20, :4].to_numpy()  # 20 of the 50 test rows
    finding = _only(_checks(frame, split="time:t", train_size=150), "train_test_overlap")
    assert finding.severity == "warning" and len(finding.rows) == 20
    assert "20 test rows (40.0% of the test set)" in finding.message
    assert "--split group:" in finding.message


def test_rare_class():
    frame = _clean()
    frame.loc[:3, "y"] = "rare"  # 4 rows: at most 3 can train
    finding = _only(_checks(frame), "rare_class")
    assert "'rare'" in finding.message and "merge them" in finding.message


def test_continuous_label_is_named_instead_of_a_split_error():
    frame = _clean()
    frame["y"] = np.random.default_rng(5).normal(100, 20, size=N).round(2)
    with pytest.raises(DataworthError, match="'y' looks like a continuous number") as error:
        load_dataset(frame=frame, target="y")
    assert "bin it into a few classes" in str(error.value)
    # Whole numbers with many tiny classes (an age, a count) look continuous too.
    ages = pd.Series(np.random.default_rng(6).integers(18, 90, size=N), name="age")
    assert [f.check for f in label_findings(ages, "age")] == ["continuous_label"]
    # Ten digit classes of many rows each do not.
    assert label_findings(pd.Series(np.arange(N) % 10), "digit") == []


def test_missing_labels_stop_the_load():
    frame = _clean()
    frame.loc[5, "y"] = None
    with pytest.raises(DataworthError, match="'y' has 1 missing label"):
        load_dataset(frame=frame, target="y")


def test_drop_removes_columns_before_anything_else():
    frame = _clean()
    frame["outcome"] = frame["y"].map({"pos": "survived", "neg": "died"})
    frame["Unnamed: 0"] = np.arange(N)
    task = load_dataset(frame=frame, target="y", drop="outcome, Unnamed: 0")
    assert task.metadata["checks"] == [] and task.metadata["dropped"] == ["outcome", "Unnamed: 0"]
    clean = load_dataset(frame=_clean(), target="y")
    assert task.fingerprint == clean.fingerprint  # exactly the task of the table without them


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("colr", "--drop names the column 'colr', which is not in the data; did you mean 'colour'"),
        ("y", "--drop names the target column 'y'"),
        (["x1", 3], "must be column names"),
    ],
)
def test_drop_errors(drop, message):
    with pytest.raises(DataworthError, match=message):
        load_dataset(frame=_clean(), target="y", drop=drop)


def test_strict_turns_warnings_into_one_error():
    frame = _clean()
    frame["outcome"] = frame["y"].map({"pos": "survived", "neg": "died"})
    frame["name"] = [f"n{i}" for i in range(N)]
    with pytest.raises(DataworthError) as error:
        load_dataset(frame=frame, target="y", strict=True)
    text = str(error.value)
    assert "\n" not in text and "2 problem(s)" in text and "Strict mode" in text
    # Notes do not trip strict mode.
    load_dataset("digits", strict=True)


def test_finding_round_trips_through_json():
    finding = _checks(_timed(_clean()).assign(t=lambda f: f["t"]))[0]
    assert Finding.from_dict(finding.to_dict()) == finding


def test_perfect_baseline_on_a_leaky_task():
    frame = _clean()
    frame["score"] = (frame["y"] == "pos") * 10.0 + np.random.default_rng(1).uniform(size=N)
    with pytest.warns(DataCheckWarning):
        task = load_dataset(frame=frame, target="y", seed=0)
    result = run_baseline(task, models=["logreg", "knn"], primary_model="logreg", seed=0)
    finding = _only(baseline_findings(result.metrics, task.n_test), "perfect_baseline")
    assert f"all {task.n_test} test rows" in finding.message and "logreg, knn" in finding.message
    # Logistic regression alone is perfect on wine's test rows; the neighbours are not.
    wine = load_dataset("wine", seed=0)
    result = run_baseline(wine, models=["logreg", "knn"], primary_model="logreg", seed=0)
    assert result.metrics.loc["logreg", "accuracy"] == 1.0
    assert baseline_findings(result.metrics, wine.n_test) == []


def test_checks_take_seconds_on_50000_rows():
    rng = np.random.default_rng(0)
    n = 50_000
    frame = pd.DataFrame(rng.normal(size=(n, 20)), columns=[f"x{j}" for j in range(20)])
    for j in range(4):
        frame[f"c{j}"] = rng.choice(list("abcdefgh"), size=n)
    frame["y"] = np.where(frame["x0"] + frame["x1"] > 0, "yes", "no")
    frame["leak"] = frame["y"].map({"yes": "Y", "no": "N"})
    start = time.perf_counter()
    findings = _checks(frame)
    elapsed = time.perf_counter() - start
    assert [f.columns for f in findings] == [("leak",)]
    # Reported, not asserted: wall-clock limits do not belong in unit tests.
    print(f"load and checks of {n} rows: {elapsed:.1f} s")


def test_public_api():
    assert dw.check_data is check_data
