"""The group game: players are groups of training points, ``v(T) = U(union of the groups in T)``.

Valid for overlapping groups too. Every method that values groups plays it (TMC and exact
Shapley, the semivalues, AME and its hierarchy), and every method's ``groups=`` argument is read by
:func:`parse_groups`, so all of them accept the same forms and give the same errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from dataworth.engine.game import Evaluation, accepts_chains, as_masks
from dataworth.errors import DataworthError

# What a game's fingerprint hashes besides the utility's: the (groups x points) membership matrix,
# or each group's sorted positions. The Shapley methods' journals were keyed by the first and
# AME's by the second; both are kept so that stores written before still resume their runs.
FINGERPRINTS = ("membership", "members")

_FORMS = (
    "give a dict of group name -> training positions (e.g. dw.build_groups(task, 'label')) "
    "or a list of position arrays"
)


def parse_groups(
    groups, n: int, names: Sequence[str] | None = None
) -> tuple[list[str], list[np.ndarray]]:
    """Read a ``groups=`` argument: each group's name and its training positions.

    Parameters
    ----------
    groups : dict of name to array-like, or iterable of array-like
        A dict (any mapping) from a group's name to its members, as the builders of
        :mod:`dataworth.methods.groups` return; or a list, tuple, array or other iterable of
        members, named ``group_0``, ``group_1``, ... Members are integer training positions
        (``0 .. n-1``; a scalar is a group of one, duplicates count once) or a boolean mask
        with one entry per training point. Groups may overlap.
    n : int
        Number of training points.
    names : sequence of str, optional
        Names for the groups of an iterable (instead of ``group_0``, ...).

    Returns
    -------
    names : list of str
    members : list of ndarray of int64
        Each group's sorted, distinct positions.

    Raises
    ------
    DataworthError
        If ``groups`` is of another kind, is empty, or a group is empty, holds something other
        than positions, or reaches outside ``0 .. n-1``.
    """
    if isinstance(groups, Mapping):
        found, members = [str(k) for k in groups], list(groups.values())
    elif isinstance(groups, str | bytes) or not isinstance(groups, Iterable):
        shown = repr(groups) if isinstance(groups, str | bytes) else type(groups).__name__
        raise DataworthError(f"Groups must be a dict or a list of groups, not {shown}; {_FORMS}.")
    else:
        members = list(groups)
        found = [f"group_{g}" for g in range(len(members))]
    if names is not None:
        if isinstance(groups, Mapping) or len(names) != len(members):
            raise DataworthError(
                f"Give one name per group of a list: {len(names)} names for {len(members)} groups."
            )
        found = [str(name) for name in names]
    if not members:
        raise DataworthError(f"No groups given; {_FORMS}.")
    return found, [_positions(name, member, n) for name, member in zip(found, members, strict=True)]


def _positions(name: str, member, n: int) -> np.ndarray:
    """One group's sorted distinct positions, or a one-line error naming the group."""
    try:
        values = np.asarray(member)
        if values.dtype == object:  # Python ints from a pandas object column, for one
            values = np.asarray(values.tolist())
    except (TypeError, ValueError):  # ragged nesting, for one
        values = None
    if values is None or values.dtype == object:
        raise DataworthError(
            f"Group {name!r} is not an array of training positions; give a flat list of them."
        )
    if values.dtype == bool:
        if values.ndim != 1 or values.size != n:
            raise DataworthError(
                f"Group {name!r} is a boolean mask of shape {values.shape}; a mask needs one "
                f"entry per training point ({n})."
            )
        values = np.flatnonzero(values)
    values = values.reshape(-1)
    if values.size == 0:
        raise DataworthError(f"Group {name!r} is empty; every group needs at least one point.")
    if values.dtype.kind not in "iu":
        if values.dtype.kind == "f":  # whole numbers in a float column pass
            wrong = ~np.isfinite(values) | (values != np.round(values))
        else:
            wrong = np.ones(values.shape, dtype=bool)
        if wrong.any():
            bad = values[wrong][0]
            shown = repr(bad.item() if isinstance(bad, np.generic) else bad)
            raise DataworthError(
                f"Group {name!r} holds {shown}, not a training position; give integer positions "
                f"0..{n - 1} (task.positions_of(ids) turns source ids into positions)."
            )
    positions = np.unique(values.astype(np.int64))
    if positions[0] < 0 or positions[-1] >= n:
        raise DataworthError(
            f"Group {name!r} has positions outside 0..{n - 1}; give training positions."
        )
    return positions


