"""``dw.clean``: flag the rows that hurt, act on them only when the gain is verified."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedShuffleSplit

from dataworth.clean.crossfit import RepeatOutcome, Settings, decide, run_repeat
from dataworth.clean.result import CleanResult
from dataworth.clean.signals import stratified_folds
from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.learners import make_learner
from dataworth.metrics import get_metric

#: Shares of the held-out removal curves (capped by ``max_fraction``).
CURVE_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
METHODS = (
    "out-of-fold probabilities of the refitted model",
    "Data-OOB (bagged decision trees)",
    "nearest neighbours' labels",
    "exact duplicates",
    "outliers (distance to the k-th neighbour)",
)


def _rows(data: Any, y: Any) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
    """Features, encoded labels, class names and ids of the rows to clean."""
    if isinstance(data, Task):
        if y is not None:
            raise DataworthError("Give y only with an array of features, not with a Task.")
        return data.X_train, data.y_train, data.class_names, data.train_ids
    if y is None:
        raise DataworthError("clean needs a Task, or features X and labels y.")
    X = np.asarray(data, dtype=np.float64)
    labels = np.asarray(y)
    if X.ndim != 2 or len(labels) != len(X):
        raise DataworthError("X must be 2-D (rows x features) with one label per row in y.")
    if not np.isfinite(X).all():
        raise DataworthError("Features contain NaN or infinite values; impute or drop them first.")
    classes, codes = np.unique(labels, return_inverse=True)
    return X, codes.ravel(), tuple(str(c) for c in classes), np.arange(len(X))


def _check(action: str, max_fraction: float, repeats: int, holdout: float) -> None:
    if action not in ("remove", "relabel"):
        raise DataworthError(f"Unknown action {action!r}; use 'remove' or 'relabel'.")
    if not 0 < max_fraction < 1:
        raise DataworthError(f"max_fraction must lie in (0, 1); got {max_fraction}.")
    if int(repeats) != repeats or repeats < 2:
        raise DataworthError(f"repeats must be a whole number of at least 2; got {repeats}.")
    if not 0 < holdout < 1:
        raise DataworthError(f"holdout must lie in (0, 1); got {holdout}.")


def _seeds(seed: int, repeats: int) -> tuple[int, int, list[int]]:
    """The split's, the final decision's and each repeat's seed, all from ``seed``."""
    states = [s.generate_state(1)[0] for s in np.random.SeedSequence(seed).spawn(repeats + 2)]
    return int(states[0]), int(states[1]), [int(s) for s in states[2:]]


