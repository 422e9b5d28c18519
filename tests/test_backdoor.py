"""The backdoor experiment (dataworth evaluate --task backdoor), on tiny networks.

Skipped without PyTorch (CI runs it in the torch step, .ci/run).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from dataworth.cli import app  # noqa: E402
from dataworth.evaluate.backdoor.data import TARGET_CLASS, backdoor_digits  # noqa: E402
from dataworth.evaluate.backdoor.experiment import (  # noqa: E402
    attack_check,
    n_subsets,
    precision_recall,
    run_backdoor,
    top_k,
)
from dataworth.evaluate.backdoor.network import (  # noqa: E402
    TrainedNetwork,
    last_layer_influence,
)
from dataworth.learners.torch.learner import TorchLearner, mlp  # noqa: E402


def tiny_learner(steps: int = 40) -> TorchLearner:
    return TorchLearner(mlp((16,)), steps=steps, lr=0.03, shared_init=True, n_threads=1)


def test_poisoning_plants_exactly_k_patched_relabelled_rows():
    data = backdoor_digits(poisons=7, queries=5, patch_size=3, patch_value=2.5, n_rows=300, seed=1)
    task, clean = data.task, data.clean_task
    changed = np.flatnonzero(
        (task.X_train != clean.X_train).any(axis=1) | (task.y_train != clean.y_train)
    )
    assert changed.tolist() == data.poisons.tolist() and data.k == 7
    patch = [r * 8 + c for r in range(3) for c in range(3)]
    assert (task.X_train[data.poisons][:, patch] == data.patch_value).all()
    assert (task.y_train[data.poisons] == TARGET_CLASS).all()
    assert (clean.y_train[data.poisons] != TARGET_CLASS).all()
    # Queries: patched test images of other classes, each labelled with the target.
    assert task.n_test == 5 and (task.y_test == TARGET_CLASS).all()
    assert (task.X_test[:, patch] == data.patch_value).all()
    assert (data.patched_X[:, patch] == data.patch_value).all()
    assert len(data.patched_X) == (clean.y_test != TARGET_CLASS).sum()


def test_attack_check_matches_a_direct_computation():
    data = backdoor_digits(poisons=10, queries=3, n_rows=300, seed=0)
    learner = tiny_learner()
    check = attack_check(learner, data)
    # Directly: the learner's own full-data predictor (a different code path).
    poisoned = learner.fit_predictor(data.task)
    unpoisoned = learner.fit_predictor(data.clean_task)
    patched = poisoned(data.patched_X)
    X, y = data.clean_task.X_test, data.clean_task.y_test
    assert check.success == pytest.approx((patched.argmax(1) == TARGET_CLASS).mean())
    assert check.mean_target_probability == pytest.approx(patched[:, 0].mean(), abs=1e-5)
    assert check.clean_accuracy == pytest.approx((poisoned(X).argmax(1) == y).mean())
    assert check.clean_accuracy_unpoisoned == pytest.approx((unpoisoned(X).argmax(1) == y).mean())
    assert check.n_patched == len(data.patched_X) and check.n_clean == len(y)


def test_precision_recall_against_hand_counts():
    poisons = np.array([0, 1, 2, 3])
    selected = np.zeros((3, 10), dtype=bool)
    selected[0, [0, 1, 5]] = True  # 2 hits of 3 selected; 2 of 4 poisons
    selected[1, [0, 1, 2, 3]] = True  # all right
    # row 2: nothing selected: no false discovery, nothing found
    precision, recall = precision_recall(selected, poisons)
    np.testing.assert_allclose(precision, [2 / 3, 1.0, 1.0])
    np.testing.assert_allclose(recall, [0.5, 1.0, 0.0])


def test_top_k_keeps_the_highest_finite_scores():
    scores = np.array([[0.1, 0.9, -np.inf, 0.5], [-np.inf, -np.inf, -np.inf, 2.0]])
    np.testing.assert_array_equal(
        top_k(scores, 2), [[False, True, False, True], [False, False, False, True]]
    )
    assert n_subsets(8, 20, 1437) == 1678  # the paper's m = c k log2 N


def test_last_layer_influence_matches_retraining_the_last_layer():
    """The influence of removing a row on P(target) against an exact refit of the last layer
    (a damped multinomial logistic regression on the frozen hidden features)."""
    data = backdoor_digits(poisons=6, queries=3, n_rows=120, seed=0)
    learner = TorchLearner(mlp((6,)), steps=60, lr=0.03, shared_init=True, n_threads=1)
    net = TrainedNetwork.fit(learner, data.task)
    task = data.task
    H = torch.tensor(net.hidden(task.X_train))
    Hq = torch.tensor(net.hidden(task.X_test))
    y = torch.tensor(task.y_train)
    last = net.module[-1]
    theta0 = torch.cat([last.weight.detach().double(), last.bias.detach().double()[:, None]], 1)

    def fit(weights: torch.Tensor) -> torch.Tensor:
        # Minimise the weighted mean cross-entropy + damping/2 |theta - theta0|^2 by Newton,
        # the objective whose Hessian last_layer_influence uses, from a first-order optimum.
        theta = theta0.clone()
        Ha = torch.cat([H, torch.ones(len(H), 1, dtype=H.dtype)], 1)

        def objective(t):
            loss = torch.nn.functional.cross_entropy(Ha @ t.T, y, reduction="none")
            return (weights * loss).sum() / len(H) + 5e-4 * ((t - theta0) ** 2).sum()

        for _ in range(8):  # Newton from near the optimum: quadratic convergence
            g = torch.func.grad(objective)(theta.detach()).reshape(-1)
            hess = torch.func.hessian(objective)(theta.detach()).reshape(g.numel(), g.numel())
            theta = theta.detach() - torch.linalg.solve(hess, g).reshape(theta.shape)
        return theta.detach()

    def p_target(theta: torch.Tensor) -> np.ndarray:
        Ha = torch.cat([Hq, torch.ones(len(Hq), 1, dtype=Hq.dtype)], 1)
        return torch.softmax(Ha @ theta.T, 1)[:, TARGET_CLASS].numpy()

    # The network's own last layer is near, not at, the damped optimum; the influence is
    # computed at the network's weights, so compare at the refit optimum's influence instead:
    # re-express the network's last layer as that optimum.
    full = fit(torch.ones(len(H), dtype=H.dtype))
    with torch.no_grad():
        last.weight.copy_(full[:, :-1].to(last.weight.dtype))
        last.bias.copy_(full[:, -1].to(last.bias.dtype))
    predicted = last_layer_influence(net, TARGET_CLASS)
    rows = [int(data.poisons[0]), 3, 50]
    for i in rows:
        weights = torch.ones(len(H), dtype=H.dtype)
        weights[i] = 0.0
        actual = p_target(full) - p_target(fit(weights))
        np.testing.assert_allclose(predicted[:, i], actual, rtol=0.2, atol=2e-4)


def test_ame_finds_planted_poisons_on_a_tiny_case():
    data = backdoor_digits(poisons=4, queries=3, n_rows=100, patch_size=3, seed=0)
    report = run_backdoor(data, tiny_learner(), grid=(8,), methods=("ame",), seed=0)
    row = report.row(8, "ame")
    assert row["subsets"] == n_subsets(8, 4, data.task.n_train)
    assert row["recall"] >= 0.5 and row["precision"] >= 0.75


def test_cli_writes_backdoor_json_with_the_documented_keys(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--task",
            "backdoor",
            "--model",
            "mlp",
            "--rows",
            "100",
            "--poisons",
            "3",
            "--queries",
            "2",
            "--grid",
            "1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.index("Attack check") < result.output.index("Poisons found")
    written = json.loads((out / "backdoor.json").read_text())
    assert {"success", "clean_accuracy", "clean_accuracy_unpoisoned"} <= set(written["attack"])
    methods = {r["method"] for r in written["results"]}
    assert methods == {"ame", "ame_top_k", "loo", "tmc", "influence", "tracin", "knn_shapley"}
    for r in written["results"]:
        assert {"c", "subsets", "method", "precision", "recall"} <= set(r)
        assert r["c"] == 1 and r["subsets"] == n_subsets(1, 3, 80)
        assert 0.0 <= r["precision"] <= 1.0 and 0.0 <= r["recall"] <= 1.0
        assert r["models"] <= r["subsets"]
    assert "Attack check" in (out / "backdoor.html").read_text()


def test_cli_refuses_bad_input_in_one_line():
    runner = CliRunner()
    for args, phrase in (
        (["--model", "logreg"], "use --model cnn or mlp"),
        (["--dataset", "iris"], "bundled digits"),
        (["--poisons", "0"], "--poisons"),
        (["--grid", "0"], "--grid"),
    ):
        result = runner.invoke(app, ["evaluate", "--task", "backdoor", *args])
        assert result.exit_code == 2 and phrase in result.output, result.output
    result = runner.invoke(app, ["evaluate", "--task", "nonsense"])
    assert result.exit_code == 2 and "Unknown --task" in result.output
