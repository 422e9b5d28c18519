"""The players AME values: the training points, or groups of them in or out as a whole."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

from dataworth.engine.game import Evaluation, as_masks
from dataworth.errors import DataworthError
from dataworth.methods._common import point_ids


class PlayerGame:
    """The game whose players are sets of training points: ``v(T) = U(union of T's members)``.

    A group is in or out as a whole (docs/design.md, section 1, "Players"). A point is a set of
    one, so one object also serves the mixed players of the second hierarchical level.

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
        n = utility.n_players
        self.utility = utility
        self.members = [np.unique(np.asarray(m, dtype=np.int64).reshape(-1)) for m in members]
        self.names = [str(name) for name in names]
        if not self.members or len(self.names) != len(self.members):
            raise DataworthError("Give at least one group, and one name per group.")
        for name, member in zip(self.names, self.members, strict=True):
            if member.size == 0:
                raise DataworthError(f"Group {name!r} is empty; every group needs a point.")
            if member[0] < 0 or member[-1] >= n:
                raise DataworthError(f"Group {name!r} has positions outside 0..{n - 1}.")
        # float32 incidence: a matrix product counts members without integer overflow.
        self._incidence = np.zeros((len(self.members), n), dtype=np.float32)
        for g, member in enumerate(self.members):
            self._incidence[g, member] = 1.0
        self.store = getattr(utility, "store", None)
        self.task = getattr(utility, "task", None)

    @property
    def n_players(self) -> int:
        return len(self.members)

    @property
    def fingerprint(self) -> str | None:
        base = getattr(self.utility, "fingerprint", None)
        if base is None:
            return None
        digest = hashlib.sha256(base.encode())
        for member in self.members:
            digest.update(member.tobytes() + b"|")
        return digest.hexdigest()[:32]

    def point_masks(self, masks) -> np.ndarray:
        """Expand player masks ``(K, G)`` to training-point masks ``(K, n)``."""
        masks = as_masks(masks, self.n_players)
        return (masks.astype(np.float32) @ self._incidence) > 0.5

    def evaluate(self, masks, per_prediction: bool = False) -> Evaluation:
        return self.utility.evaluate(self.point_masks(masks), per_prediction=per_prediction)

    def describe(self) -> dict:
        described = self.utility.describe() if hasattr(self.utility, "describe") else {}
        return described | {"players": "groups", "n_groups": self.n_players}


def _as_group_lists(groups, n: int) -> tuple[list[str], list[np.ndarray]]:
    if isinstance(groups, Mapping):
        return [str(k) for k in groups], [np.asarray(v) for v in groups.values()]
    if isinstance(groups, Sequence | np.ndarray):
        return [f"group_{g}" for g in range(len(groups))], [np.asarray(v) for v in groups]
    raise DataworthError("Groups must be a dict name -> positions or a list of position arrays.")


def _players(utility, groups) -> tuple[object, np.ndarray, dict]:
    """The game to sample and its players' ids: the points, or the groups."""
    n = utility.n_players
    if groups is None:
        positions = np.arange(n)
        return utility, point_ids(utility, positions), {"position": positions}
    names, members = _as_group_lists(groups, n)
    game = PlayerGame(utility, members, names)
    sizes = np.array([len(m) for m in game.members])
    return game, np.array(game.names, dtype=object), {"size": sizes}
