"""Held-out accuracy on the true labels, estimated from noisy ones through a noise matrix.

The held-out rows that measure a cleaning's gain carry the user's labels, noise included. Under
class-conditional noise (a row of true class ``k`` is given label ``j`` with probability
``T[k, j]``, whatever its features) the joint of a model's prediction ``a`` and the given label
``j`` on held-out rows is ``C~ = C T``, with ``C[a, k]`` the joint of prediction and true class;
so ``C = C~ T^-1`` and the accuracy on the true labels is ``trace(C~ T^-1)``: each held-out row
scores ``W[j, a]``, ``W = T^-1`` (Natarajan et al., NeurIPS 2013; Patrini et al., CVPR 2017).
Symmetric noise makes ``W = alpha I + beta 11^T``: every paired difference is scaled by the same
``alpha``, so a test of the difference is unchanged. Only noise that favours some classes (the
class-conditional case, where the noisy held-out labels reward the model that learned the noise)
changes what the held-out rows say.

``T`` is estimated on the rows being cleaned, never on the held-out ones, by confident
learning's calibrated confident joint (Northcutt, Jiang and Chuang, JAIR 70, 2021) on the
out-of-fold probabilities: a row given label ``j`` counts towards true class ``k`` when its
probability of ``k`` reaches ``k``'s threshold (the mean probability of ``k`` over the rows given
``k``), the most probable such ``k`` if several do; each given label's counts are then scaled to
its number of rows. Anchor rows (Patrini et al., CVPR 2017), the rows most surely of each class,
would estimate ``T`` from a model's most confident probabilities, but a logistic model
extrapolates to near-certain probabilities even when a third of a class's labels are wrong.
"""

from __future__ import annotations

import numpy as np

#: ``T`` is used only when every true class keeps at least this share of its labels, the
#: identifiability condition of the correction (more noise than signal cannot be inverted).
MIN_DIAGONAL = 0.5


def confident_transition(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The noise matrix ``T[k, j] = P(given j | true k)`` from the confident joint (the module).

    Parameters
    ----------
    proba : ndarray of shape (n, C)
        Out-of-fold probabilities of the rows being cleaned.
    y : ndarray of int, shape (n,)
        Their given labels.

    Returns
    -------
    ndarray of shape (C, C)
        Rows sum to one; a class no row is counted towards keeps the identity's row.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.9, 0.1]])
    >>> confident_transition(proba, np.array([0, 0, 1, 1])).round(2).tolist()
    [[0.67, 0.33], [0.0, 1.0]]
    """
    C = proba.shape[1]
    given = np.bincount(y, minlength=C)
    thresholds = np.array([proba[y == k, k].mean() if given[k] else np.inf for k in range(C)])
    above = proba >= thresholds[None, :]
    counted = above.any(axis=1)
    true = np.where(above, proba, -np.inf).argmax(axis=1)
    joint = np.zeros((C, C))  # joint[given j, true k]
    np.add.at(joint, (y[counted], true[counted]), 1.0)
    totals = joint.sum(axis=1, keepdims=True)
    joint = np.divide(joint * given[:, None], totals, out=np.zeros_like(joint), where=totals > 0)
    column = joint.sum(axis=0)  # rows of each true class
    T = np.eye(C)
    has = column > 0
    T[has] = joint[:, has].T / column[has, None]
    return T


def correction_weights(T: np.ndarray) -> np.ndarray:
    """``W = T^-1``, or the identity when ``T`` fails the identifiability condition.

    Returns
    -------
    ndarray of shape (C, C)
        ``W[j, a]`` is what a held-out row given label ``j`` and predicted ``a`` scores.
    """
    if np.diag(T).min() <= MIN_DIAGONAL or np.linalg.cond(T) > 1e6:
        return np.eye(len(T))
    return np.linalg.inv(T)


def corrected_accuracy(predicted: np.ndarray, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The estimated true-label accuracy of each model's predictions.

    Parameters
    ----------
    predicted : ndarray of int, shape (K, n)
        Each model's predicted class on the held-out rows.
    y : ndarray of int, shape (n,)
        The held-out rows' given labels.
    W : ndarray of shape (C, C)
        From :func:`correction_weights` (the identity gives the plain accuracy).

    Returns
    -------
    ndarray of shape (K,)

    Examples
    --------
    >>> import numpy as np
    >>> corrected_accuracy(np.array([[0, 1, 1]]), np.array([0, 1, 0]), np.eye(2))
    array([0.66666667])
    """
    return W[y[None, :], predicted].mean(axis=1)
