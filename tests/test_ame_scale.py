"""AME at scale: what the hierarchical estimator computes at each level."""

from __future__ import annotations

import numpy as np

from dataworth.engine.game import Game
from dataworth.methods.ame import ame_hierarchical


def _linear_game(n: int, seed: int) -> tuple[Game, np.ndarray]:
    w = np.zeros(n)
    w[[3, 14, 27]] = 1.0
    noise = np.random.default_rng(seed)
    return Game(lambda m: m @ w + 0.2 * noise.standard_normal(len(m)), n), w


def test_hierarchical_levels_compute_no_interval_unless_asked():
    """Level 2 runs like level 1 and like ``ame``: the bootstrap intervals (several times the
    estimate's cost) only when asked for."""
    game, _ = _linear_game(60, 0)
    groups = {f"g{g}": np.arange(g * 6, (g + 1) * 6) for g in range(10)}
    out = ame_hierarchical(
        game, groups, n_subsets_groups=200, n_subsets_points=300, fdr=None, cv=5, n_alphas=30
    )
    assert out.points is not None
    for level in (out.groups, out.points):
        assert level.ci_low is None and level.ci_high is None
        assert "n_boot" not in level.params
        assert "intervals" not in level.timings or level.timings["intervals"] < 0.5