def clean(
    data: Task | Any,
    y: Any = None,
    *,
    model: Any = "logreg",
    metric: str = "accuracy",
    action: str = "remove",
    max_fraction: float = 0.3,
    repeats: int = 10,
    holdout: float = 0.2,
    n_folds: int = 5,
    neighbours: int = 10,
    n_estimators: int = 100,
    n_random: int = 3,
    budget: float | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> CleanResult:
    """Flag the rows whose labels hurt the model; act on them only if the held-out gain is real.

    Every row gets a suspicion from the signals of :mod:`dataworth.clean.signals` (out-of-fold
    probability of its label, Data-OOB value, neighbours' labels, exact duplicates, outliers).
    How many rows to act on is chosen by a removal curve on folds of the rows, never fixed.
    Whether to act at all is decided by cross-fitting (:mod:`dataworth.clean.crossfit`): over
    ``repeats`` random splits, the whole procedure runs on ``1 - holdout`` of the rows and the
    refitted model is scored on the rest, before and after, and against acting on as many random
    rows. With the accuracy metric the deciding score is the held-out accuracy on the true
    labels, estimated from the given ones through the label-noise matrix estimated on the
    cleaned part (:mod:`dataworth.clean.noise`); with another metric, the metric itself. Action
    is recommended only when the one-sided 95% Nadeau-Bengio intervals of the deciding gain and
    of its gain over random rows both lie above zero and the mean gain on the given labels is
    not negative; otherwise nothing is flagged. The result also reports the metric on the given
    labels with its two-sided 95% interval.

    Parameters
    ----------
    data : Task or array-like of shape (n, d)
        A task (its training rows are cleaned; its test rows are not used) or numeric features.
    y : array-like of shape (n,), optional
        Labels, with array features only.
    model : str, Learner or scikit-learn classifier, default="logreg"
        The model refitted after cleaning, and whose out-of-fold probabilities are a signal.
    metric : str, default="accuracy"
        The held-out metric (see :data:`dataworth.metrics.METRICS`). A label metric is the
        default: on held-out rows whose labels are themselves noisy, a model that stops fitting
        the noise grows more confident and its log-loss can worsen while its accuracy improves.
    action : {"remove", "relabel"}, default="remove"
        Remove the flagged rows, or give them the out-of-fold predicted class (riskier: it can
        plant systematic errors where the model is weak; its gain is measured for that action).
    max_fraction : float, default=0.3
        The most rows acted on, as a share of all rows.
    repeats : int, default=10
        Cross-fitted repeats (at least 2); fewer run when ``budget`` runs out. More repeats
        narrow the intervals that decide (Nadeau-Bengio's variance falls as ``1/J + 1/4``).
    holdout : float, default=0.2
        Share of the rows held out in each repeat.
    n_folds : int, default=5
        Folds of the out-of-fold probabilities and of the removal curve that chooses the count.
    neighbours : int, default=10
        Neighbours of the neighbour signal and the outlier distance.
    n_estimators : int, default=100
        Data-OOB's bagged trees.
    n_random : int, default=3
        Random draws of the random-removal baseline.
    budget : float, optional
        Seconds: repeats stop early (never below 2) when the next would pass it, judged by the
        slowest repeat so far.
    seed : int, default=0
        Every split, fold, bag and random draw comes from it.
    progress : callable, optional
        ``progress(description, done, total)``.
    log : callable, optional
        Receives one line per decision.

    Returns
    -------
    CleanResult

    Raises
    ------
    DataworthError
        Bad arguments, or a class with too few rows to hold any out.

    References
    ----------
    Nadeau, C. and Bengio, Y. "Inference for the Generalization Error", Machine Learning 52, 2003.
    Northcutt, C., Jiang, L. and Chuang, I. "Confident Learning: Estimating Uncertainty in
    Dataset Labels", JAIR 70, 2021.
    Natarajan, N. et al. "Learning with Noisy Labels", NeurIPS 2013.
    Kwon, Y. and Zou, J. "Data-OOB: Out-of-bag Estimate as a Simple and Efficient Data Value",
    ICML 2023.

    Examples
    --------
    >>> import dataworth as dw
    >>> task = dw.load_dataset("breast_cancer", train_size=300, seed=0)
    >>> result = dw.clean(task, repeats=2, n_estimators=20, seed=0)
    >>> len(result.score) == task.n_train
    True
    """
    started = perf_counter()
    _check(action, max_fraction, repeats, holdout)
    get_metric(metric)  # a one-line error for an unknown name
    X, codes, class_names, ids = _rows(data, y)
    n_held = int(np.ceil(holdout * len(codes)))
    stratified_folds(codes, n_folds, seed)  # too rare a class: one line before any fit
    counts = np.bincount(codes, minlength=len(class_names))
    if counts.min() < 3:
        # A repeat holds rows out and then needs two of each class in the rest for its folds.
        rare = class_names[int(counts.argmin())]
        raise DataworthError(
            f"Class {rare!r} has only {counts.min()} row(s): too few to hold any out and still "
            "value the rest; cleaning needs at least 3 rows of every class (drop or merge it)."
        )
    if np.bincount(codes).min() < 2 or n_held < len(class_names):
        raise DataworthError(
            f"Too few rows to hold {holdout:.0%} out with every class represented; "
            "give more rows or a larger holdout."
        )
    settings = Settings(
        class_names=class_names,
        learner=make_learner(model, seed=seed),
        metric=metric,
        action=action,
        max_fraction=max_fraction,
        n_folds=n_folds,
        neighbours=neighbours,
        n_estimators=n_estimators,
        n_random=n_random,
        curve_fractions=tuple(f for f in CURVE_FRACTIONS if f <= max_fraction + 1e-12),
    )
    split_seed, final_seed, repeat_seeds = _seeds(seed, int(repeats))
    say = log or (lambda message: None)
    tick = progress or (lambda description, done, total: None)
    total = int(repeats) + 1
    timings: dict[str, float] = {}

    tick("clean: valuing every row", 0, total)
    t0 = perf_counter()
    final = decide(X, codes, settings, final_seed)
    timings["final"] = perf_counter() - t0
    say(f"clean: every row valued; the removal curve on folds chose {final.fraction:.1%}")

    splitter = StratifiedShuffleSplit(
        n_splits=int(repeats), test_size=n_held, random_state=split_seed
    )
    outcomes: list[RepeatOutcome] = []
    for j, (train, held) in enumerate(splitter.split(np.zeros(len(codes)), codes)):
        spent = perf_counter() - started
        # The slowest repeat so far predicts the next (repeats differ with the share chosen).
        slowest = max((o.seconds for o in outcomes), default=0.0)
        if budget is not None and j >= 2 and spent + slowest > budget:
            say(f"clean: budget reached after {j} of {repeats} repeats")
            break
        tick(f"clean: held-out repeat {j + 1}/{repeats}", j + 1, total)
        outcomes.append(run_repeat(X, codes, train, held, settings, repeat_seeds[j]))
        o = outcomes[-1]
        say(
            f"clean: repeat {j + 1}: acted on {o.n_acted} rows, held-out {metric} "
            f"{o.before:.4f} -> {o.after:.4f} (random {o.random:.4f})"
        )
    timings["repeats"] = sum(o.seconds for o in outcomes)
    tick("clean: done", total, total)

    result = _result(X, codes, class_names, ids, final, outcomes, settings)
    timings["total"] = perf_counter() - started
    result.timings = timings
    result.seeds = {
        "seed": seed,
        "split": split_seed,
        "final": final_seed,
        "repeats": repeat_seeds[: len(outcomes)],
    }
    result.params = {
        "model": getattr(settings.learner, "name", str(model)),
        "metric": metric,
        "action": action,
        "max_fraction": max_fraction,
        "repeats": len(outcomes),
        "repeats_asked": int(repeats),
        "holdout": holdout,
        "n_folds": n_folds,
        "neighbours": neighbours,
        "n_estimators": n_estimators,
        "n_random": n_random,
        "budget": budget,
        "methods": list(METHODS),
        "fractions_considered": final.fractions,
        "fold_curve": final.fold_curve.tolist(),
    }
    say(f"clean: {result.decision}")
    return result


def _result(X, codes, class_names, ids, final, outcomes, settings: Settings) -> CleanResult:
    signals = final.signals
    names = np.array(class_names, dtype=object)
    result = CleanResult(
        ids=ids,
        labels=names[codes],
        suggested=names[signals.predicted],
        score=signals.score,
        flagged=np.zeros(len(codes), bool),
        reasons=signals.reasons(class_names, codes),
        action=settings.action,
        recommended=False,
        decision="",
        metric=settings.metric,
        repeats=outcomes,
        curve_fractions=settings.curve_fractions,
        fraction=final.fraction,
        signals=pd.DataFrame(
            {
                "p_label": signals.p_label,
                "data_oob": signals.oob,
                "neighbour_agreement": signals.agreement,
                "duplicate": signals.duplicate,
                "duplicate_conflict": signals.duplicate_conflict,
                "outlier": signals.outlier,
            }
        ),
    )
    result.class_names = class_names
    gain, check, over = result.gain, result.check_gain, result.check_over_random
    verb = "removing" if settings.action == "remove" else "relabelling"
    given = f"held-out {settings.metric} on the given labels"
    if not check.above_zero:
        result.decision = (
            f"No action recommended: the held-out gain of {verb} the suspects is within noise "
            f"or negative ({result.check_metric}: {check.mean:+.4f}, one-sided 95% lower bound "
            f"{check.low:+.4f})."
        )
    elif not over.above_zero:
        result.decision = (
            f"No action recommended: {verb} the suspects is not verifiably better than {verb} "
            f"as many random rows ({result.check_metric}: {over.mean:+.4f}, one-sided 95% "
            f"lower bound {over.low:+.4f})."
        )
    elif not gain.mean >= 0:
        result.decision = (
            f"No action recommended: the {given} fell on average ({gain.mean:+.4f}, 95% "
            f"{gain.low:+.4f} to {gain.high:+.4f}), although the noise-corrected gain was "
            "positive: the estimated noise is not to be trusted over the given labels."
        )
    elif final.n_acted == 0:
        result.decision = "No action recommended: on all the rows no share beats acting on none."
    else:
        result.recommended = True
        result.flagged[final.order[: final.n_acted]] = True
        result.decision = (
            f"Action recommended: {verb} {final.n_acted} rows ({final.fraction:.1%}) gained "
            f"{check.mean:+.4f} {result.check_metric} (one-sided 95% lower bound "
            f"{check.low:+.4f}; over as many random rows {over.mean:+.4f}, lower bound "
            f"{over.low:+.4f}); {given} {gain.mean:+.4f} (95% {gain.low:+.4f} to "
            f"{gain.high:+.4f})."
        )
    return result
