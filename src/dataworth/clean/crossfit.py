"""The verified gain: clean on part of the rows, measure on rows that took part in nothing.

Each repeat draws a stratified random split of the rows into a part that is cleaned (``T``) and a
held-out part (``H``). Everything the cleaning decides is decided on ``T`` alone: the signals,
their folds, the removal curve and the count it chooses. Then the model is refitted on ``T`` as
it is, on ``T`` cleaned, and on ``T`` less as many random rows (several draws), and each is scored
on ``H``; the same refits trace the held-out removal curves (suspects first, random, least
suspect first). ``H``'s labels are the user's, noisy ones included: a gain measured on them is
the gain the user would see on fresh rows labelled the same way. Nothing in ``H`` is ever removed
or relabelled, since scoring on rows with their suspects removed would flatter the cleaning.
With the accuracy metric the same refits' predictions on ``H`` are also scored on the true labels
that the noise matrix estimated on ``T`` implies (:mod:`dataworth.clean.noise`): that score
decides (``check_*``), the metric on the given labels is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter

import numpy as np

from dataworth.clean.noise import confident_transition, corrected_accuracy, correction_weights
from dataworth.clean.removal import (
    acted_masks,
    candidate_fractions,
    choose_fraction,
    counts_of,
    predict_masks,
    score_masks,
)
from dataworth.clean.signals import Signals, compute_signals, stratified_folds


@dataclass(frozen=True)
class Settings:
    """What every valuation and refit of one ``clean`` call shares."""

    class_names: tuple[str, ...]
    learner: object
    metric: str
    action: str
    max_fraction: float
    n_folds: int
    neighbours: int
    n_estimators: int
    n_random: int
    curve_fractions: tuple[float, ...]


@dataclass(frozen=True)
class Decision:
    """The signals of some rows and the share of them the removal curve on folds chose."""

    signals: Signals
    fraction: float
    fractions: list[float]
    fold_curve: np.ndarray
    order: np.ndarray  # positions, most suspect first

    @property
    def n_acted(self) -> int:
        return round(self.fraction * len(self.order))


def decide(X: np.ndarray, y: np.ndarray, settings: Settings, seed: int) -> Decision:
    """Value the rows ``X, y`` and choose how many of them to act on, on their own folds."""
    folds = stratified_folds(y, settings.n_folds, seed)
    signals = compute_signals(
        X,
        y,
        settings.class_names,
        settings.learner,
        folds,
        k=settings.neighbours,
        n_estimators=settings.n_estimators,
        seed=seed,
    )
    # The signals' own count (rows whose evidence is on balance against the label) is a
    # candidate beside the grid, as the noise count is in confident learning.
    fractions = candidate_fractions(settings.max_fraction, float(np.mean(signals.score > 0.5)))
    fraction, curve = choose_fraction(
        X,
        y,
        signals.score,
        signals.predicted,
        folds,
        fractions,
        settings.class_names,
        learner=settings.learner,
        metric=settings.metric,
        action=settings.action,
        seed=seed,
    )
    order = np.argsort(-signals.score, kind="stable")
    return Decision(signals, fraction, fractions, curve, order)


@dataclass
class RepeatOutcome:
    """One repeat's held-out scores (the metric on ``H``)."""

    seed: int
    n_train: int
    n_test: int
    fraction: float
    n_acted: int
    before: float
    after: float
    random: float
    # The decision's metric (clean/noise.py): accuracy on the true labels as the noise matrix
    # estimated on the cleaned part implies, or the primary metric itself for other metrics.
    check_before: float = float("nan")
    check_after: float = float("nan")
    check_random: float = float("nan")
    transition: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    acted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # rows of X
    suggested: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # for acted
    seconds: float = 0.0


def run_repeat(
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    held: np.ndarray,
    settings: Settings,
    seed: int,
) -> RepeatOutcome:
    """Clean ``train`` on its own, then score the refits on ``held`` (see the docstring)."""
    started = perf_counter()
    Xt, yt = X[train], y[train]
    decision = decide(Xt, yt, settings, seed)
    n, m = len(yt), decision.n_acted
    rng = np.random.default_rng(seed)
    randoms = [rng.permutation(n) for _ in range(settings.n_random)]
    curve_counts = counts_of(settings.curve_fractions, n)
    blocks = [
        acted_masks(decision.order, [0, m], n, settings.action),
        *(acted_masks(r, [m], n, settings.action) for r in randoms),
        acted_masks(decision.order, curve_counts, n, settings.action),
        acted_masks(decision.order[::-1], curve_counts, n, settings.action),
        acted_masks(randoms[0], curve_counts, n, settings.action),
    ]
    scores = score_masks(
        Xt,
        yt,
        decision.signals.predicted,
        X[held],
        y[held],
        settings.class_names,
        np.vstack(blocks),
        learner=settings.learner,
        metric=settings.metric,
        action=settings.action,
        seed=seed,
    )
    c, r = len(curve_counts), settings.n_random
    before, after = scores[0], scores[1]
    random = scores[2 : 2 + r].mean()
    transition = confident_transition(decision.signals.proba, yt)
    check = np.array([before, after, random])
    if settings.metric == "accuracy":
        # The same refits' predictions, scored on the true labels as the noise matrix estimated
        # on the cleaned part (never on ``held``) implies (clean/noise.py).
        predicted = predict_masks(
            Xt,
            yt,
            decision.signals.predicted,
            X[held],
            settings.class_names,
            np.vstack(blocks[: 1 + r]),
            learner=settings.learner,
            action=settings.action,
        )
        corrected = corrected_accuracy(predicted, y[held], correction_weights(transition))
        check = np.array([corrected[0], corrected[1], corrected[2:].mean()])
    rest = scores[2 + r :]
    curves = {
        "lowest_first": rest[:c],
        "highest_first": rest[c : 2 * c],
        "random": rest[2 * c :],
    }
    return RepeatOutcome(
        seed=seed,
        n_train=n,
        n_test=len(held),
        fraction=decision.fraction,
        n_acted=m,
        before=float(before),
        after=float(after),
        random=float(random),
        check_before=float(check[0]),
        check_after=float(check[1]),
        check_random=float(check[2]),
        transition=transition,
        curves=curves,
        acted=train[decision.order[:m]],
        suggested=decision.signals.predicted[decision.order[:m]],
        seconds=perf_counter() - started,
    )
