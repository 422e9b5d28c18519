"""The players AME values: the training points, or groups of them in or out as a whole."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dataworth.engine.group_game import GroupGame
from dataworth.methods._common import point_ids


class PlayerGame(GroupGame):
    """The group game keyed as AME keys its journals; kept for code that builds it by this name.

    ``PlayerGame(utility, members, names)`` is
    ``GroupGame(utility, members, names=names, fingerprint_from="members")``.

    Parameters
    ----------
    utility : Utility or Game
        The game on training points.
    members : sequence of array-like of int
        Training positions of each player (players may overlap).
    names : sequence of str
        One name per player.
    """

    def __init__(self, utility, members: Sequence, names: Sequence[str]) -> None:
        super().__init__(utility, list(members), names=names, fingerprint_from="members")


def _players(utility, groups) -> tuple[object, np.ndarray, dict]:
    """The game to sample and its players' ids: the points, or the groups."""
    if groups is None:
        positions = np.arange(utility.n_players)
        return utility, point_ids(utility, positions), {"position": positions}
    # AME's journals are keyed by the groups' positions (see GroupGame's fingerprint_from).
    game = GroupGame(utility, groups, fingerprint_from="members")
    return game, np.array(game.names, dtype=object), {"size": game.sizes}
