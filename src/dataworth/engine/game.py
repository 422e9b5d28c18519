"""Games: anything that maps a batch of subsets to scores (docs/design.md, section 1)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dataworth.errors import DataworthError


@dataclass(frozen=True)
class Evaluation:
    """Scores of a batch of subsets.

    Attributes
    ----------
    scores : ndarray of shape (K,)
        The metric (or game value) of each subset.
    per_prediction : ndarray of shape (K, T) or None
        Per-test-row scores, when they were asked for.
    fallback : ndarray of bool, shape (K,)
        Where the degenerate-subset policy produced the score instead of a fitted model.
    n_fitted : int
        Subsets fitted in this call (not found in the store, duplicates counted once).
    n_cached : int
        Subsets answered from the store.
    """

    scores: np.ndarray
    per_prediction: np.ndarray | None
    fallback: np.ndarray
    n_fitted: int = 0
    n_cached: int = 0

    @property
    def n_fallback(self) -> int:
        return int(self.fallback.sum())


def accepts_chains(game) -> bool:
    """Whether ``game.evaluate`` takes ``chains`` of nested subsets (a user's game may not)."""
    try:
        return "chains" in inspect.signature(game.evaluate).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def as_masks(masks, n_players: int) -> np.ndarray:
    """Validate a batch of subsets and return it as a C-ordered ``(K, n_players)`` bool array."""
    masks = np.asarray(masks)
    if masks.ndim == 1:
        masks = masks[None, :]
    if masks.ndim != 2 or masks.shape[1] != n_players:
        raise DataworthError(
            f"Subsets must be a boolean matrix with {n_players} columns; got shape {masks.shape}."
        )
    if masks.dtype != bool:
        if not np.isin(masks, (0, 1)).all():
            raise DataworthError("Subset masks must contain only 0/1 or True/False.")
        masks = masks.astype(bool)
    return np.ascontiguousarray(masks)


class Game:
    """A plain function of the subset mask, usable wherever a :class:`Utility` is.

    Parameters
    ----------
    fn : callable
        ``fn(masks)`` with ``masks`` a boolean ``(K, n_players)`` array, returning ``K`` scores.
    n_players : int
        Number of players (columns of the masks).
    name : str
        A label for results.

    Examples
    --------
    >>> import numpy as np
    >>> g = Game(lambda m: m.sum(axis=1).astype(float), n_players=3)
    >>> g.evaluate(np.ones((1, 3), bool)).scores
    array([3.])
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], n_players: int, name: str = "game"):
        if n_players < 1:
            raise DataworthError("A game needs at least one player.")
        self.fn = fn
        self.n_players = int(n_players)
        self.name = name

    @property
    def fingerprint(self) -> str | None:
        return None  # a Python function has no stable identity; its values are never stored

    def evaluate(self, masks, per_prediction: bool = False, chains=None) -> Evaluation:
        """Scores of each subset; ``per_prediction`` is not available for a plain game.

        ``chains`` (labels of nested subsets, see :meth:`Utility.evaluate`) are accepted and
        ignored: a function has nothing to warm-start.
        """
        if per_prediction:
            raise DataworthError("A plain Game has no per-prediction scores; use a Utility.")
        masks = as_masks(masks, self.n_players)
        scores = np.asarray(self.fn(masks), dtype=np.float64).reshape(-1)
        if scores.shape != (len(masks),):
            raise DataworthError(
                f"The game returned {scores.size} scores for {len(masks)} subsets."
            )
        return Evaluation(scores, None, np.zeros(len(masks), bool), n_fitted=len(masks))

    def describe(self) -> dict:
        return {"game": self.name, "n_players": self.n_players}
