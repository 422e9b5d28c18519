"""The valuation commands: loo, groups and tmc, their tables, files and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dataworth.cli import app
from dataworth.methods.result import ValuationResult

runner = CliRunner()
SMALL = ["--rows", "150", "--train-size", "100"]


def _invoke(*args: str):
    return runner.invoke(app, list(args))


def _one_line_error(result, fragment: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_loo_command_values_random_points_and_writes_them(tmp_path):
    result = _invoke("loo", *SMALL, "--points", "4", "--out", "run")
    assert result.exit_code == 0, result.output
    assert "Exact LOO influence on neg_log_loss" in result.output
    table = pd.read_csv(tmp_path / "run" / "loo_table.csv")
    assert len(table) == 4
    assert {"value", "neighbour_agreement", "own_label_proba", "outlier_rank"} <= set(table)
    saved = ValuationResult.load(tmp_path / "run" / "loo")
    np.testing.assert_allclose(saved.values, table["value"])
    assert (tmp_path / "run" / "figures" / "loo.png").exists()


def test_loo_command_by_ids(tmp_path):
    ids = pd.read_csv(_train_ids(tmp_path))["id"].head(2).astype(str).tolist()
    result = _invoke("loo", *SMALL, "--ids", ",".join(ids))
    assert result.exit_code == 0, result.output
    for i in ids:
        assert f" {i} " in result.output


def _train_ids(tmp_path):
    assert _invoke("loo", *SMALL, "--points", "1", "--out", "ids").exit_code == 0
    return tmp_path / "ids" / "train_ids.csv"


def test_groups_command_by_label_and_fractions():
    result = _invoke("groups", *SMALL, "--by", "label")
    assert result.exit_code == 0, result.output
    assert "label=benign" in result.output and "label=malignant" in result.output
    result = _invoke("groups", *SMALL, "--fractions", "0.5,1")
    assert result.exit_code == 0, result.output
    assert "random_50%" in result.output and "random_100%" in result.output


def test_tmc_command_points_and_groups(tmp_path):
    result = _invoke("tmc", *SMALL, "--permutations", "2", "--by", "label", "--out", "t")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps titles to the table's width
    assert "TMC-Shapley, 2 permutations" in text
    assert "TMC-Shapley values of the groups" in text
    points = ValuationResult.load(tmp_path / "t" / "shapley_points")
    full, empty = points.manifest["full_value"], points.manifest["empty_value"]
    assert points.params["permutations"] == 2 and len(points) == 100
    assert abs(points.values.sum() - (full - empty)) < 0.05  # truncation keeps it within tol


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["loo", "--ids", "no-such-row"], "not training rows"),
        (["loo", "--points", "zero"], "--points"),
        (["groups", "--fractions", "0,1.5"], "(0, 1]"),
        (["groups", "--by", "colour"], "Unknown grouping"),
        (["groups", "--by", "feature:nope"], "Unknown feature"),
        (["tmc", "--players", "people"], "Unknown players"),
        (["tmc", "--permutations", "0"], "permutations"),
        (["loo", "--backend", "gpu"], "Unknown backend"),
        (["loo", "--scheduler", "tcp://127.0.0.1:1"], "Cannot reach the Dask scheduler"),
    ],
)
def test_bad_valuation_input_exits_2_with_one_line(args, fragment):
    _one_line_error(_invoke(*args, *SMALL), fragment)


def test_ame_command_explains_a_single_prediction(tmp_path):
    assert _invoke("loo", *SMALL, "--points", "1", "--out", "ids").exit_code == 0
    test_id = str(pd.read_csv(tmp_path / "ids" / "test_ids.csv")["id"].iloc[0])
    result = _invoke(
        "ame", *SMALL, "--explain", f"test:{test_id}", "--subsets", "600", "--out", "a"
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"AME on the test row {test_id}" in text
    saved = ValuationResult.load(tmp_path / "a" / f"ame_test_{test_id}")
    assert saved.params["n_subsets"] == 600 and "selected" in saved.extra


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["ame", "--explain", "test:nope"], "not in the test split"),
        (["ame", "--explain", "rows"], "Unknown AME target"),
        (["ame", "--fdr", "2"], "--fdr"),
        (["ame", "--subsets", "1"], "at least 2 subsets"),
    ],
)
def test_bad_ame_input(args, fragment):
    _one_line_error(_invoke(*args, *SMALL), fragment)


@pytest.mark.parametrize(
    ("command", "stem", "extra"),
    [
        ("knn-shapley", "knn_shapley", ["--neighbours", "5"]),
        ("data-oob", "data_oob", ["--estimators", "30"]),
        ("influence", "influence", []),
        ("beta-shapley", "beta_shapley", ["--subsets", "300"]),
    ],
)
def test_method_commands_write_their_values(tmp_path, command, stem, extra):
    result = _invoke(command, *SMALL, *extra, "--out", "m")
    assert result.exit_code == 0, result.output
    assert f"{stem}: highest and lowest values (100 points)" in " ".join(result.output.split())
    saved = ValuationResult.load(tmp_path / "m" / stem)
    assert len(saved) == 100 and np.isfinite(saved.values).all()
    assert (tmp_path / "m" / "figures" / f"{stem}.png").exists()


def test_influence_rejects_accuracy_with_one_line():
    _one_line_error(_invoke("influence", *SMALL, "--metric", "accuracy"), "--metric neg_log_loss")


def test_study_with_an_impossible_budget_fails_cleanly(tmp_path):
    result = _invoke("study", *SMALL, "--budget", "1ms", "--out", "b")
    # The budget proves too small only once the baseline and the fits are timed, so progress
    # lines (the output is not a terminal) may come first; the error itself is one line.
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert lines[-1].startswith("error: ") and "too small even for the baseline" in lines[-1]
    assert "raise --budget to at least" in lines[-1]
    assert all(line.startswith("[") for line in lines[:-1]), lines
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()
