"""Data-OOB: each point's out-of-bag accuracy in a bagged ensemble (Kwon and Zou, ICML 2023).

A bagged ensemble fits ``B`` models, model ``b`` on a bootstrap sample of the training set (``n``
rows drawn with replacement, so row ``i`` carries an integer weight ``w_bi``, its number of
copies). A point is *out of bag* for model ``b`` when ``w_bi = 0``; its Data-OOB value is the
mean, over those models, of ``1[model_b predicts the point's label]``::

    psi(i) = sum_b 1[w_bi = 0] * 1[f_b(x_i) = y_i] / sum_b 1[w_bi = 0]

A point whose label disagrees with what the rest of the data says (a flipped label, an outlier)
is predicted wrongly by models that never saw it, so it gets a low value. Each point is out of
about ``B * (1 - 1/n)^n``, roughly ``0.37 B``, of the bags.

Data-OOB is not a function of a test-set utility: the models are scored on the training rows
they did not see, so the method fits its models itself instead of asking the engine for
``U(S)``.

From ``TREES_MIN_ROWS`` training rows, the default bagged decision trees are grown by compiled
kernels (:mod:`dataworth.methods.trees.bagged`): the same bags as the per-bag path, the features
sorted once for every tree, each tree grown a level at a time on a pool of threads. Their trees
are scikit-learn's up to how equal best splits are broken, so values differ from the per-bag
path's only where such ties decide an out-of-bag prediction. Without Numba they are grown as
scikit-learn random forests with ``bootstrap=True`` and every feature at each split (which is
bagging), each tree's bootstrap counts recovered from its ``random_state``
(:mod:`dataworth.methods.trees.forest_bags`); those bags are scikit-learn's, so values differ
from the other paths' by the Monte Carlo noise of a different draw. Smaller tasks keep the per-bag
path and its values.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import has_fit_parameter
from threadpoolctl import threadpool_limits

from dataworth.data.task import Task
from dataworth.errors import DataworthError
from dataworth.learners.registry import make_estimator
from dataworth.methods._common import Timer
from dataworth.methods.result import ValuationResult, package_versions
from dataworth.methods.trees.bagged import bootstrap_counts, open_bag, tree_oob_bags
from dataworth.methods.trees.forest_bags import forest_oob_bags

__all__ = ["TREES_MIN_ROWS", "bootstrap_counts", "data_oob"]

# From this many training rows the default trees are grown as random forests (see above).
TREES_MIN_ROWS = 5000
# The paths, as ``params["path"]`` names them.
_TREES, _FOREST, _PER_BAG = "compiled trees", "random forest", "per-bag fits"


def _as_task(utility_or_task) -> Task:
    if isinstance(utility_or_task, Task):
        return utility_or_task
    task = getattr(utility_or_task, "task", None)
    if isinstance(task, Task):
        return task
    raise DataworthError(
        "data_oob needs a Task or a Utility (a plain Game has no training rows to predict)."
    )


def _seeded(estimator: ClassifierMixin, model_seed: int) -> ClassifierMixin:
    """A clone with every ``random_state`` set to the bag's seed (diverse, reproducible trees)."""
    names = [k for k in estimator.get_params(deep=True) if k.endswith("random_state")]
    model = clone(estimator)
    return model.set_params(**dict.fromkeys(names, model_seed)) if names else model


def _fit_bags(estimator, task, seed: int, n_estimators: int, weighted: bool, n_jobs) -> list:
    """Every bag fitted on its own: ``(oob rows, hits, fallback)`` per bag, in bag order."""
    args = (estimator, task.X_train, task.y_train, task.n_classes, seed)
    if n_jobs is None or n_jobs == 1:
        # Many small fits: BLAS threads only add synchronisation to each (a 200-row logistic
        # regression ran 20x slower with them on a busy machine).
        with threadpool_limits(limits=1, user_api="blas"):
            return [_fit_bag(*args, b, weighted) for b in range(n_estimators)]
    from joblib import Parallel, delayed  # its worker processes already run one BLAS thread

    return Parallel(n_jobs=n_jobs)(
        delayed(_fit_bag)(*args, b, weighted) for b in range(n_estimators)
    )


