"""Knockoff selection with false discovery rate control for AME (docs/design.md, section 5).

In the AME design every player's column is a ``Bernoulli(p_j)`` membership drawn independently
given ``p_j``. A knockoff of player ``i`` is a second, independent ``Bernoulli(p_j)`` column that
never entered the subsets: it is exchangeable with player ``i``'s column when player ``i`` has
no effect, so a null player beats its knockoff in the joint LASSO as often as it loses. The
statistic ``W_i = max(beta_i, 0) - max(beta_knockoff_i, 0)`` is then sign-symmetric for nulls,
and the Knockoff(+) threshold of Barber and Candès (2015) bounds the share of nulls among the
selected players by ``q`` (Knockoff+ bounds the FDR; plain Knockoff a modified FDR).

References
----------
Barber and Candès, "Controlling the false discovery rate via knockoffs", Annals of Statistics
2015. Candès, Fan, Janson and Lv, "Panning for gold: model-X knockoffs", JRSS-B 2018.
Lin et al., "Measuring the Effect of Training Data on Deep Learning Predictions via Randomized
Experiments", ICML 2022 (section on Knockoffs).
"""

from __future__ import annotations

import numpy as np

from dataworth.errors import DataworthError


def w_statistics(
    beta: np.ndarray, beta_knockoff: np.ndarray, *, side: str = "positive"
) -> np.ndarray:
    """One-sided knockoff statistics ``W_i = max(s beta_i, 0) - max(s beta_knockoff_i, 0)``.

    Parameters
    ----------
    beta, beta_knockoff : ndarray of shape (n,)
        Coefficients of the players and of their knockoffs in one joint LASSO.
    side : {"positive", "negative"}
        ``"positive"`` (``s = 1``) looks for players that raise the target (a poison that raises
        the target class's probability); ``"negative"`` (``s = -1``) for players that lower it.

    Returns
    -------
    ndarray of shape (n,)
        Large positive ``W`` means the player beat its knockoff.
    """
    beta = np.asarray(beta, dtype=np.float64)
    beta_knockoff = np.asarray(beta_knockoff, dtype=np.float64)
    if beta.shape != beta_knockoff.shape:
        raise DataworthError("Players and knockoffs need one coefficient each.")
    if side not in ("positive", "negative"):
        raise DataworthError(f"side must be 'positive' or 'negative'; got {side!r}.")
    sign = 1.0 if side == "positive" else -1.0
    return np.maximum(sign * beta, 0.0) - np.maximum(sign * beta_knockoff, 0.0)


def knockoff_threshold(w: np.ndarray, q: float, *, plus: bool = True) -> float:
    """The Knockoff (``plus=False``) or Knockoff+ threshold at target FDR ``q``.

    The smallest ``t`` among the nonzero ``|W_i|`` with
    ``(offset + #{W <= -t}) / #{W >= t} <= q``, where ``offset`` is 1 for Knockoff+ and 0 for
    plain Knockoff; ``inf`` when no ``t`` qualifies (nothing is selected).

    Parameters
    ----------
    w : ndarray of shape (n,)
        Knockoff statistics.
    q : float in [0, 1]
        Target false discovery rate.
    plus : bool, default=True
        Knockoff+ (controls the FDR itself; selects nothing when ``q < 1/#selected``) or plain
        Knockoff (controls ``E[V / (R + 1/q)]``; more liberal with few strong players).

    Returns
    -------
    float
    """
    if not 0.0 <= q <= 1.0:
        raise DataworthError(f"The target FDR q must lie in [0, 1]; got {q}.")
    w = np.asarray(w, dtype=np.float64)
    candidates = np.unique(np.abs(w[w != 0.0]))  # ascending
    if candidates.size == 0:
        return float("inf")
    offset = 1.0 if plus else 0.0
    # Counts for every candidate at once: sorted W lets searchsorted count the tails.
    ordered = np.sort(w)
    n_negative = np.searchsorted(ordered, -candidates, side="right")  # #{W <= -t}
    n_positive = len(ordered) - np.searchsorted(ordered, candidates, side="left")  # #{W >= t}
    with np.errstate(divide="ignore", invalid="ignore"):
        fdp = np.where(n_positive > 0, (offset + n_negative) / np.maximum(n_positive, 1), np.inf)
    ok = np.flatnonzero(fdp <= q)
    return float(candidates[ok[0]]) if ok.size else float("inf")


def knockoff_select(w: np.ndarray, q: float, *, plus: bool = True) -> np.ndarray:
    """Players selected at target FDR ``q``: ``W_i >= t`` for the Knockoff(+) threshold ``t``.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    w = np.asarray(w, dtype=np.float64)
    return w >= knockoff_threshold(w, q, plus=plus)
