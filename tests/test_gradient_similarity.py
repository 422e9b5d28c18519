"""Gradient similarity (TracIn, one checkpoint) against per-example gradients computed directly."""

from __future__ import annotations

import numpy as np
import pytest

import dataworth as dw
from dataworth.errors import DataworthError
from dataworth.methods.gradients.similarity import gradient_similarity
from dataworth.metrics import per_prediction_scores


def _softmax_scores(theta: np.ndarray, x: np.ndarray, y: int, n_classes: int):
    """Loss and the three per-prediction scores of one row, written out from the definitions."""
    xa = np.append(x, 1.0)
    if n_classes == 2:
        z = np.array([0.0, theta @ xa])
    else:
        z = theta.reshape(n_classes, -1) @ xa
    p = np.exp(z - z.max())
    p /= p.sum()
    others = np.delete(p, y)
    return {
        "loss": -np.log(p[y]),
        "proba": p[y],
        "margin": p[y] - others.max(),
        "log_odds": np.log(p[y] / others.sum()),
    }


def _numeric_grad(fn, theta: np.ndarray, h: float = 1e-6) -> np.ndarray:
    out = np.empty_like(theta)
    for j in range(len(theta)):
        step = np.zeros_like(theta)
        step[j] = h
        out[j] = (fn(theta + step) - fn(theta - step)) / (2 * h)
    return out


@pytest.mark.parametrize(
    ("dataset", "kind"),
    [("iris", "log_odds"), ("iris", "proba"), ("breast_cancer", "log_odds")],
)
def test_logreg_matches_finite_differences(dataset, kind):
    task = dw.load_dataset(dataset, train_size=60, seed=1)
    if dataset == "breast_cancer":  # few features keep the finite differences cheap
        task = dw.Task(
            X_train=task.X_train[:, :4],
            y_train=task.y_train,
            X_test=task.X_test[:, :4],
            y_test=task.y_test,
            feature_names=task.feature_names[:4],
            class_names=task.class_names,
            train_ids=task.train_ids,
            test_ids=task.test_ids,
            name="bc4",
        )
    u = dw.Utility(task, learner="logreg", per_prediction=kind)
    rows = [0, 3]
    results = gradient_similarity(u, target=rows)
    theta = u.learner.reference(task.X_train, task.y_train, task.n_classes)
    C = task.n_classes
    for r in rows:
        x_t, y_t = task.X_test[r], int(task.y_test[r])
        g_t = _numeric_grad(
            lambda th, x_t=x_t, y_t=y_t: _softmax_scores(th, x_t, y_t, C)[kind], theta
        )
        expected = np.array(
            [
                -g_t
                @ _numeric_grad(
                    lambda th, i=i: _softmax_scores(th, task.X_train[i], int(task.y_train[i]), C)[
                        "loss"
                    ],
                    theta,
                )
                for i in range(task.n_train)
            ]
        )
        np.testing.assert_allclose(results[r].values, expected, rtol=1e-4, atol=1e-7)


def test_sign_is_the_effect_of_a_gradient_step():
    """A small gradient step on point i's loss moves the score by about eta * value_i."""
    task = dw.load_dataset("iris", train_size=60, seed=2)
    u = dw.Utility(task, learner="logreg", per_prediction="log_odds")
    result = gradient_similarity(u, target=1)
    theta = u.learner.reference(task.X_train, task.y_train, task.n_classes)
    C, eta = task.n_classes, 1e-5
    x_t, y_t = task.X_test[1], int(task.y_test[1])
    base = _softmax_scores(theta, x_t, y_t, C)["log_odds"]
    for i in np.argsort(-np.abs(result.values))[:5]:
        grad_i = _numeric_grad(
            lambda th, i=i: _softmax_scores(th, task.X_train[i], int(task.y_train[i]), C)["loss"],
            theta,
        )
        moved = _softmax_scores(theta - eta * grad_i, x_t, y_t, C)["log_odds"]
        assert (moved - base) / eta == pytest.approx(result.values[i], rel=1e-3)


def test_cosine_is_bounded_and_same_sign():
    task = dw.load_dataset("iris", seed=0)
    u = dw.Utility(task, learner="logreg", per_prediction="log_odds")
    dot = gradient_similarity(u, target=0).values
    cos = gradient_similarity(u, target=0, normalize=True).values
    assert np.all(np.abs(cos) <= 1 + 1e-12)
    assert np.array_equal(np.sign(dot), np.sign(cos))


