"""Small helpers shared by the methods: manifests, timers, player ids."""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

from dataworth.engine.game import Game
from dataworth.methods.result import package_versions


def manifest(game) -> dict:
    """What produced a result: package versions and the utility's identity."""
    described = game.describe() if hasattr(game, "describe") else {}
    return {"versions": package_versions(), **described}


def point_ids(game, positions: np.ndarray) -> np.ndarray:
    """Source ids of training positions (a plain game's players are their positions)."""
    if isinstance(game, Game) or not hasattr(game, "task"):
        return np.asarray(positions)
    return game.task.train_ids[positions]


def resolve_points(game, points, n_random: int | None, seed: int) -> np.ndarray:
    """Positions of the points to value: given ids, ``n_random`` drawn with the seed, or all."""
    from dataworth.errors import DataworthError

    n = game.n_players
    if points is not None and n_random is not None:
        raise DataworthError("Give either explicit points or a number of random points, not both.")
    if n_random is not None:
        if not 1 <= n_random <= n:
            raise DataworthError(f"The number of random points must be between 1 and {n}.")
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        return np.sort(rng.choice(n, size=n_random, replace=False))
    if points is None:
        return np.arange(n)
    if hasattr(game, "task"):
        return game.task.positions_of(points)
    positions = np.asarray(points, dtype=np.int64).reshape(-1)
    bad = positions[(positions < 0) | (positions >= n)]
    if bad.size:
        raise DataworthError(f"Player {bad[0]} does not exist; players are 0..{n - 1}.")
    return positions


class Timer:
    """Collects wall-clock seconds per phase into a dict."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
