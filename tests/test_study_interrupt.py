"""A stopped study leaves its log and finished files, and a rerun refits nothing stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataworth.study import Step, run_study, steps_named
from dataworth.study.config import StudyConfig


def _stop(ctx) -> None:
    raise KeyboardInterrupt


def test_an_interrupted_study_keeps_a_partial_folder_and_resumes_without_refitting(tmp_path):
    config = StudyConfig(rows=200, train_size=100, out=str(tmp_path / "run"), permutations=3)
    first = [*steps_named("data", "loo", "groups"), Step("stop", _stop, "Ctrl-C")]
    with pytest.raises(KeyboardInterrupt) as stopped:
        run_study(config, steps=first)
    partial = tmp_path / "run.partial"
    assert stopped.value.partial_path == partial
    assert not (tmp_path / "run").exists()
    assert {"study.log", "loo.parquet", "groups.parquet", "data.json"} <= {
        p.name for p in partial.iterdir()
    }
    assert not (partial / "manifest.json").exists()  # never mistaken for a finished run
    log = (partial / "study.log").read_text()
    assert "step groups finished" in log
    assert "study stopped during step stop: interrupted by the user (Ctrl-C)" in log
    assert "finished steps: data" in log and "run the same command again" in log

    again = run_study(config, steps=steps_named("data", "loo", "groups", "tmc"))
    results = again.context.results
    # Everything the stopped run fitted came from the evaluation store.
    assert results["loo"].n_fitted == 0 and results["lgo"].n_fitted == 0
    assert results["tmc"].n_fitted > 0  # only what had not been fitted before
    assert again.path == tmp_path / "run" and not partial.exists()
    assert "study finished" in (again.path / "study.log").read_text()


def test_sigterm_keeps_the_partial_folder_and_says_so_in_one_line(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    command = [sys.executable, "-m", "dataworth.cli", "study", "--rows", "200"]
    command += ["--train-size", "100", "--baselines", "logreg", "--out", str(out)]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # Wait (generously: the machine may be busy) until the study is valuing, then stop it.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        logs = list(tmp_path.glob(".run.partial-*/study.log"))
        if logs and "step loo finished" in logs[0].read_text():
            break
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert last.startswith("error: stopped, terminated by SIGTERM") and "run.partial" in last
    assert "Traceback" not in stderr
    log = (tmp_path / "run.partial" / "study.log").read_text()
    assert "study stopped during step" in log and "SIGTERM" in log
    assert (tmp_path / "run.partial" / "loo.parquet").exists()


def test_a_sigterm_whose_exception_was_lost_still_stops_at_the_next_check():
    from dataworth.study.log import StudyStopped, stop_on_sigterm

    with stop_on_sigterm() as stop:
        stop.check()  # nothing received yet
        try:
            # Where the signal lands inside a weak reference's finaliser, Python prints the
            # handler's exception and drops it; swallowing it here stands in for that.
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        except StudyStopped:
            pass
        with pytest.raises(StudyStopped, match="SIGTERM"):
            stop.check()


def test_a_lost_stop_is_not_printed_and_other_lost_exceptions_still_are(monkeypatch):
    # Python hands an exception raised in a finaliser to sys.unraisablehook, which prints it
    # with a traceback; a stop raised there (SIGTERM landing in a weakref callback) is handled
    # by the check between steps, so the study keeps it quiet, and only it.
    import gc
    import sys

    from dataworth.study.log import SigtermStop, StudyStopped, stop_on_sigterm

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: seen.append(unraisable))

    class Raises:
        def __init__(self, error):
            self.error = error

        def __del__(self):
            raise self.error

    with stop_on_sigterm():
        Raises(StudyStopped(SigtermStop.REASON))
        Raises(ValueError("a real bug"))
        gc.collect()
    assert [type(u.exc_value) for u in seen] == [ValueError]
    # Outside the block the previous hook is back and sees every exception again.
    Raises(StudyStopped(SigtermStop.REASON))
    gc.collect()
    assert [type(u.exc_value) for u in seen] == [ValueError, StudyStopped]
