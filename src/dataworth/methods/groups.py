"""Group builders: ways to cut the training set into (possibly overlapping) groups of points.

Each returns an ordered ``dict`` from a group's name to the training positions in it, the form
:func:`~dataworth.methods.loo.leave_group_out` and the group game take.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from dataworth.data.task import Task
from dataworth.errors import DataworthError

DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))


def random_groups(n: int, fractions=DEFAULT_FRACTIONS, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Random groups holding the given fractions of the ``n`` training points.

    Each group is drawn independently (so groups overlap), with its own stream of the seed.
    A fraction of 1.0 is the whole training set.

    Parameters
    ----------
    n : int
        Number of training points.
    fractions : sequence of float in (0, 1]
        Size of each group as a share of ``n`` (rounded, at least one point).
    seed : int
        Seed of the draws.
    """
    fractions = [float(f) for f in np.atleast_1d(fractions)]
    bad = [f for f in fractions if not 0.0 < f <= 1.0]
    if bad or not fractions:
        raise DataworthError(
            f"Group fractions must lie in (0, 1], e.g. 0.1,0.5,1.0; got {bad or fractions}."
        )
    streams = np.random.SeedSequence(seed).spawn(len(fractions))
    groups = {}
    for fraction, stream in zip(fractions, streams, strict=True):
        size = max(1, round(fraction * n))
        members = np.sort(np.random.default_rng(stream).choice(n, size=size, replace=False))
        groups[f"random_{round(100 * fraction)}%"] = members
    return groups


def groups_by_label(task: Task) -> dict[str, np.ndarray]:
    """One group per class: the training points with that label."""
    return {
        f"label={name}": np.flatnonzero(task.y_train == c)
        for c, name in enumerate(task.class_names)
        if (task.y_train == c).any()
    }


def groups_by_feature(task: Task, feature: str, bins: int = 4) -> dict[str, np.ndarray]:
    """Quantile bins of one (encoded) feature."""
    if feature not in task.feature_names:
        raise DataworthError(
            f"Unknown feature {feature!r}; use a name from the task's feature_names "
            f"(e.g. {', '.join(task.feature_names[:3])})."
        )
    x = task.X_train[:, task.feature_names.index(feature)]
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    return {
        f"{feature} in [{edges[b]:.3g}, {edges[b + 1]:.3g}]": np.flatnonzero(which == b)
        for b in range(len(edges) - 1)
        if (which == b).any()
    }


def groups_by_cluster(task: Task, k: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """k-means clusters of the training features."""
    if not 2 <= k <= task.n_train:
        raise DataworthError(f"The number of clusters must be between 2 and {task.n_train}.")
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(task.X_train)
    return {f"cluster_{c}": np.flatnonzero(labels == c) for c in range(k) if (labels == c).any()}


def groups_by_column(task: Task, column: str) -> dict[str, np.ndarray]:
    """One group per value of a column of the user's source data (for example a data source)."""
    raw = task.metadata.get("raw_train")
    if raw is None or column not in raw.columns:
        known = [] if raw is None else list(raw.columns)[:5]
        raise DataworthError(
            f"Column {column!r} is not in the training data's source columns"
            + (f" (e.g. {', '.join(map(str, known))})." if known else ".")
        )
    values = raw[column].astype(str).to_numpy()
    return {f"{column}={v}": np.flatnonzero(values == v) for v in dict.fromkeys(values)}


def build_groups(task: Task, spec: str, *, fractions=DEFAULT_FRACTIONS, seed: int = 0):
    """Groups from a command-line specification.

    ``random`` (the given fractions), ``label``, ``feature:NAME``, ``cluster:K`` or
    ``column:NAME``.
    """
    kind, _, arg = spec.partition(":")
    if kind == "random" and not arg:
        return random_groups(task.n_train, fractions, seed=seed)
    if kind == "label" and not arg:
        return groups_by_label(task)
    if kind == "feature" and arg:
        return groups_by_feature(task, arg)
    if kind == "cluster" and arg.isdigit():
        return groups_by_cluster(task, int(arg), seed=seed)
    if kind == "column" and arg:
        return groups_by_column(task, arg)
    raise DataworthError(
        f"Unknown grouping {spec!r}; use random, label, feature:NAME, cluster:K or column:NAME."
    )
