"""AME's regression design: the encoded memberships and their per-``p`` centring."""

from __future__ import annotations

import numpy as np

from dataworth.errors import DataworthError
from dataworth.methods.sampler import PLaw


def encode(masks: np.ndarray, p: np.ndarray, encoding: str = "ipw", out=None) -> np.ndarray:
    """The regression design of a set of subsets.

    Parameters
    ----------
    masks : ndarray of bool, shape (m, n)
    p : ndarray of shape (m,)
    encoding : {"ipw", "centred"}
        ``"ipw"``: ``1/p`` for a member, ``-1/(1-p)`` otherwise (AME); ``"centred"``:
        ``x - p`` (AMESV).
    out : ndarray of float64, shape (m, n), optional
        Where to write the design (a block of a wider one), instead of a new array.

    Returns
    -------
    ndarray of shape (m, n), Fortran-ordered (what coordinate descent walks through).
    """
    p = np.asarray(p, dtype=np.float64)[:, None]
    if encoding == "ipw":
        member, other = 1.0 / p, -1.0 / (1.0 - p)
    elif encoding == "centred":
        member, other = 1.0 - p, 0.0 - p
    else:
        raise DataworthError(f"Unknown encoding {encoding!r}; use 'ipw' or 'centred'.")
    x = np.empty(masks.shape, order="F") if out is None else out
    # Written in place (no temporary of the design's size): every non-member, then members.
    np.copyto(x, np.broadcast_to(other, masks.shape))
    np.copyto(x, np.broadcast_to(member, masks.shape), where=masks)
    return x


def _design(
    masks: np.ndarray, knockoffs: np.ndarray | None, p: np.ndarray, encoding: str
) -> np.ndarray:
    """The encoded design, with the knockoff columns after the players' when given."""
    m, n = masks.shape
    x = np.empty((m, n * (2 if knockoffs is not None else 1)), order="F")
    encode(masks, p, encoding, out=x[:, :n])
    if knockoffs is not None:
        encode(knockoffs, p, encoding, out=x[:, n:])
    return x


def _p_strata(p: np.ndarray, law: PLaw, p_bins: int | None) -> np.ndarray:
    """Stratum of each sample for the per-``p`` centring.

    A discrete law has one stratum per value (exactly the per-``p`` intercepts of the
    authors' code). A continuous law has no repeated values, so quantile bins of ``p`` stand in:
    ``E[x_i | p] = 0`` for every ``p``, so removing any function of ``p`` from ``y`` leaves the
    coefficients' target unchanged and only takes the between-size variance out of the noise.
    """
    if law.discrete:
        return np.unique(p, return_inverse=True)[1]
    bins = p_bins if p_bins is not None else int(np.clip(len(p) // 100, 1, 10))
    if bins < 1:
        raise DataworthError(f"p_bins must be at least 1; got {p_bins}.")
    if bins == 1:
        return np.zeros(len(p), dtype=np.int64)
    edges = np.quantile(p, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.searchsorted(edges, p, side="right")


def _centre(a: np.ndarray, strata: np.ndarray, block: int = 1024) -> np.ndarray:
    """Subtract each stratum's column means from ``a`` (in place; ``a`` is 2-D).

    Column blocks bound the temporary to ``m x block`` whatever the design's width.
    """
    n_strata = int(strata.max()) + 1 if len(strata) else 0
    onehot = np.zeros((len(strata), n_strata))
    onehot[np.arange(len(strata)), strata] = 1.0
    counts = np.maximum(onehot.sum(axis=0), 1.0)[:, None]
    for start in range(0, a.shape[1], block):
        part = a[:, start : start + block]
        part -= ((onehot.T @ part) / counts)[strata]
    return a
