"""The noise-corrected verification of dw.clean: the noise matrix, the corrected accuracy and the
decision rule, checked against hand computations, a Monte Carlo of planted noise and real fits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import dataworth as dw
from dataworth.clean.intervals import corrected_interval
from dataworth.clean.noise import confident_transition, corrected_accuracy, correction_weights


def _loop_transition(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The calibrated confident joint written out row by row (Northcutt et al. 2021, eq. 1-2)."""
    C = proba.shape[1]
    t = [proba[y == k, k].mean() for k in range(C)]
    joint = np.zeros((C, C))
    for p, j in zip(proba, y, strict=True):
        candidates = [k for k in range(C) if p[k] >= t[k]]
        if candidates:
            joint[j, max(candidates, key=lambda k: p[k])] += 1
    for j in range(C):
        if joint[j].sum():
            joint[j] *= (y == j).sum() / joint[j].sum()
    T = np.eye(C)
    for k in range(C):
        if joint[:, k].sum():
            T[k] = joint[:, k] / joint[:, k].sum()
    return T


def test_confident_transition_matches_a_row_by_row_computation() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3) * 0.7, size=300)
    y = np.array([rng.choice(3, p=p) for p in proba])
    np.testing.assert_allclose(confident_transition(proba, y), _loop_transition(proba, y))


def test_confident_transition_recovers_planted_class_conditional_noise() -> None:
    # True class 0 is given label 1 with probability 0.3, class 1 keeps its label: with the
    # noisy posterior as the probabilities, the calibrated joint recovers T exactly.
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 2000)
    y = np.where((truth == 0) & (rng.random(2000) < 0.3), 1, truth)
    proba = np.where(truth[:, None] == 0, [0.75, 0.25], [0.0, 1.0])  # exact in binary
    T = confident_transition(proba, y)
    observed = np.array([[np.mean(y[truth == k] == j) for j in (0, 1)] for k in (0, 1)])
    np.testing.assert_allclose(T, observed, atol=1e-12)


def test_corrected_accuracy_is_unbiased_for_the_true_labels_accuracy() -> None:
    # Fixed predictions, many draws of class-conditional noise: the mean corrected accuracy on the
    # noisy labels is the accuracy on the true ones; the plain accuracy is not.
    rng = np.random.default_rng(2)
    T = np.array([[0.8, 0.15, 0.05], [0.0, 0.9, 0.1], [0.2, 0.0, 0.8]])
    truth = rng.integers(0, 3, 400)
    predicted = np.where(rng.random(400) < 0.75, truth, rng.integers(0, 3, 400))
    true_accuracy = np.mean(predicted == truth)
    W = correction_weights(T)
    draws, plain = [], []
    for _ in range(2000):
        noisy = np.array([rng.choice(3, p=T[k]) for k in truth])
        draws.append(corrected_accuracy(predicted[None], noisy, W)[0])
        plain.append(np.mean(predicted == noisy))
    stderr = np.std(draws) / np.sqrt(len(draws))
    assert abs(np.mean(draws) - true_accuracy) < 4 * stderr
    assert abs(np.mean(plain) - true_accuracy) > 0.05


def test_symmetric_noise_only_rescales_a_paired_difference() -> None:
    # W = alpha I + beta 11^T: the difference of two models is alpha times the plain one, so a
    # test of the difference cannot change.
    T = np.full((4, 4), 0.1) + np.eye(4) * 0.6
    W = correction_weights(T)
    rng = np.random.default_rng(3)
    y, a, b = rng.integers(0, 4, (3, 500))
    plain = np.mean(a == y) - np.mean(b == y)
    corrected = np.diff(corrected_accuracy(np.vstack([b, a]), y, W))[0]
    alpha = W[0, 0] - W[0, 1]
    assert corrected == pytest.approx(alpha * plain, rel=1e-12)


def test_more_noise_than_signal_is_not_inverted() -> None:
    assert (correction_weights(np.array([[0.4, 0.6], [0.1, 0.9]])) == np.eye(2)).all()


def test_one_sided_interval_is_the_two_sided_ninety_percent_lower_end() -> None:
    d = [0.5, 1.5, 2.0, 0.0, 1.0]
    one = corrected_interval(d, 80, 20, one_sided=True)
    two = corrected_interval(d, 80, 20, level=0.90)
    assert one.low == pytest.approx(two.low, rel=1e-12) and one.high == np.inf
    assert one.to_dict()["one_sided"] is True


def _binary(n: int, seed: int):
    X, y = make_classification(
        n_samples=n, n_features=8, n_informative=5, n_redundant=0, class_sep=1.5,
        random_state=seed,
    )  # fmt: skip
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def test_the_rule_declines_on_clean_rows_and_acts_on_class_conditional_flips() -> None:
    # The case the noisy held-out labels hide: a third of class 0 given label 1. On the same
    # rows with their true labels nothing is acted on.
    X, truth = _binary(600, seed=4)
    clean = dw.clean(X, truth, n_estimators=30, seed=0)
    assert not clean.recommended and clean.n_flagged == 0, clean.decision
    assert (
        not clean.check_gain.above_zero
        or not clean.check_over_random.above_zero
        or (clean.gain.mean < 0)
    )
    rng = np.random.default_rng(4)
    flipped = (truth == 0) & (rng.random(len(truth)) < 0.35)
    y = np.where(flipped, 1, truth)
    noisy = dw.clean(X, y, n_estimators=30, seed=0)
    assert noisy.recommended, noisy.decision
    assert noisy.check_gain.above_zero and noisy.check_over_random.above_zero
    assert noisy.gain.mean >= 0
    # The estimated noise is the planted direction: class 0 -> 1, not 1 -> 0.
    assert noisy.noise_matrix[0, 1] > 0.15 > noisy.noise_matrix[1, 0]
    hits = (noisy.flagged & flipped).sum()
    assert hits / noisy.n_flagged > 0.6
    # Refitting scikit-learn on the kept rows does better on the true labels of fresh rows.
    X_new, y_new = _binary(4000, seed=4)[0][600:], _binary(4000, seed=4)[1][600:]
    keep = ~noisy.flagged
    before = LogisticRegression().fit(X, y).score(X_new, y_new)
    after = LogisticRegression().fit(X[keep], y[keep]).score(X_new, y_new)
    assert after > before
    info = noisy.to_dict()["decided_by"]
    assert info["gain"]["one_sided"] is True and info["classes"] == ["0", "1"]


def test_a_repeats_deciding_score_is_the_corrected_accuracy_of_direct_refits() -> None:
    from dataworth.clean.crossfit import Settings, run_repeat
    from dataworth.learners import make_learner

    X, truth = _binary(300, seed=5)
    y = np.where((truth == 0) & (np.random.default_rng(5).random(300) < 0.3), 1, truth)
    settings = Settings(
        class_names=("0", "1"), learner=make_learner("logreg"), metric="accuracy",
        action="remove", max_fraction=0.3, n_folds=5, neighbours=10, n_estimators=30,
        n_random=2, curve_fractions=(0.0, 0.1),
    )  # fmt: skip
    train, held = np.arange(240), np.arange(240, 300)
    outcome = run_repeat(X, y, train, held, settings, seed=1)
    W = correction_weights(outcome.transition)
    keep = np.setdiff1d(train, outcome.acted)
    for rows, value in ((train, outcome.check_before), (keep, outcome.check_after)):
        model = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X[rows], y[rows])
        direct = corrected_accuracy(model.predict(X[held])[None], y[held], W)[0]
        assert value == pytest.approx(direct, abs=1e-12)
