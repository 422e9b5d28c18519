"""``dataworth clean``: the run folder's files, row by row, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from typer.testing import CliRunner

from dataworth.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _csv(tmp_path, n: int = 300, flip: float = 0.2):
    X, y = make_classification(
        n_samples=n, n_features=5, n_informative=4, n_redundant=0, class_sep=2.0, random_state=0
    )
    rng = np.random.default_rng(0)
    flipped = rng.random(n) < flip
    labels = np.where(np.where(flipped, 1 - y, y) == 1, "yes", "no")
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(5)])
    frame.insert(0, "customer", [f"c{1000 + i}" for i in range(n)])
    frame["note"] = "kept"  # a text column the model never sees, carried into cleaned.csv
    frame["label"] = labels
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    return path, frame, flipped


def _one_line_error(result, fragment: str) -> None:
    # The data checks' warning lines may come first, as in every command that loads data.
    lines = [line for line in result.output.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("warning: ")]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines


def test_clean_writes_one_flag_per_input_row_and_the_kept_rows(tmp_path):
    path, frame, flipped = _csv(tmp_path)
    args = ["clean", "--csv", str(path), "--target", "label", "--drop", "customer", "--seed", "1"]
    result = runner.invoke(app, [*args, "--out", "run", "--max-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    assert "Clean:" in result.output
    folder = tmp_path / "run"
    flags = pd.read_csv(folder / "flags.csv")
    # One line per input row, in input order, with the id column the user dropped.
    assert flags["row"].tolist() == list(range(len(frame)))
    assert list(flags.columns) == [
        "row", "customer", "label", "suggested_label", "score", "flagged", "reasons"
    ]  # fmt: skip
    assert (flags["customer"] == frame["customer"]).all()
    assert (flags["label"] == frame["label"]).all()
    info = json.loads((folder / "clean.json").read_text())
    for key in (
        "before",
        "after",
        "gain",
        "random_gain",
        "decided_by",
        "methods",
        "seeds",
        "timings",
    ):
        assert key in info
    assert info["n_flagged"] == int(flags["flagged"].sum()) <= 0.25 * len(frame)
    assert info["flagged_rows"] == flags.index[flags["flagged"]].tolist()
    cleaned = pd.read_csv(folder / "cleaned.csv")
    kept = frame[~flags["flagged"].to_numpy()].reset_index(drop=True)
    pd.testing.assert_frame_equal(cleaned, kept)
    # The most suspect rows are the flipped ones.
    top = flags.sort_values("score", ascending=False).head(20)["row"]
    assert flipped[top].mean() > 0.8
    report = (folder / "report.md").read_text()
    assert "Acting on the values: cleaning" in report and "clean_curves" in report
    assert (folder / "figures" / "clean_curves.png").exists()


def test_relabel_keeps_every_row_and_writes_the_suggested_labels(tmp_path):
    path, frame, _ = _csv(tmp_path, n=200)
    args = ["clean", "--csv", str(path), "--target", "label", "--drop", "customer"]
    args += ["--action", "relabel"]
    result = runner.invoke(app, [*args, "--repeats", "2", "--out", "run"])
    assert result.exit_code == 0, result.output
    flags = pd.read_csv(tmp_path / "run" / "flags.csv")
    cleaned = pd.read_csv(tmp_path / "run" / "cleaned.csv")
    assert len(cleaned) == len(frame)
    expected = np.where(flags["flagged"], flags["suggested_label"], frame["label"])
    assert (cleaned["label"] == expected).all()


def test_a_class_too_rare_to_hold_out_is_one_line_and_exit_2(tmp_path):
    path, frame, _ = _csv(tmp_path, n=80)
    frame.loc[[0, 1], "label"] = "maybe"  # one row of it in training, one in test
    frame.to_csv(path, index=False)
    args = ["clean", "--csv", str(path), "--target", "label", "--drop", "customer"]
    _one_line_error(runner.invoke(app, args), "too few to hold any out")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--action", "drop"], "--action"),
        (["--max-fraction", "1.5"], "--max-fraction"),
        (["--repeats", "1"], "--repeats"),
        (["--budget", "1s"], "too small for cleaning"),
    ],
)
def test_bad_clean_options_are_one_line(args, fragment):
    _one_line_error(runner.invoke(app, ["clean", *args]), fragment)


def test_the_study_ends_with_the_clean_step_on_its_training_rows(tmp_path):
    small = ["--rows", "150", "--train-size", "100", "--baselines", "logreg,knn"]
    result = runner.invoke(app, ["study", *small, "--out", "run"])
    assert result.exit_code == 0, result.output
    assert "Clean:" in result.output
    folder = tmp_path / "run"
    info = json.loads((folder / "clean.json").read_text())
    assert info["rows"] == "train" and info["n_rows"] == 100
    train_ids = pd.read_csv(folder / "train_ids.csv")["id"]
    flags = pd.read_csv(folder / "flags.csv")
    assert flags["row"].tolist() == train_ids.tolist()
    assert not (folder / "cleaned.csv").exists()  # only the command writes the kept rows
    budget = json.loads((folder / "budget.json").read_text())
    assert "clean" in budget["step_seconds"]


def _stop(ctx) -> None:
    raise KeyboardInterrupt


def test_a_clean_run_stopped_after_its_step_keeps_a_partial_folder_with_its_files(tmp_path):
    from dataclasses import replace

    from dataworth.study import Step, run_study, steps_named
    from dataworth.study.config import StudyConfig

    config = StudyConfig(rows=150, out=str(tmp_path / "run"))
    config = replace(config, extra={"clean": {"rows": "all", "repeats": 2}})
    steps = [*steps_named("data", "clean"), Step("stop", _stop, "Ctrl-C")]
    with pytest.raises(KeyboardInterrupt) as stopped:
        run_study(config, steps=steps)
    partial = tmp_path / "run.partial"
    assert stopped.value.partial_path == partial and not (tmp_path / "run").exists()
    files = {p.name for p in partial.iterdir()}
    assert {"study.log", "data.json", "flags.csv", "cleaned.csv", "clean.json"} <= files
    assert len(pd.read_csv(partial / "flags.csv")) == 150
    assert "step clean finished" in (partial / "study.log").read_text()