def test_refuses_models_without_gradients():
    task = dw.load_dataset("iris", seed=0)
    with pytest.raises(DataworthError, match="differentiable"):
        gradient_similarity(dw.Utility(task, learner="knn"), target=0)
    game = dw.Game(lambda m: m.sum(axis=1).astype(float), n_players=5)
    with pytest.raises(DataworthError, match="Utility"):
        gradient_similarity(game, target=0)
    with pytest.raises(DataworthError, match="does not exist"):
        gradient_similarity(dw.Utility(task, learner="logreg"), target=10_000)


@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_network_matches_autograd_one_row_at_a_time(network):
    """The vmapped per-example gradients equal a plain autograd loop over the rows."""
    torch = pytest.importorskip("torch")
    from dataworth.learners.torch.learner import TorchLearner, mlp, small_cnn

    task = dw.load_dataset("digits", rows=100, train_size=60, seed=0)
    factory = mlp((8,)) if network == "mlp" else small_cnn(side=8, channels=(2, 4), hidden=8)
    learner = TorchLearner(factory, steps=20, seed=3, device="cpu", dtype="float64")
    u = dw.Utility(task, learner=learner, per_prediction="log_odds")
    rows = [0, 2]
    results = gradient_similarity(u, target=rows)

    # The full-data network, trained through the learner's own batch API, in a plain module.
    params = learner.fit_params(task, np.ones((1, task.n_train), bool))
    module = factory(task.n_features, task.n_classes).double()
    module.load_state_dict({k: v[0] for k, v in params.items()})

    def flat_grad(value):
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, module.parameters())])

    X_train = torch.tensor(task.X_train, dtype=torch.float64)
    X_test = torch.tensor(task.X_test, dtype=torch.float64)
    loss_grads = torch.stack(
        [
            flat_grad(
                torch.nn.functional.cross_entropy(
                    module(X_train[i : i + 1]), torch.tensor([int(task.y_train[i])])
                )
            )
            for i in range(task.n_train)
        ]
    )
    for r in rows:
        logits = module(X_test[r : r + 1])[0]
        y = int(task.y_test[r])
        others = torch.cat([logits[:y], logits[y + 1 :]])
        g_t = flat_grad(logits[y] - torch.logsumexp(others, dim=0))
        expected = -(loss_grads @ g_t).numpy()
        np.testing.assert_allclose(results[r].values, expected, rtol=1e-8, atol=1e-12)


def test_log_odds_score_keeps_precision_near_one():
    """log(p / (1 - p)) from the other classes' probabilities, finite when p rounds to 1."""
    proba = np.array([[[1e-20, 1.0 - 1e-20, 0.0], [0.2, 0.5, 0.3]]])
    scores = per_prediction_scores(proba, np.array([1, 1]), "log_odds")
    np.testing.assert_allclose(scores[0], [np.log(1.0 / 1e-20), 0.0], rtol=1e-12, atol=1e-12)
    with pytest.raises(DataworthError, match="log_odds"):
        per_prediction_scores(proba, np.array([1, 1]), "logit")


def test_fisher_influence_equals_the_explicit_inverse():
    """The Woodbury form equals -g_t^T (G^T G / n + lambda I)^{-1} g_i with the P x P inverse."""
    from dataworth.methods.gradients.network_influence import fisher_influence_matrix

    rng = np.random.default_rng(0)
    n, P, T = 12, 30, 4  # more parameters than points, as in a network
    G, targets = rng.normal(size=(n, P)), rng.normal(size=(T, P))
    damping = 0.05
    lam = damping * np.trace(G @ G.T) / n**2
    F = G.T @ G / n + lam * np.eye(P)
    expected = -targets @ np.linalg.solve(F, G.T)
    np.testing.assert_allclose(fisher_influence_matrix(targets, G, damping), expected, rtol=1e-9)
    with pytest.raises(DataworthError, match="damping"):
        fisher_influence_matrix(targets, G, 0.0)


def test_network_influence_uses_the_networks_own_gradients():
    pytest.importorskip("torch")
    from dataworth.learners.torch.learner import TorchLearner, mlp
    from dataworth.methods.gradients.network_influence import (
        fisher_influence_matrix,
        network_influence,
    )
    from dataworth.methods.gradients.similarity import gradient_matrices

    task = dw.load_dataset("digits", rows=100, train_size=60, seed=0)
    learner = TorchLearner(mlp((8,)), steps=20, seed=1, device="cpu", dtype="float64")
    u = dw.Utility(task, learner=learner, per_prediction="log_odds")
    results = network_influence(u, target=[0, 1])
    t_grads, l_grads = gradient_matrices(u, [0, 1], np.arange(task.n_train), "log_odds")
    expected = fisher_influence_matrix(t_grads, l_grads)
    np.testing.assert_allclose(results[1].values, expected[1], rtol=1e-10)
    with pytest.raises(DataworthError, match="network learner"):
        network_influence(dw.Utility(task, learner="logreg"), target=0)
