"""dw.clean: the signals, the removal curves, the interval and the verified gain, checked against
direct scikit-learn refits and hand computations on small real tables."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import dataworth as dw
from dataworth.clean.crossfit import Settings, run_repeat
from dataworth.clean.intervals import corrected_interval
from dataworth.clean.removal import acted_masks, score_masks
from dataworth.clean.signals import compute_signals, out_of_fold_proba, stratified_folds
from dataworth.errors import DataworthError
from dataworth.learners import make_learner


def _table(n: int = 400, flip: float = 0.0, seed: int = 0, sep: float = 1.5):
    X, y = make_classification(
        n_samples=n, n_features=6, n_informative=4, n_redundant=0, class_sep=sep, random_state=seed
    )
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rng = np.random.default_rng(seed)
    flipped = rng.random(n) < flip
    noisy = np.where(flipped, 1 - y, y)
    return X, noisy, y, flipped


def _settings(action: str = "remove", metric: str = "accuracy") -> Settings:
    return Settings(
        class_names=("0", "1"),
        learner=make_learner("logreg"),
        metric=metric,
        action=action,
        max_fraction=0.3,
        n_folds=5,
        neighbours=10,
        n_estimators=30,
        n_random=2,
        curve_fractions=(0.0, 0.1, 0.2),
    )


def _sklearn_accuracy(X, y, X_test, y_test) -> float:
    model = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X, y)
    return float((model.predict(X_test) == y_test).mean())


def test_corrected_interval_matches_a_hand_computation() -> None:
    # d = 1, 2, 3: mean 2, sample variance 1; corrected variance 1 * (1/3 + 20/80) = 7/12;
    # t(0.975, 2 df) = 4.302652729749464 (tables); half-width 4.302652729749464 * sqrt(7/12).
    interval = corrected_interval([1.0, 2.0, 3.0], n_train=80, n_test=20)
    half = 4.302652729749464 * np.sqrt(7 / 12)
    assert interval.mean == 2.0
    assert interval.low == pytest.approx(2.0 - half, rel=1e-12)
    assert interval.high == pytest.approx(2.0 + half, rel=1e-12)
    assert interval.above_zero is False  # 2 - 3.29 < 0
    # Wider than the naive interval (s^2 / J), which ignores the overlap of the splits.
    naive = 4.302652729749464 * np.sqrt(1 / 3)
    assert interval.high - interval.mean > naive
    assert np.isnan(corrected_interval([1.0], 80, 20).low)


def test_out_of_fold_probabilities_match_scikit_learn_on_each_fold() -> None:
    X, y, _, _ = _table(n=200, flip=0.1)
    folds = stratified_folds(y, 5, seed=0)
    proba = out_of_fold_proba(X, y, ("0", "1"), make_learner("logreg"), folds)
    for train, held in folds:
        model = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X[train], y[train])
        np.testing.assert_allclose(proba[held], model.predict_proba(X[held]), atol=1e-6)


def test_signals_rank_planted_flips_first_and_name_their_reasons() -> None:
    X, y, _, flipped = _table(n=400, flip=0.1, seed=1)
    folds = stratified_folds(y, 5, seed=0)
    signals = compute_signals(X, y, ("0", "1"), make_learner("logreg"), folds, n_estimators=30)
    assert roc_auc_score(flipped, signals.score) > 0.9
    assert ((signals.score >= 0) & (signals.score <= 1 + 0.05)).all()
    reasons = signals.reasons(("0", "1"), y)
    top = np.argsort(-signals.score)[:10]
    assert all(reasons[i] for i in top)


def test_duplicates_with_another_label_are_suspect() -> None:
    X, y, _, _ = _table(n=120, seed=2)
    X = np.vstack([X, X[:1]])
    y = np.concatenate([y, [1 - y[0]]])
    folds = stratified_folds(y, 5, seed=0)
    signals = compute_signals(X, y, ("0", "1"), make_learner("logreg"), folds, n_estimators=20)
    assert signals.duplicate_conflict[0] == signals.duplicate_conflict[-1] == 0.5
    assert signals.score[-1] >= 0.5 and signals.score[0] >= 0.5
    assert signals.duplicate.sum() == 2
    assert "another label" in signals.reasons(("0", "1"), y)[-1]


def test_removal_and_relabel_masks_score_as_direct_refits() -> None:
    X, y, _, _ = _table(n=160, flip=0.15, seed=3)
    X_test, y_test = X[120:], y[120:]
    X, y = X[:120], y[:120]
    order = np.random.default_rng(0).permutation(120)
    suggested = 1 - y  # relabelling flips the first rows of the order
    for action in ("remove", "relabel"):
        masks = acted_masks(order, [0, 12], 120, action)
        scores = score_masks(
            X, y, suggested, X_test, y_test, ("0", "1"), masks,
            learner="logreg", metric="accuracy", action=action, seed=0,
        )  # fmt: skip
        assert scores[0] == _sklearn_accuracy(X, y, X_test, y_test)
        if action == "remove":
            keep = np.setdiff1d(np.arange(120), order[:12])
            direct = _sklearn_accuracy(X[keep], y[keep], X_test, y_test)
        else:
            relabelled = y.copy()
            relabelled[order[:12]] = suggested[order[:12]]
            direct = _sklearn_accuracy(X, relabelled, X_test, y_test)
        assert scores[1] == direct


def test_a_repeats_held_out_gain_is_a_direct_scikit_learn_refit() -> None:
    X, y, _, _ = _table(n=300, flip=0.2, seed=4)
    held = np.arange(240, 300)
    train = np.arange(240)
    outcome = run_repeat(X, y, train, held, _settings(), seed=5)
    assert outcome.n_acted == len(outcome.acted) > 0
    assert np.isin(outcome.acted, train).all()  # nothing held out is ever acted on
    keep = np.setdiff1d(train, outcome.acted)
    assert outcome.before == _sklearn_accuracy(X[train], y[train], X[held], y[held])
    assert outcome.after == _sklearn_accuracy(X[keep], y[keep], X[held], y[held])


def test_planted_flips_are_found_removed_and_the_gain_verified() -> None:
    # Four classes, a quarter of the labels moved to another class at random: enough rows for
    # the held-out rows (noisy like the rest) to tell the gain from noise.
    n, C = 1500, 4
    X, truth = make_classification(
        n_samples=n, n_features=10, n_informative=8, n_redundant=0, n_classes=C,
        class_sep=2.0, random_state=0,
    )  # fmt: skip
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rng = np.random.default_rng(0)
    flipped = rng.random(n) < 0.25
    y = np.where(flipped, (truth + rng.integers(1, C, n)) % C, truth)
    result = dw.clean(X, y, n_estimators=30, seed=0)
    assert result.recommended, result.decision
    assert result.check_gain.above_zero and result.check_over_random.above_zero
    assert 0 < result.n_flagged <= 0.3 * n
    hits = (result.flagged & flipped).sum()
    assert hits / result.n_flagged > 0.7 and hits / flipped.sum() > 0.9
    assert roc_auc_score(flipped, result.score) > 0.9
    frame = result.to_frame()
    assert list(frame.columns) == ["id", "label", "suggested_label", "score", "flagged", "reasons"]
    fixed = frame["suggested_label"][result.flagged & flipped]
    assert (fixed == truth[result.flagged & flipped].astype(str)).mean() > 0.8
    assert result.to_dict()["n_flagged"] == result.n_flagged


def test_clean_data_gets_no_action_and_nothing_flagged() -> None:
    task = dw.load_dataset("breast_cancer", train_size=300, seed=0)
    result = dw.clean(task, n_estimators=30, seed=0)
    assert not result.recommended
    assert result.n_flagged == 0
    assert result.decision.startswith("No action recommended")
    assert len(result.score) == task.n_train and (result.ids == task.train_ids).all()


def test_relabel_is_measured_for_relabelling_and_reproducible() -> None:
    X, y, _, _ = _table(n=300, flip=0.2, seed=7, sep=2.0)
    first = dw.clean(X, y, action="relabel", repeats=2, n_estimators=20, seed=3)
    again = dw.clean(X, y, action="relabel", repeats=2, n_estimators=20, seed=3)
    assert first.action == "relabel"
    np.testing.assert_array_equal(first.score, again.score)
    assert [r.after for r in first.repeats] == [r.after for r in again.repeats]
    for outcome in first.repeats:  # the relabelled refit, recomputed directly
        train = np.setdiff1d(np.arange(300), _held_of(first, outcome, y))
        relabelled = y.copy()
        relabelled[outcome.acted] = outcome.suggested
        held = np.setdiff1d(np.arange(300), train)
        assert outcome.after == _sklearn_accuracy(X[train], relabelled[train], X[held], y[held])


def _held_of(result, outcome, y) -> np.ndarray:
    from sklearn.model_selection import StratifiedShuffleSplit

    n_held = int(np.ceil(result.params["holdout"] * len(y)))
    splitter = StratifiedShuffleSplit(
        n_splits=result.params["repeats_asked"],
        test_size=n_held,
        random_state=result.seeds["split"],
    )
    j = result.seeds["repeats"].index(outcome.seed)
    return list(splitter.split(np.zeros(len(y)), y))[j][1]


def test_a_class_too_rare_to_hold_out_is_one_line_error() -> None:
    X, y, _, _ = _table(n=60, seed=8)
    y = y.astype(object)
    y[0] = "rare"
    with pytest.raises(DataworthError, match="too few to hold any out"):
        dw.clean(X, y.astype(str))
    y[1] = "rare"  # two rows: folds could split them, a held-out repeat could not
    with pytest.raises(DataworthError, match="too few to hold any out"):
        dw.clean(X, y.astype(str))
    with pytest.raises(DataworthError, match="action"):
        dw.clean(X, y.astype(str), action="drop")