class GroupGame:
    """Wrap a utility (or game) so that its players are groups of points.

    A player is in or out of a coalition as a whole, and ``v(T)`` is the utility of the union of
    the groups in ``T`` (a point is a group of one, so one game also serves mixed players).

    Parameters
    ----------
    utility : Utility or Game
        The point-level game.
    groups : dict of str to array-like, or list of array-like
        Training positions in each group (see :func:`parse_groups` for every accepted form).
    names : sequence of str, optional
        Names of the groups of a list (default ``group_0``, ``group_1``, ...).
    fingerprint_from : {"membership", "members"}, default="membership"
        What the game's fingerprint hashes with the utility's: the membership matrix (the key
        of the Shapley methods' journals) or each group's positions (AME's journals).

    Attributes
    ----------
    names : ndarray of object
        The groups' names, in order.
    members : list of ndarray of int64
        Each group's sorted, distinct training positions.
    membership : ndarray of bool, shape (n_groups, n_points)
        Whether each point is in each group.
    """

    def __init__(
        self, utility, groups, *, names: Sequence[str] | None = None, fingerprint_from="membership"
    ) -> None:
        if fingerprint_from not in FINGERPRINTS:
            raise DataworthError(
                f"Unknown fingerprint_from {fingerprint_from!r}; use one of {FINGERPRINTS}."
            )
        n = utility.n_players
        found, self.members = parse_groups(groups, n, names)
        self.utility = utility
        self.names = np.array(found, dtype=object)
        self.n_players = len(self.members)
        self._fingerprint_from = fingerprint_from
        # float32 incidence: one BLAS product counts each point's groups, exactly (counts are
        # small integers), without the integer overflow or the slow integer matrix product.
        self._incidence = np.zeros((self.n_players, n), dtype=np.float32)
        for g, positions in enumerate(self.members):
            self._incidence[g, positions] = 1.0
        # Disjoint groups (AME's hierarchy: points and the rest of each group) need no product:
        # each point is in a coalition when its one group is, a gather of the mask's columns.
        counts = self._incidence.sum(axis=0)
        self._owner: np.ndarray | None = None
        if counts.max(initial=0.0) <= 1.0:
            self._owner = np.where(counts > 0.5, self._incidence.argmax(axis=0), -1)

    @property
    def membership(self) -> np.ndarray:
        return self._incidence > 0.5

    @property
    def sizes(self) -> np.ndarray:
        """Number of points in each group."""
        return np.array([len(positions) for positions in self.members])

    def point_masks(self, group_masks) -> np.ndarray:
        """The training subsets that a batch of group coalitions ``(K, n_groups)`` stands for."""
        group_masks = as_masks(group_masks, self.n_players)
        if self._owner is not None:
            covered = self._owner >= 0
            out = np.zeros((group_masks.shape[0], len(self._owner)), dtype=bool)
            out[:, covered] = group_masks[:, self._owner[covered]]
            return out
        return (group_masks.astype(np.float32) @ self._incidence) > 0.5

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
    def task(self):
        """The utility's task (absent, as ``hasattr`` sees it, for a plain game)."""
        return self.utility.task

    @property
    def fingerprint(self) -> str | None:
        inner = getattr(self.utility, "fingerprint", None)
        if inner is None:
            return None
        if self._fingerprint_from == "membership":
            digest = hashlib.sha256(inner.encode() + np.packbits(self.membership).tobytes())
        else:
            digest = hashlib.sha256(inner.encode())
            for positions in self.members:
                digest.update(positions.tobytes() + b"|")
        return digest.hexdigest()[:32]

    def describe(self) -> dict:
        inner = self.utility.describe() if hasattr(self.utility, "describe") else {}
        return inner | {"players": "groups", "n_groups": self.n_players}
