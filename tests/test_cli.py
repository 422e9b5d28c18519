"""The command line: tables on success; one red line and exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from dataworth.cli import app

runner = CliRunner()
FAST = ["--baselines", "logreg,knn"]  # keeps most tests to the quick models


def _invoke(*args: str):
    return runner.invoke(app, list(args))


def _assert_one_line_error(result, *fragments: str) -> None:
    output = result.output
    lines = [line for line in output.splitlines() if line.strip()]
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # Default run folders go to ./runs: keep them out of the checkout.
    monkeypatch.chdir(tmp_path)


def test_datasets_lists_the_builtin_datasets():
    result = _invoke("datasets")
    assert result.exit_code == 0, result.output
    assert "breast_cancer" in result.output


@pytest.mark.parametrize(
    "command",
    [
        "datasets",
        "baseline",
        "plan",
        "study",
        "loo",
        "groups",
        "tmc",
        "ame",
        "report",
        "knn-shapley",
        "beta-shapley",
        "data-oob",
        "influence",
        "evaluate",
        "clean",
    ],
)
def test_every_command_has_help(command):
    result = _invoke(command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_baseline_shows_metrics_and_writes_nothing_without_out(tmp_path):
    result = _invoke("baseline", *FAST)
    assert result.exit_code == 0, result.output
    for text in ("logreg", "knn", "Confusion matrix", "Primary metric: neg_log_loss", "n_test"):
        assert text in result.output
    assert not (tmp_path / "runs").exists()


def test_plan_shows_refit_counts():
    result = _invoke("plan", "--rows", "200", *FAST)
    assert result.exit_code == 0, result.output
    assert "LOO (all points)" in result.output and "TMC-Shapley" in result.output


def test_study_on_the_default_dataset_writes_the_run_folder(tmp_path):
    result = _invoke("study")
    assert result.exit_code == 0, result.output
    # Beside the run folder: only the evaluation cache that lets a rerun resume.
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.name != ".cache"]
    assert (tmp_path / "runs" / ".cache" / "evaluations.sqlite").exists()
    assert run.name.startswith("breast_cancer-")
    expected = {
        "study.toml",
        "manifest.json",
        "summary.md",
        "data.json",
        "train_ids.csv",
        "test_ids.csv",
        "baseline.json",
        "baseline_metrics.csv",
        "confusion_matrix.csv",
        "curves.csv",
        "cost.json",
        "fit_times.csv",
        "plan.csv",
        "loo.parquet",
        "loo_table.csv",
        "groups.parquet",
        "groups_table.csv",
        "shapley_points.parquet",
        "shapley_groups.parquet",
        "shapley_vs_loo.json",
    }
    assert expected <= {p.name for p in run.iterdir()}
    figures = {p.name for p in (run / "figures").iterdir()}
    for stem in (
        "confusion_matrix",
        "roc_curve",
        "pr_curve",
        "fit_time",
        "loo",
        "group_size",
        "shapley_distribution",
        "shapley_groups",
        "shapley_vs_loo",
    ):
        assert {f"{stem}.png", f"{stem}.svg"} <= figures
    metrics = pd.read_csv(run / "baseline_metrics.csv", index_col="model")
    assert {"logreg", "random_forest", "knn", "hist_gb"} <= set(metrics.index)
    baseline = json.loads((run / "baseline.json").read_text())
    assert baseline["primary_metric"]["name"] == "neg_log_loss"
    hidden = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]
    assert [p.name for p in hidden] == [".cache"]  # no partial run folder left behind


def test_study_config_reproduces_the_run(tmp_path):
    first = _invoke("study", "--rows", "200", "--seed", "3", *FAST, "--out", "one")
    assert first.exit_code == 0, first.output
    again = _invoke("study", "--config", "one/study.toml", "--out", "two")
    assert again.exit_code == 0, again.output
    drop = ["fit_seconds", "n_timed", "predict_seconds"]
    a = pd.read_csv(tmp_path / "one" / "baseline_metrics.csv", index_col="model").drop(columns=drop)
    b = pd.read_csv(tmp_path / "two" / "baseline_metrics.csv", index_col="model").drop(columns=drop)
    pd.testing.assert_frame_equal(a, b)
    ids = [pd.read_csv(tmp_path / d / "train_ids.csv") for d in ("one", "two")]
    pd.testing.assert_frame_equal(*ids)


def test_existing_out_folder_is_refused_then_overwritten(tmp_path):
    (tmp_path / "taken").mkdir()
    _assert_one_line_error(_invoke("baseline", *FAST, "--out", "taken"), "--overwrite")
    result = _invoke("baseline", *FAST, "--rows", "150", "--out", "taken", "--overwrite")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "taken" / "baseline.json").exists()


@pytest.fixture
def small_csv(tmp_path):
    path = tmp_path / "small.csv"
    frame = pd.DataFrame({"a": range(40), "b": [i % 7 for i in range(40)], "label": [0, 1] * 20})
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["baseline", "--csv", "no_such_file.csv", "--target", "y"], ["no_such_file.csv"]),
        (["baseline", "--model", "logregg"], ["logregg"]),
        (["plan", "--metric", "acuracy"], ["acuracy"]),
        (["study", "--baselines", "logreg,forest"], ["forest"]),
        (["baseline", "--dataset", "breast_cancr"], ["breast_cancr"]),
        (["baseline", "--train-size", "lots"], ["lots"]),
        (["study", "--config", "missing.toml"], ["missing.toml"]),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, fragments):
    _assert_one_line_error(_invoke(*args), *fragments)
    assert not (tmp_path / "runs").exists()


def test_misspelled_target_column(small_csv, tmp_path):
    result = _invoke("study", "--csv", str(small_csv), "--target", "lable", *FAST)
    _assert_one_line_error(result, "lable")
    assert not (tmp_path / "runs").exists()


def test_user_csv_runs(small_csv):
    result = _invoke("baseline", "--csv", str(small_csv), "--target", "label", *FAST)
    assert result.exit_code == 0, result.output


def test_console_script_entry_point_reports_errors_without_traceback():
    code = "from dataworth.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "baseline", "--metric", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope" in lines[0]


def test_plan_with_a_tiny_budget_marks_methods_infeasible(tmp_path):
    result = _invoke("plan", "--rows", "200", *FAST, "--budget", "0.000001", "--out", "p")
    assert result.exit_code == 0, result.output
    plan = pd.read_csv(tmp_path / "p" / "plan.csv")
    assert not plan["feasible"].any()
    assert "budget 1e-06 s" in result.output


def test_progress_appears_as_lines_when_output_is_not_a_terminal(monkeypatch):
    from dataworth.study import progress_lines

    monkeypatch.setattr(progress_lines, "QUIET", 0.0)  # show lines from the first second
    result = _invoke("loo", "--rows", "150", "--train-size", "100")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "step data: load and split the data" in lines[0] and lines[0].startswith("[")
    assert any(line.endswith("leave-one-out: 10/10") for line in lines), lines
    assert any("loo: 10 of 100 rows in" in line for line in lines), lines


def test_progress_lines_are_rate_limited_and_flushed():
    import io

    from dataworth.study.progress_lines import ProgressLines

    stream = io.StringIO()
    with ProgressLines(stream, every=3600, gap=0, quiet=0) as lines:
        for done in range(1, 101):
            lines("TMC-Shapley, points", done, 100)  # the same work: first and last line only
        lines.log("tmc: all 100 players")
        lines("AME, metric", 0, 10)  # new work: a line at once
    shown = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in shown] == [
        "TMC-Shapley, points: 1/100",
        "TMC-Shapley, points: 100/100",
        "tmc: all 100 players",
        "AME, metric: 0/10",
    ]


def test_progress_lines_say_what_is_still_running_after_a_silence():
    import io
    import time

    from dataworth.study.context import Step
    from dataworth.study.progress_lines import ProgressLines

    stream = io.StringIO()
    with ProgressLines(stream, quiet=0, heartbeat=0.2) as lines:
        lines.on_step(Step("stable_tmc", lambda ctx: None, "TMC until stable"))
        lines("TMC-Shapley until stable", 10, 200)
        time.sleep(1.0)  # a long batch that reports nothing
    shown = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert shown[:2] == ["step stable_tmc: TMC until stable", "TMC-Shapley until stable: 10/200"]
    beats = shown[2:]
    assert beats and set(beats) == {
        "still working on step stable_tmc; last: TMC-Shapley until stable: 10/200"
    }


def test_progress_lines_hold_back_the_first_seconds():
    import io

    from dataworth.study.progress_lines import ProgressLines

    stream = io.StringIO()
    with ProgressLines(stream, quiet=3600) as lines:
        lines.log("step data: load and split the data")
    # A run that ends (or fails on bad input) within the quiet time prints nothing.
    assert stream.getvalue() == ""
