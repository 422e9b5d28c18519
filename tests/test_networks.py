"""The networks chosen by name: ``--model mlp|cnn`` in the commands and the study, ``--device``.

The refusal without PyTorch runs everywhere; the rest is skipped where torch is not installed
(CI's second step runs this file with ``torch==2.13.0``). Every fit is a real fit of a small
network on a few digits.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dataworth.cli import app
from dataworth.errors import DataworthError

runner = CliRunner()
# A few digits and few subsets: each network trains in a fraction of a second.
SMALL = ("--dataset", "digits", "--rows", "120", "--train-size", "80", "--seed", "3")


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_a_network_without_torch_is_refused_in_one_line(monkeypatch, model) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    result = _invoke("loo", *SMALL, "--model", model)
    assert result.exit_code == 2, result.output
    assert 'pip install -e ".[torch]"' in result.output
    assert "pip install torch==2.13.0" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unknown_device_is_refused() -> None:
    result = _invoke("loo", *SMALL, "--device", "tpu")
    assert result.exit_code == 2
    assert "use auto, cpu or cuda" in result.output


torch = pytest.importorskip("torch")

from dataworth.data.load import load_dataset  # noqa: E402  (after the importorskip)
from dataworth.engine.utility import Utility  # noqa: E402
from dataworth.learners import make_estimator, make_learner  # noqa: E402
from dataworth.learners.torch.networks import NetworkClassifier, torch_device  # noqa: E402
from dataworth.study import run_study, steps_named  # noqa: E402
from dataworth.study.config import StudyConfig  # noqa: E402


@pytest.fixture(scope="module")
def task():
    return load_dataset("digits", rows=120, train_size=80, seed=3)


def test_the_baseline_network_is_valuations_full_data_model(task) -> None:
    # The baseline table's network and the engine's model of the full training set are one
    # network: same seed, same minibatches, same steps.
    fitted = make_estimator("cnn", seed=5, device="cpu").fit(task.X_train, task.y_train)
    assert isinstance(fitted, NetworkClassifier)
    engine = make_learner("cnn", seed=5, device="cpu")
    full = engine.predict_proba_batch(task, np.ones((1, task.n_train), bool))[0]
    np.testing.assert_allclose(fitted.predict_proba(task.X_test), full, atol=1e-6)
    assert (fitted.predict(task.X_test) == full.argmax(axis=1)).all()
    # Ten classes: chance is 0.1; 80 digits and 200 steps give far more.
    assert (fitted.predict(task.X_test) == task.y_test).mean() > 0.5


def test_submodels_take_the_same_steps_whatever_their_size(task) -> None:
    learner = make_learner("mlp", seed=0)
    from dataworth.learners.torch.learner import _minibatch_rows

    small = np.zeros(task.n_train, bool)
    small[:12] = True
    for mask in (small, np.ones(task.n_train, bool)):
        rows = _minibatch_rows(mask, 1, learner.steps, learner.batch_size)
        assert rows.shape == (learner.steps, learner.batch_size)
        assert set(rows.ravel()) <= set(np.flatnonzero(mask))


def test_auto_device_is_cuda_only_when_there_is_one() -> None:
    assert torch_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert torch_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(DataworthError, match="no CUDA device"):
            torch_device("cuda")


def test_ame_of_a_cnn_from_the_cli_is_the_same_on_a_rerun(task, tmp_path) -> None:
    values = []
    for run in ("a", "b"):
        out = tmp_path / run
        result = _invoke(
            "ame", *SMALL, "--model", "cnn", "--device", "cpu", "--subsets", "40",
            "--explain", f"test:{task.test_ids[0]}", "--out", str(out),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        frames = [pd.read_csv(p) for p in sorted(out.glob("ame*.csv")) if "value" in p.read_text()]
        assert frames, sorted(p.name for p in out.iterdir())
        values.append(np.concatenate([f["value"].to_numpy() for f in frames]))
    np.testing.assert_array_equal(values[0], values[1])
    assert np.abs(values[0]).sum() > 0  # 40 subsets of a network's outputs are not all zero


def test_loo_of_an_mlp_uses_the_network(task) -> None:
    with Utility(task, learner="mlp", metric="accuracy", seed=1) as u:
        assert u.learner.name == "torch"
        assert "MLP" in u.learner.fingerprint()
        scores = u.evaluate(np.ones((2, task.n_train), bool)).scores
    assert scores[0] == scores[1] > 0.5


def test_a_study_with_a_network_skips_influence_and_says_why(tmp_path) -> None:
    config = StudyConfig(
        dataset="digits", rows=120, train_size=80, seed=3, model="mlp", baselines=["logreg"],
        budget_seconds=600, ame_rows=0, oob_estimators=20,
    )  # fmt: skip
    names = ("data", "baseline", "cost", "budget", "loo", "methods", "summary")
    ctx = run_study(config, steps=steps_named(*names), root=tmp_path / "runs").context
    metrics = ctx.results["baseline"].metrics
    assert list(metrics.index) == ["mlp", "logreg"]
    assert metrics.loc["mlp", "accuracy"] > 0.5  # chance is 0.1
    budget = ctx.results["budget"]
    influence = budget.methods["influence"]
    assert not influence.run and "--model logreg" in influence.note
    assert "influence" not in ctx.results.get("methods", {})
    cost = ctx.results["cost"]
    # The network's fits were timed on the network; AME's LASSO on the logistic regression's.
    assert cost.paths["ame_estimation"]["estimation_fits"] == "logreg"
    assert cost.utility["learner"] == "mlp"
    # 16 network fits side by side time the one-out batch and AME's fits (not 64).
    assert cost.paths["ame_estimation"]["fit_subsets"] == 16
    assert cost.paths["loo_one_out"]["subsets"] == 16
    loo = ctx.results["loo"]
    assert len(loo.values) == 10 and np.isfinite(loo.values).all()


def test_ame_of_a_cnn_explains_a_prediction_on_a_folder_of_pngs(tmp_path) -> None:
    from image_folder import make_folder

    folder = make_folder(tmp_path / "shapes", per_class=12)
    shown = load_dataset(images=folder, image_size=8, seed=0).test_ids[3]
    result = _invoke(
        "ame", "--images", str(folder), "--image-size", "8", "--model", "cnn",
        "--explain", f"test:{shown}", "--subsets", "20", "--seed", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # The explained prediction's most valuable training images are named by their files.
    assert any(f"{shape}/" in result.output for shape in ("circle", "cross", "square"))
