"""Compiled CART kernels for Data-OOB's bagged trees (imported only when Numba is).

One unpruned classification tree is grown breadth first, a level at a time, from the features'
orders sorted once for all trees (the presorting of SLIQ; Mehta, Agrawal and Rissanen, EDBT
1996). At each level one pass per feature over the rows still in unfinished nodes, in that
feature's order, accumulates each node's left-hand class weights and scores every threshold
between consecutive distinct values; nothing is sorted again. The splits are scikit-learn's
``DecisionTreeClassifier`` defaults: the Gini criterion on ``sample_weight``, every feature at
every node, a threshold halfway between two values more than ``FEATURE_GAP`` apart, nodes split
until pure or holding one distinct row. Equal best splits are broken as scikit-learn breaks them:
the lowest threshold within a feature, and among features the first in an order drawn at random
per node (here a hash of the tree's seed, the node and the feature).

Module-level functions, so that Numba's on-disk cache (``cache=True``) serves every later process.
"""

from __future__ import annotations

import numba
import numpy as np

# scikit-learn's FEATURE_THRESHOLD: values closer than this are not split apart.
FEATURE_GAP = 1e-7
_NO_CHILD = -1

njit = numba.njit(cache=True, nogil=True)


@njit
def _priority(seed, node, feature):
    """A 64-bit hash (SplitMix64's finaliser) ranking a feature among a node's equal splits."""
    z = np.uint64(seed) ^ (np.uint64(node) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(feature))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit
def _argmax_first(row):
    best = 0
    for k in range(1, row.shape[0]):
        if row[k] > row[best]:
            best = k
    return best


@njit
def _classes_present(row):
    present = 0
    for k in range(row.shape[0]):
        if row[k] > 0.0:
            present += 1
    return present