def _fit_bag(
    estimator: ClassifierMixin,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    seed: int,
    index: int,
    weighted: bool,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Out-of-bag rows of bag ``index`` and whether its model predicts each one correctly."""
    counts, model_seed, oob, done = open_bag(seed, index, y, n_classes)
    if done is not None:
        return done
    model = _seeded(estimator, model_seed)
    if weighted:
        rows = np.flatnonzero(counts)
        model.fit(X[rows], y[rows], sample_weight=counts[rows].astype(np.float64))
    else:
        model.fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    return oob, np.asarray(model.predict(X[oob])) == y[oob], False


def data_oob(
    utility_or_task,
    n_estimators: int = 200,
    *,
    seed: int = 0,
    learner: Any = None,
    use_sample_weight: bool | None = None,
    n_jobs: int | None = None,
) -> ValuationResult:
    """Data-OOB values: each training point's out-of-bag accuracy (Kwon and Zou, ICML 2023).

    Parameters
    ----------
    utility_or_task : Task or Utility
        The training rows (for a Utility, its task; its learner and metric are not used, see
        ``learner``).
    n_estimators : int, default=200
        Number of bootstrap samples (models) ``B``.
    seed : int, default=0
        Bag ``b`` (its bootstrap sample and its model's ``random_state``) comes from
        ``SeedSequence(seed, spawn_key=(b,))``, so the values are the same for any ``n_jobs``.
    learner : str or scikit-learn classifier, optional
        The model fitted per bag. Default: an unpruned ``DecisionTreeClassifier``, so the
        ensemble is the bagged decision trees of the paper (from 5,000 rows, the same trees
        grown by compiled kernels, see above). A name from
        :func:`dataworth.learners.available_models` or any classifier; every ``random_state``
        parameter of it is set per bag from the seed.
    use_sample_weight : bool, optional
        How the integer bootstrap weights reach the model: as ``sample_weight`` on the distinct
        rows of the bag, or by repeating rows. Default: ``sample_weight`` when the model's
        ``fit`` accepts it (scikit-learn's ``LogisticRegression`` and trees do, and both then
        fit the same objective as on repeated rows), repeated rows otherwise. A bag's support
        (its distinct rows, unweighted) is never used in place of its weights.
    n_jobs : int, optional
        Bags fitted in parallel with joblib (``None``: one process), on joblib's current
        backend (processes by default; ``joblib.parallel_config(backend="threading")`` for
        threads). From 5,000 rows with the default trees, the threads growing them, ``None``
        there meaning every core this process may use (threads change no value).

    Returns
    -------
    ValuationResult
        Values in ``[0, 1]`` (out-of-bag accuracy, not the units of a test metric); ``stderr``
        is the Monte Carlo standard error over the point's out-of-bag models; ``counts`` and
        ``extra["n_oob"]`` the number of bags each point was out of. A point that was in every
        bag has no estimate (NaN, with a warning); raise ``n_estimators``.

    Notes
    -----
    The batched logistic regression of :mod:`dataworth.learners.logreg.learner` is not used: it fits
    0/1 subsets, and a bag's distinct rows are not its bootstrap weights.

    References
    ----------
    Kwon, Y. and Zou, J. "Data-OOB: Out-of-bag Estimate as a Simple and Efficient Data Value",
    ICML 2023.

    Examples
    --------
    >>> import dataworth as dw
    >>> from dataworth.methods.trees.oob import data_oob
    >>> task = dw.load_dataset("breast_cancer", train_size=200, seed=0)
    >>> result = data_oob(task, n_estimators=50, seed=0)
    >>> bool(((result.values >= 0) & (result.values <= 1)).all())
    True
    """
    task = _as_task(utility_or_task)
    if int(n_estimators) != n_estimators or n_estimators < 1:
        raise DataworthError(f"n_estimators must be a positive integer; got {n_estimators!r}.")
    n_estimators = int(n_estimators)
    estimator = DecisionTreeClassifier() if learner is None else make_estimator(learner, seed)
    supports_weight = has_fit_parameter(estimator, "sample_weight")
    weighted = supports_weight if use_sample_weight is None else bool(use_sample_weight)
    if weighted and not supports_weight:
        raise DataworthError(
            f"{type(estimator).__name__}.fit takes no sample_weight; use use_sample_weight=False "
            "to repeat the bootstrap rows instead."
        )
    X, y, n = task.X_train, task.y_train, task.n_train
    timer = Timer()
    with timer.phase("fit"):
        bags, path = None, _PER_BAG
        if learner is None and weighted and n >= TREES_MIN_ROWS:
            bags, path = tree_oob_bags(X, y, task.n_classes, n_estimators, seed, n_jobs), _TREES
            if bags is None:  # without Numba, or with non-finite features
                bags, path = forest_oob_bags(X, y, n_estimators, seed, n_jobs), _FOREST
        if bags is None:
            bags, path = _fit_bags(estimator, task, seed, n_estimators, weighted, n_jobs), _PER_BAG

    correct, n_oob = np.zeros(n), np.zeros(n, dtype=np.int64)
    n_fallback = 0
    for oob, hit, fallback in bags:  # in bag order: sums do not depend on the workers
        correct[oob] += hit
        n_oob[oob] += 1
        n_fallback += int(fallback)
    seen = n_oob > 0
    values = np.full(n, np.nan)
    values[seen] = correct[seen] / n_oob[seen]
    stderr = np.full(n, np.nan)
    several = n_oob > 1
    v = values[several]
    stderr[several] = np.sqrt(v * (1.0 - v) / (n_oob[several] - 1))
    if not seen.all():
        warnings.warn(
            f"{int((~seen).sum())} of {n} points were in every one of the {n_estimators} bags "
            "and have no out-of-bag estimate (NaN); raise n_estimators.",
            RuntimeWarning,
            stacklevel=2,
        )
    return ValuationResult(
        method="data_oob",
        values=values,
        player_ids=task.train_ids,
        stderr=stderr,
        counts=n_oob,
        params={
            "n_estimators": n_estimators,
            "learner": type(estimator).__name__,
            "weights": "sample_weight" if weighted else "repeated rows",
            "path": path,
        },
        seed=seed,
        n_evaluations=n_estimators,
        n_fitted=n_estimators - n_fallback,
        n_fallback=n_fallback,
        timings=timer.seconds,
        manifest={
            "versions": package_versions(),
            "task": task.name,
            "task_fingerprint": task.fingerprint,
            "learner": repr(estimator),
            # The ensemble's own out-of-bag accuracy: how well the bagged model does at all.
            "oob_accuracy": float(correct.sum() / max(n_oob.sum(), 1)),
        },
        extra={"n_oob": n_oob},
    )
