"""Data checks on the command line: one warning line per problem, --drop, --strict (exit 2 with
one line), the findings in data.json and the report, and both options in study.toml."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from dataworth.cli import app
from dataworth.study.config import StudyConfig

runner = CliRunner()
FAST = ["--baselines", "logreg,knn"]
N = 200


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def leaky_csv(tmp_path):
    """A clean table plus a column that restates the label, written with pandas' index."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=N), rng.normal(size=N)
    frame = pd.DataFrame({"x1": x1, "x2": x2})
    frame["y"] = np.where(x1 + 0.5 * x2 + rng.normal(scale=0.8, size=N) > 0, "pos", "neg")
    frame["score"] = (frame["y"] == "pos") * 10.0 + rng.uniform(size=N)
    path = tmp_path / "leaky.csv"
    frame.to_csv(path)  # the index becomes the column "Unnamed: 0"
    return path


def _lines(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


def test_each_problem_is_one_warning_line(leaky_csv):
    result = runner.invoke(app, ["baseline", "--csv", str(leaky_csv), "--target", "y", *FAST])
    assert result.exit_code == 0, result.output
    warnings = _lines(result.output, "warning: ")
    assert len(warnings) == 3, result.output
    assert "Column 'Unnamed: 0' looks like a row identifier" in warnings[0]
    assert "Column 'score' alone predicts the label 'y'" in warnings[1]
    assert "--drop score" in warnings[1]
    # The baseline step adds the symptom: every model perfect on the test rows.
    assert "Every baseline model (logreg, knn)" in warnings[2]
    assert "Baseline models on the test set" in result.output  # warnings do not stop the run


def test_drop_silences_them_and_is_saved_in_study_toml(leaky_csv, tmp_path):
    args = ["baseline", "--csv", str(leaky_csv), "--target", "y", *FAST, "--strict"]
    result = runner.invoke(app, [*args, "--drop", "score,Unnamed: 0", "--out", "run"])
    assert result.exit_code == 0, result.output
    assert _lines(result.output, "warning: ") == []
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["checks"] == [] and data["dropped"] == ["score", "Unnamed: 0"]
    assert "## Data checks\n\n- No problems found." in (tmp_path / "run" / "summary.md").read_text()
    assert data["feature_names"] == ["x1", "x2"]
    config = StudyConfig.from_toml(tmp_path / "run" / "study.toml")
    assert config.drop == ["score", "Unnamed: 0"] and config.strict is True


def test_findings_are_in_data_json(leaky_csv, tmp_path):
    args = ["baseline", "--csv", str(leaky_csv), "--target", "y", *FAST, "--out", "run"]
    assert runner.invoke(app, args).exit_code == 0
    checks = json.loads((tmp_path / "run" / "data.json").read_text())["checks"]
    assert [c["check"] for c in checks] == ["perfect_baseline", "identifier", "label_leakage"]
    assert all(c["severity"] == "warning" and c["meaning"] for c in checks)
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "- warning: Column 'score' alone predicts the label 'y'" in summary


def test_report_opens_with_the_data_checks(leaky_csv, tmp_path):
    args = ["baseline", "--csv", str(leaky_csv), "--target", "y", *FAST, "--out", "run"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["report", "run"])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "run" / "report.md").read_text()
    sections = re.findall(r"^## \d+\. (.+)$", md, flags=re.MULTILINE)
    assert sections[0] == "Data checks"
    checks = md.split("## 1. Data checks")[1].split("\n## ")[0]
    assert "3 problem(s) that may make the values below wrong" in checks
    assert "Column 'score' alone predicts the label 'y'" in checks
    assert "right for a trivial reason" in checks  # what it means for the values
    # A clean run says so.
    clean = ["baseline", "--csv", str(leaky_csv), "--target", "y", *FAST, "--out", "clean"]
    assert runner.invoke(app, [*clean, "--drop", "score,Unnamed: 0"]).exit_code == 0
    assert runner.invoke(app, ["report", "clean"]).exit_code == 0
    assert "No problems found" in (tmp_path / "clean" / "report.md").read_text()


def _assert_one_line_error(result, *fragments: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("command", ["baseline", "study", "loo", "evaluate"])
def test_strict_exits_2_with_one_line(leaky_csv, tmp_path, command):
    result = runner.invoke(app, [command, "--csv", str(leaky_csv), "--target", "y", "--strict"])
    _assert_one_line_error(result, "Strict mode", "2 problem(s)", "--drop")
    assert not (tmp_path / "runs").exists()


def test_strict_stops_at_a_perfect_baseline(tmp_path):
    """Two classes far apart along a diagonal: no column alone predicts the label, yet every
    model is perfect; strict mode stops at the baseline step and leaves no run folder."""
    rng = np.random.default_rng(1)
    x1 = rng.uniform(-10, 10, size=N)
    margin = rng.choice([-1.0, 1.0], size=N) * (3 + rng.uniform(size=N))
    frame = pd.DataFrame({"x1": x1, "x2": -x1 + margin, "y": np.where(margin > 0, "a", "b")})
    frame.to_csv(tmp_path / "easy.csv", index=False)
    args = ["baseline", "--csv", "easy.csv", "--target", "y", *FAST, "--out", "run"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (warning,) = _lines(result.output, "warning: ")
    assert "Every baseline model (logreg, knn) classifies all 60 test rows correctly" in warning
    result = runner.invoke(app, [*args, "--overwrite", "--strict"])
    _assert_one_line_error(result, "Strict mode", "Every baseline model")
    assert (tmp_path / "run").exists()  # the earlier run folder is left as it was


def test_unknown_drop_column_is_one_line(leaky_csv):
    args = ["plan", "--csv", str(leaky_csv), "--target", "y", "--drop", "scor"]
    _assert_one_line_error(runner.invoke(app, args), "'scor'", "did you mean 'score'")


def test_every_command_with_data_options_has_drop_and_strict():
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        if "--target" in options:
            assert {"--drop", "--strict"} <= options, name


def test_config_keeps_drop_and_strict_through_toml(tmp_path):
    config = StudyConfig(drop="id, name", strict=True)
    assert config.drop == ["id", "name"]
    path = tmp_path / "study.toml"
    config.to_toml(path)
    again = StudyConfig.from_toml(path)
    assert again.drop == ["id", "name"] and again.strict is True
    assert "[data]" in path.read_text() and 'drop = ["id", "name"]' in path.read_text()