@njit
def grow_tree(X, order, y, weight, n_classes, seed):
    """Grow one tree on the rows of positive ``weight``.

    Parameters
    ----------
    X : float32 array (n, d)
        The features as scikit-learn's trees see them (float32).
    order : int32 array (d, n)
        ``order[f]`` sorts the rows by feature ``f`` (all rows; shared by every tree).
    y : int64 array (n,)
        Class codes ``0 .. n_classes - 1``.
    weight : float64 array (n,)
        Each row's weight (a bootstrap count); rows of weight 0 are not in the tree.
    n_classes : int
    seed : int
        Breaks ties between features.

    Returns
    -------
    feature, threshold, left, right, label : arrays over the nodes
        ``left[i] == -1`` marks a leaf, whose predicted class is ``label[i]``.
    """
    n, d = X.shape
    cap = 2 * n + 1
    feature = np.full(cap, -1, np.int32)
    threshold = np.zeros(cap)
    left_child = np.full(cap, _NO_CHILD, np.int32)
    right_child = np.full(cap, _NO_CHILD, np.int32)
    label = np.zeros(cap, np.int32)

    node_of = np.full(n, -1, np.int32)  # the row's node at this level (level-local), or -1
    root_totals = np.zeros((1, n_classes))
    root_rows = 0
    for i in range(n):
        if weight[i] > 0.0:
            root_totals[0, y[i]] += weight[i]
            root_rows += 1
    label[0] = _argmax_first(root_totals[0])
    n_nodes = 1
    if root_rows < 2 or _classes_present(root_totals[0]) < 2:
        return feature[:1], threshold[:1], left_child[:1], right_child[:1], label[:1]
    for i in range(n):
        if weight[i] > 0.0:
            node_of[i] = 0

    # The rows still in play, in each feature's order (compacted as nodes finish).
    length = root_rows
    rows = np.empty((d, length), np.int32)
    values = np.empty((d, length), np.float32)
    for f in range(d):
        j = 0
        for r in range(n):
            i = order[f, r]
            if node_of[i] >= 0:
                rows[f, j] = i
                values[f, j] = X[i, f]
                j += 1

    level_ids = np.zeros(1, np.int32)  # global id of each level-local node
    totals = root_totals
    while level_ids.shape[0] > 0:
        m = level_ids.shape[0]
        node_weight = np.zeros(m)
        for a in range(m):
            for k in range(n_classes):
                node_weight[a] += totals[a, k]
        best_score = np.full(m, -np.inf)
        best_feature = np.full(m, -1, np.int32)
        best_threshold = np.zeros(m)
        best_rank = np.zeros(m, np.uint64)
        best_left = np.zeros((m, n_classes))
        best_left_rows = np.zeros(m, np.int64)
        left = np.zeros((m, n_classes))
        left_weight = np.zeros(m)
        left_rows = np.zeros(m, np.int64)
        last = np.zeros(m, np.float32)
        rank = np.zeros(m, np.uint64)
        for f in range(d):
            left[:, :] = 0.0
            left_weight[:] = 0.0
            left_rows[:] = 0
            for a in range(m):
                rank[a] = _priority(seed, level_ids[a], f)
            for j in range(length):
                i = rows[f, j]
                a = node_of[i]
                if a < 0:
                    continue
                x = values[f, j]
                if left_rows[a] > 0 and np.float64(x) > np.float64(last[a]) + FEATURE_GAP:
                    w_left = left_weight[a]
                    w_right = node_weight[a] - w_left
                    sq_left = 0.0
                    sq_right = 0.0
                    for k in range(n_classes):
                        c = left[a, k]
                        sq_left += c * c
                        c = totals[a, k] - c
                        sq_right += c * c
                    score = sq_left / w_left + sq_right / w_right
                    if score > best_score[a] or (
                        score == best_score[a] and best_feature[a] != f and rank[a] < best_rank[a]
                    ):
                        best_score[a] = score
                        best_feature[a] = f
                        best_rank[a] = rank[a]
                        cut = np.float64(last[a]) / 2.0 + np.float64(x) / 2.0
                        if cut == np.float64(x) or np.isinf(cut):
                            cut = np.float64(last[a])
                        best_threshold[a] = cut
                        best_left[a, :] = left[a, :]
                        best_left_rows[a] = left_rows[a]
                left[a, y[i]] += weight[i]
                left_weight[a] += weight[i]
                left_rows[a] += 1
                last[a] = x

        # Split the level's nodes; children that can still split form the next level.
        child_local = np.full((m, 2), -1, np.int32)
        next_count = 0
        node_rows = np.zeros(m, np.int64)
        for i in range(n):
            if node_of[i] >= 0:
                node_rows[node_of[i]] += 1
        for a in range(m):
            if best_feature[a] < 0:
                continue  # every feature constant here: a leaf
            g = level_ids[a]
            feature[g] = best_feature[a]
            threshold[g] = best_threshold[a]
            for side in range(2):
                child = n_nodes
                n_nodes += 1
                if side == 0:
                    left_child[g] = child
                    counts = best_left[a]
                    child_rows = best_left_rows[a]
                else:
                    right_child[g] = child
                    counts = totals[a] - best_left[a]
                    child_rows = node_rows[a] - best_left_rows[a]
                label[child] = _argmax_first(counts)
                if child_rows >= 2 and _classes_present(counts) >= 2:
                    child_local[a, side] = next_count
                    next_count += 1
        next_ids = np.empty(next_count, np.int32)
        next_totals = np.zeros((next_count, n_classes))
        for a in range(m):
            g = level_ids[a]
            for side in range(2):
                b = child_local[a, side]
                if b >= 0:
                    next_ids[b] = left_child[g] if side == 0 else right_child[g]
                    if side == 0:
                        next_totals[b, :] = best_left[a, :]
                    else:
                        next_totals[b, :] = totals[a, :] - best_left[a, :]
        still = 0
        for i in range(n):
            a = node_of[i]
            if a < 0:
                continue
            if best_feature[a] < 0:
                node_of[i] = -1
                continue
            side = 0 if np.float64(X[i, best_feature[a]]) <= best_threshold[a] else 1
            node_of[i] = child_local[a, side]
            if node_of[i] >= 0:
                still += 1
        if 4 * still < 3 * length:  # drop finished rows once they are a quarter of the lists
            for f in range(d):
                j = 0
                for r in range(length):
                    i = rows[f, r]
                    if node_of[i] >= 0:
                        rows[f, j] = i
                        values[f, j] = values[f, r]
                        j += 1
            length = still
        level_ids = next_ids
        totals = next_totals
    return (
        feature[:n_nodes],
        threshold[:n_nodes],
        left_child[:n_nodes],
        right_child[:n_nodes],
        label[:n_nodes],
    )


@njit
def predict_rows(X, rows, feature, threshold, left_child, right_child, label):
    """The tree's class for each of ``rows`` of ``X`` (``x <= threshold`` goes left)."""
    out = np.empty(rows.shape[0], np.int32)
    for r in range(rows.shape[0]):
        i = rows[r]
        node = 0
        while left_child[node] != _NO_CHILD:
            if np.float64(X[i, feature[node]]) <= threshold[node]:
                node = left_child[node]
            else:
                node = right_child[node]
        out[r] = label[node]
    return out
