"""The linear datamodeling score: its arithmetic against SciPy, planted datamodels, real fits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

import dataworth as dw
from dataworth.cli import app
from dataworth.errors import DataworthError
from dataworth.evaluate.lds import (
    ground_truth,
    lds,
    lds_per_example,
    lds_subsets,
    mean_interval,
    score_attributions,
)

RECORD_KEYS = {"method", "models", "lds", "ci_low", "ci_high"}


def test_subsets_are_exact_halves_and_extend_with_more_models():
    masks = lds_subsets(41, 30, seed=3)
    assert masks.shape == (30, 41)
    assert (masks.sum(axis=1) == 20).all()
    assert np.array_equal(lds_subsets(41, 10, seed=3), masks[:10])
    assert not np.array_equal(lds_subsets(41, 10, seed=4), masks[:10])
    assert len({m.tobytes() for m in masks}) == 30
    with pytest.raises(DataworthError, match="at least 2"):
        lds_subsets(41, 1)


def test_per_example_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    masks = lds_subsets(30, 25, seed=0)
    # Integer attributions and outputs: sums and outputs tie, as Spearman must handle.
    attributions = rng.integers(-2, 3, size=(6, 30)).astype(float)
    outputs = rng.integers(0, 5, size=(25, 6)).astype(float)
    got = lds_per_example(attributions, masks, outputs)
    predicted = masks.astype(float) @ attributions.T
    expected = [stats.spearmanr(predicted[:, t], outputs[:, t])[0] for t in range(6)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_constant_attributions_are_undefined_and_count_as_zero():
    masks = lds_subsets(20, 15, seed=0)
    outputs = np.random.default_rng(1).normal(size=(15, 3))
    per = lds_per_example(np.zeros((3, 20)), masks, outputs)
    assert np.isnan(per).all()
    result = score_attributions("zeros", np.zeros((3, 20)), masks, outputs)
    assert result.lds == 0.0 and result.n_undefined == 3


def test_mean_interval_is_student_t():
    values = np.array([0.1, 0.4, 0.3, 0.2, 0.5])
    mean, low, high = mean_interval(values)
    half = stats.t.ppf(0.975, 4) * values.std(ddof=1) / np.sqrt(5)
    assert mean == pytest.approx(0.3)
    assert (low, high) == pytest.approx((0.3 - half, 0.3 + half))


def test_planted_datamodel_scores_one_and_random_scores_zero():
    """Outputs that are a linear function of the subset: the true weights give LDS near 1."""
    rng = np.random.default_rng(0)
    n, m, T = 80, 300, 40
    weights = rng.normal(size=(T, n))
    masks = lds_subsets(n, m, seed=1)
    outputs = masks @ weights.T + 0.1 * rng.normal(size=(m, T))
    true = score_attributions("true", weights, masks, outputs)
    flipped = score_attributions("negated", -weights, masks, outputs)
    noise = score_attributions("random", rng.normal(size=(T, n)), masks, outputs)
    assert true.lds > 0.95 and true.ci_low > 0.9
    assert flipped.lds < -0.95
    assert noise.ci_low < 0 < noise.ci_high and abs(noise.lds) < 0.1


def _small_binary_task():
    return dw.load_dataset("breast_cancer", rows=160, train_size=60, seed=0)


def test_least_squares_datamodel_of_logistic_regression_scores_high():
    """The exact linear datamodel (least squares on many subsets) predicts fresh subsets."""
    task = _small_binary_task()
    u = dw.Utility(task, learner="logreg", per_prediction="log_odds")
    rows = list(range(30))
    # Fit the datamodel on one set of half subsets, score it on another (different seeds).
    fit_masks = lds_subsets(task.n_train, 1500, seed=100)
    fit_out = ground_truth(u, fit_masks, rows)
    design = np.hstack([fit_masks.astype(float), np.ones((len(fit_masks), 1))])
    coef = np.linalg.lstsq(design, fit_out, rcond=None)[0][:-1].T  # (T, n), intercept dropped
    masks = lds_subsets(task.n_train, 200, seed=0)
    outputs = ground_truth(u, masks, rows)
    datamodel = score_attributions("datamodel", coef, masks, outputs)
    noise = score_attributions(
        "random", np.random.default_rng(0).normal(size=coef.shape), masks, outputs
    )
    assert datamodel.lds > 0.85
    assert noise.ci_low < 0 < noise.ci_high
    # The report's influence function comes close to the exact datamodel on this convex model.
    report = lds(u, ["influence", "random"], n_models=200, test_rows=30)
    by = report.by_method()
    assert by["random"].ci_low < 0 < by["random"].ci_high
    assert by["influence"].lds > 0.7 and by["influence"].lds <= datamodel.lds + 0.05


def test_report_has_every_method_and_the_json_keys(tmp_path):
    task = _small_binary_task()
    report = lds(task, None, n_models=40, test_rows=20, seed=0)
    by = report.by_method()
    assert list(by) == ["ame", "influence", "gradient_similarity", "knn_shapley"]
    assert by["ame"].models == 40 and by["influence"].models == 1
    for r in report.results:
        assert r.ci_low <= r.lds <= r.ci_high
    assert by["influence"].ci_low > 0.3  # well above the random floor on a logistic model
    data = json.loads(report.save(tmp_path).read_text())
    assert data["ground_truth_models"] == 40 and data["output"] == "log_odds"
    assert [r["method"] for r in data["results"]] == list(by)
    for record in data["results"]:
        assert RECORD_KEYS <= set(record)
    # One seed determines every figure.
    again = lds(task, None, n_models=40, test_rows=20, seed=0)
    assert [r.lds for r in again.results] == [r.lds for r in report.results]


def test_network_lds_runs_on_a_tiny_mlp():
    pytest.importorskip("torch")
    from dataworth.learners.torch.learner import TorchLearner, mlp

    task = dw.load_dataset("digits", rows=200, train_size=120, seed=0)
    learner = TorchLearner(mlp((16,)), steps=30, seed=0, device="cpu")
    report = lds(
        task,
        ["ame", "influence", "gradient_similarity", "random"],
        learner=learner,
        n_models=20,
        test_rows=12,
    )
    by = report.by_method()
    assert report.learner == "torch"
    for r in report.results:
        assert np.isfinite([r.lds, r.ci_low, r.ci_high]).all()
    # Gradient methods see the network's own gradients: better than noise even on 20 models.
    assert by["influence"].lds > by["random"].ci_high
    assert by["gradient_similarity"].lds > by["random"].ci_high


def test_cli_writes_lds_json(tmp_path):
    out = tmp_path / "lds"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--lds",
            "--dataset",
            "breast_cancer",
            "--rows",
            "160",
            "--lds-models",
            "20",
            "--methods",
            "influence,random",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "influence" in result.output
    data = json.loads((out / "lds.json").read_text())
    assert [r["method"] for r in data["results"]] == ["influence", "random"]
    assert all(RECORD_KEYS <= set(r) for r in data["results"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--methods", "loo"], "Unknown attribution method 'loo'"),
        (["--lds-models", "1"], "--lds-models must be at least 2"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, fragment):
    result = CliRunner().invoke(app, ["evaluate", "--lds", "--dataset", "iris", *args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and fragment in lines[0]


def test_ame_can_draw_its_subsets_as_the_lds_does():
    """AME under p = 1/2 (the LDS's own law) is a different design from the paper's grid."""
    task = _small_binary_task()
    grid = lds(task, ["ame"], n_models=40, test_rows=10).results[0]
    half = lds(task, ["ame"], n_models=40, test_rows=10, ame_law="banzhaf").results[0]
    assert half.models == grid.models == 40
    assert np.isfinite([half.lds, half.ci_low, half.ci_high]).all()
    assert half.lds != grid.lds
