"""Run folders appear whole or not at all; study.toml round-trips the configuration."""

from __future__ import annotations

import json
import tomllib
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from dataworth import DataworthError
from dataworth.study import Step, run_study, steps_named
from dataworth.study.config import StudyConfig, dumps_toml, parse_train_size
from dataworth.study.runfolder import RunFolder, default_run_path, to_jsonable


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_commit_renames_the_temporary_folder(tmp_path):
    target = tmp_path / "runs" / "demo"
    with RunFolder(target) as run:
        run.write_json("a.json", {"x": np.float64(1.5), "y": np.arange(3), "z": float("nan")})
        run.write_csv("t.csv", pd.DataFrame({"v": [1, 2]}), index=False)
        assert not target.exists()  # nothing visible until the end
    assert json.loads((target / "a.json").read_text()) == {"x": 1.5, "y": [0, 1, 2], "z": None}
    assert (target / "t.csv").read_text().splitlines() == ["v", "1", "2"]
    assert _leftovers(target.parent) == []


def test_an_error_leaves_no_folder(tmp_path):
    target = tmp_path / "demo"
    with pytest.raises(RuntimeError), RunFolder(target) as run:
        run.write_text("half.txt", "half")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_refused_unless_overwrite(tmp_path):
    target = tmp_path / "demo"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(DataworthError, match="--overwrite"):
        RunFolder(target)
    with RunFolder(target, overwrite=True) as run:
        run.write_text("new.txt", "new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert _leftovers(tmp_path) == []


def test_default_names_never_collide(tmp_path):
    now = datetime(2026, 1, 2, 3, 4, 5)
    first = default_run_path("breast cancer", tmp_path, now)
    assert first.name == "breast_cancer-20260102-030405"
    first.mkdir()
    assert default_run_path("breast cancer", tmp_path, now).name.endswith("-2")


def test_a_failing_study_step_leaves_no_run_folder(tmp_path):
    def explode(ctx):
        ctx.write_text("partial.txt", "written before the failure")
        raise DataworthError("step failed")

    config = StudyConfig(rows=120, out=str(tmp_path / "run"))
    steps = [*steps_named("data"), Step("explode", explode)]
    with pytest.raises(DataworthError, match="step failed"):
        run_study(config, steps=steps)
    assert list(tmp_path.iterdir()) == []


def test_a_study_writes_its_config_and_manifest(tmp_path):
    config = StudyConfig(rows=120, out=str(tmp_path / "run"))
    outcome = run_study(config, steps=steps_named("data"))
    assert outcome.path == tmp_path / "run"
    assert StudyConfig.from_toml(outcome.path / "study.toml") == config
    manifest = json.loads((outcome.path / "manifest.json").read_text())
    assert manifest["task_fingerprint"] == outcome.context.task.fingerprint
    assert "data.json" in manifest["files"] and "study.toml" in manifest["files"]
    ids = pd.read_csv(outcome.path / "train_ids.csv")
    assert len(ids) == outcome.context.task.n_train


def test_config_roundtrips_through_toml(tmp_path):
    csv = tmp_path / 'odd "name" \\ file.csv'
    config = StudyConfig(
        csv=str(csv),
        target="label",
        rows=500,
        train_size=400,
        split="group:hospital",
        flip=0.1,
        model="knn",
        metric="balanced_accuracy",
        baselines=["logreg", "knn"],
        seed=7,
        budget_seconds=30.5,
        out=str(tmp_path / "out"),
        overwrite=True,
        extra={"loo": {"points": [1, 2, 3]}},
    )
    path = tmp_path / "study.toml"
    config.to_toml(path)
    assert StudyConfig.from_toml(path) == config
    defaults = tmp_path / "defaults.toml"
    StudyConfig().to_toml(defaults)
    assert StudyConfig.from_toml(defaults) == StudyConfig()


def test_relative_paths_in_a_config_are_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "study.toml"
    path.write_text('[data]\ncsv = "data.csv"\ntarget = "y"\n')
    assert StudyConfig.from_toml(path).csv == str(tmp_path / "sub" / "data.csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[data]\ndatset = 'x'\n", "unknown option 'datset'"),
        ("[data\n", "not valid TOML"),
        ("[data]\ntrain_size = 0\n", "train_size"),
        ("seed = 3\n", "must be a table"),
    ],
)
def test_bad_config_files_raise_one_line_errors(tmp_path, text, message):
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(DataworthError, match=message) as info:
        StudyConfig.from_toml(path)
    assert "\n" not in str(info.value)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataworthError, match="does not exist"):
        StudyConfig.from_toml(tmp_path / "nope.toml")


def test_toml_writer_output_is_read_back_by_tomllib():
    data = {
        "top": 1,
        "t": {"s": 'a"b\\c\nd\x01', "f": 0.1, "i": -3, "b": False, "l": ["x", 2.5], "n": None},
        "inf": {"x": float("inf")},
    }
    back = tomllib.loads(dumps_toml(data))
    expected = {"top": 1, "t": {k: v for k, v in data["t"].items() if v is not None}}
    expected["inf"] = {"x": float("inf")}
    assert back == expected


def test_parse_train_size():
    assert parse_train_size("0.7") == 0.7
    assert parse_train_size("400") == 400 and isinstance(parse_train_size("400"), int)
    assert parse_train_size(400.0) == 400
    for bad in ("0", "-1", "1.5", "many", True):
        with pytest.raises(DataworthError):
            parse_train_size(bad)


def test_to_jsonable_handles_frames_and_numpy():
    frame = pd.DataFrame({"a": [1.0, np.nan]}, index=pd.Index(["x", "y"], name="k"))
    assert to_jsonable(frame) == [{"k": "x", "a": 1.0}, {"k": "y", "a": None}]
    assert to_jsonable({"b": np.bool_(True), 1: np.int64(2)}) == {"b": True, "1": 2}
