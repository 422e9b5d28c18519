"""The group game: players are groups of training points, ``v(T) = U(union of the groups in T)``.

Valid for overlapping groups too. Every method that values points values groups through it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dataworth.engine.game import Evaluation, accepts_chains, as_masks
from dataworth.errors import DataworthError


class GroupGame:
    """Wrap a utility (or game) so that its players are groups of points.

    Parameters
    ----------
    utility : Utility or Game
        The point-level game.
    groups : dict of str to array-like, or list of array-like
        Training positions in each group.
    """

    def __init__(self, utility, groups) -> None:
        if isinstance(groups, Mapping):
            names, members = [str(k) for k in groups], list(groups.values())
        else:
            members = list(groups)
            names = [f"group_{g}" for g in range(len(members))]
        if not members:
            raise DataworthError("No groups given; pass at least one group of training positions.")
        n = utility.n_players
        self.membership = np.zeros((len(members), n), dtype=bool)
        for g, (name, positions) in enumerate(zip(names, members, strict=True)):
            positions = np.asarray(positions, dtype=np.int64).reshape(-1)
            if positions.size == 0:
                raise DataworthError(f"Group {name!r} is empty; every group needs a point.")
            if positions.min() < 0 or positions.max() >= n:
                raise DataworthError(
                    f"Group {name!r} has positions outside 0..{n - 1}; give training positions."
                )
            self.membership[g, positions] = True
        self.utility = utility
        self.names = np.array(names, dtype=object)
        self.n_players = len(members)

    @property
    def sizes(self) -> np.ndarray:
        return self.membership.sum(axis=1)

    def point_masks(self, group_masks: np.ndarray) -> np.ndarray:
        """The training subsets that a batch of group coalitions stands for."""
        group_masks = as_masks(group_masks, self.n_players)
        return (group_masks.astype(np.int32) @ self.membership.astype(np.int32)) > 0

    def evaluate(self, masks, per_prediction: bool = False, chains=None) -> Evaluation:
        # A chain of group coalitions is a chain of point subsets: unions grow with the groups.
        point_masks = self.point_masks(masks)
        if chains is None or not accepts_chains(self.utility):
            return self.utility.evaluate(point_masks, per_prediction=per_prediction)
        return self.utility.evaluate(point_masks, per_prediction=per_prediction, chains=chains)

    @property
    def store(self):
        return getattr(self.utility, "store", None)

    @property
    def fingerprint(self) -> str | None:
        import hashlib

        inner = getattr(self.utility, "fingerprint", None)
        if inner is None:
            return None
        return hashlib.sha256(inner.encode() + np.packbits(self.membership).tobytes()).hexdigest()[
            :32
        ]

    def describe(self) -> dict:
        inner = self.utility.describe() if hasattr(self.utility, "describe") else {}
        return inner | {"players": "groups", "n_groups": self.n_players}
