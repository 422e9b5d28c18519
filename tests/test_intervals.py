"""Confidence intervals, rank stability and stopping rules against games with known values.

The coverage tests measure, over many seeds, how often the 95% intervals hold the exact value
(exact enumeration of 10 players, or a closed form). Measured when written: TMC-Shapley with 30
permutations on a saturating game 97.3% (150 seeds); on the "any player" game (a player counts
only when first) 99.9% from 10 permutations, where two of a player's own standard errors cover
65%, and with 100 players 100% at 30 permutations where the player's own t-interval covers
26%; MSR Banzhaf with 100 subsets 93.7%; permutation Beta(4, 1) Shapley with 40 permutations
98.8%. The pooled floor of the permutation methods makes them conservative, never short.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dataworth.engine.game import Game
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.methods.ame import banzhaf
from dataworth.methods.intervals import MIN_PERMUTATIONS, t_interval
from dataworth.methods.loo import loo
from dataworth.methods.result import ValuationResult
from dataworth.methods.shapley import exact_semivalue, exact_shapley, tmc_shapley
from dataworth.methods.shapley.banzhaf import banzhaf_until
from dataworth.methods.shapley.beta import beta_shapley, exact_beta_shapley
from dataworth.methods.shapley.stopping import AllOf, MaxSamples, RankStable, RunState, TimeBudget
from dataworth.methods.stability import rank_stability

N = 10
W = np.linspace(0.1, 1.5, N)


def saturating() -> Game:
    """``1 - exp(-w . S)``: diminishing returns, so marginals depend on what came before."""
    return Game(lambda m: 1.0 - np.exp(-(m @ W)), n_players=N)


def any_player() -> Game:
    """1 as soon as anyone is in: a player counts only when first (heavy-tailed marginals)."""
    return Game(lambda m: (m.sum(axis=1) > 0).astype(float), n_players=N)


def quadratic(c: float, n: int = 12) -> Game:
    """Linear values plus ``c (v . S)^2``: the larger ``c``, the noisier the marginals."""
    w = np.linspace(0.1, 1.2, n)
    v = np.random.default_rng(0).choice([-1.0, 1.0], n)
    return Game(lambda m: m @ w + c * (m @ v) ** 2, n_players=n)


def coverage(results, truth) -> float:
    return float(np.mean([(r.ci_low <= truth) & (truth <= r.ci_high) for r in results]))


def test_t_interval_is_students():
    low, high = t_interval(np.array([1.0]), np.array([0.5]), 9)
    assert high[0] - 1.0 == pytest.approx(0.5 * 2.2621571627, rel=1e-9)
    assert low[0] == pytest.approx(2.0 - high[0])


def test_tmc_intervals_cover_exact_shapley_at_least_at_nominal():
    truth = exact_shapley(saturating()).values
    runs = [tmc_shapley(saturating(), permutations=30, tol=0, seed=s) for s in range(150)]
    assert 0.95 <= coverage(runs, truth) <= 0.995
    assert runs[0].ci_note.startswith("95% Student-t interval across permutations")


def test_heavy_tails_need_the_pooled_standard_error():
    truth = np.full(N, 1.0 / N)  # symmetric: every player is first 1/N of the time
    ten = [tmc_shapley(any_player(), permutations=10, tol=0, seed=s) for s in range(100)]
    # The naive interval the pooled floor replaces: two of a player's own standard errors.
    naive = np.mean([np.abs(r.values - truth) <= 2 * r.stderr for r in ten])
    assert naive < 0.8
    assert coverage(ten, truth) >= 0.95
    many = Game(lambda m: (m.sum(axis=1) > 0).astype(float), n_players=100)
    runs = [tmc_shapley(many, permutations=30, tol=0, seed=s) for s in range(20)]
    own = np.mean(
        [
            np.abs(r.values - 0.01) <= stats.t.ppf(0.975, 29) * r.stderr
            for r in runs  # a player never first has standard error 0
        ]
    )
    assert own < 0.5 and coverage(runs, np.full(100, 0.01)) >= 0.95


def test_too_few_permutations_give_no_interval_and_say_so():
    five = tmc_shapley(any_player(), permutations=5, tol=0)
    assert np.isnan(five.ci_low).all() and np.isnan(five.ci_high).all()
    assert five.ci_note == f"too few permutations for an interval (5 < {MIN_PERMUTATIONS})"
    few = banzhaf(saturating(), n_subsets=40, seed=0)
    assert np.isnan(few.ci_low).all() and few.ci_note.startswith("too few subsets")


def test_banzhaf_and_beta_shapley_intervals_cover_their_exact_values():
    game = saturating()
    exact_banzhaf = exact_semivalue(game, lambda n: np.full(n, 0.5 ** (n - 1))).values
    runs = [banzhaf(game, n_subsets=100, seed=s) for s in range(80)]
    assert 0.90 <= coverage(runs, exact_banzhaf) <= 0.99  # no pooled floor: near nominal
    truth = exact_beta_shapley(game, 4, 1).values
    runs = [
        beta_shapley(game, 4, 1, estimator="permutation", permutations=40, seed=s)
        for s in range(60)
    ]
    assert 0.93 <= coverage(runs, truth) <= 1.0


def test_exact_methods_say_so_and_their_interval_is_the_value(cancer_small):
    exact = exact_shapley(saturating())
    assert exact.exact
    np.testing.assert_array_equal(exact.ci_low, exact.values)
    np.testing.assert_array_equal(exact.ci_high, exact.values)
    points = loo(Utility(cancer_small, learner="knn"), n_random=5)
    assert points.exact and points.ci_note == "exact: no sampling error"
    frame = points.to_frame()
    np.testing.assert_array_equal(frame["ci_low"], frame["value"])


def test_intervals_round_trip_and_old_files_load(tmp_path):
    result = tmc_shapley(saturating(), permutations=40, tol=0, seed=3)
    stem = result.save(tmp_path / "tmc")
    back = ValuationResult.load(stem)
    np.testing.assert_array_equal(back.ci_low, result.ci_low)
    np.testing.assert_array_equal(back.ci_high, result.ci_high)
    assert back.ci_note == result.ci_note and not back.exact
    exact = ValuationResult.load(exact_shapley(saturating()).save(tmp_path / "exact"))
    assert exact.exact
    # A file written before intervals existed: no ci columns, no keys in the metadata.
    import json

    import pandas as pd

    frame = pd.read_parquet(stem.with_suffix(".parquet")).drop(columns=["ci_low", "ci_high"])
    frame.to_parquet(stem.with_suffix(".parquet"), index=False)
    meta = json.loads(stem.with_suffix(".json").read_text())
    for key in ("has_ci", "exact", "ci_note"):
        meta.pop(key)
    stem.with_suffix(".json").write_text(json.dumps(meta))
    old = ValuationResult.load(stem)
    assert old.ci_low is None and not old.exact
    assert old.to_frame()["ci_low"].isna().all()
    np.testing.assert_array_equal(old.values, result.values)


def test_rank_probabilities_match_a_brute_force_repetition():
    game = quadratic(0.15)
    runs = [tmc_shapley(game, permutations=60, tol=0, seed=s) for s in range(200)]
    values = np.array([r.values for r in runs])
    top = np.argsort(-values, axis=1)[:, :3]
    brute = np.bincount(top.ravel(), minlength=12) / len(runs)
    assert 0.05 < brute.max(initial=0, where=brute < 1) < 0.95  # a real boundary to judge
    boot = [rank_stability(r, k=3) for r in runs[:40]]
    # The bootstrap of one run centres on that run's values (a run that swaps the two
    # borderline players sees the swap as likely), so it is the mean over runs that must match.
    np.testing.assert_allclose(np.mean([b.top_prob for b in boot], axis=0), brute, atol=0.1)


def test_verdict_and_table():
    game = quadratic(0.0)  # additive: every permutation gives the same marginals
    stable = rank_stability(tmc_shapley(game, permutations=40, tol=0), k=3)
    assert stable.verdict().startswith(
        "Of the 3 highest values, 3 are distinguishable from the 4th at 95%; of the 3 lowest, 3"
    )
    frame = stable.to_frame()
    assert list(frame["player_id"][:3]) == [11, 10, 9]
    assert frame["probability"].eq(1.0).all()
    with pytest.raises(DataworthError, match="kept no per-sample draws"):
        rank_stability(exact_shapley(game))


def test_banzhaf_rank_stability_bootstraps_the_subsets():
    game = quadratic(0.0)
    runs = [banzhaf(game, n_subsets=200, seed=s) for s in range(200)]
    values = np.array([r.values for r in runs])
    brute = np.bincount(np.argsort(-values, axis=1)[:, :2].ravel(), minlength=12) / len(runs)
    boot = np.mean([rank_stability(r, k=2).top_prob for r in runs[:40]], axis=0)
    np.testing.assert_allclose(boot, brute, atol=0.1)


def test_until_ranks_stops_later_on_a_noisier_game():
    quiet = tmc_shapley(quadratic(0.02), until="ranks", rank_k=3, tol=0)
    noisy = tmc_shapley(quadratic(0.3), until="ranks", rank_k=3, tol=0)
    assert quiet.params["stopped_by"] == "top and bottom 3 stable at 90%"
    assert noisy.params["stopped_by"] == "top and bottom 3 stable at 90%"
    assert quiet.params["permutations"] < noisy.params["permutations"]
    assert rank_stability(noisy, k=3).top_overlap >= 0.9
    capped = tmc_shapley(quadratic(0.3), until="ranks", rank_k=3, tol=0, max_permutations=40)
    assert capped.params["stopped_by"] == "40 permutations"


def test_time_budget_and_fixed_counts_name_their_rule():
    fixed = tmc_shapley(saturating(), permutations=10)
    assert fixed.params["stopped_by"] == "10 permutations"
    timed = tmc_shapley(quadratic(0.3), until="ranks", rank_k=3, tol=0, time_budget=0.0)
    assert timed.params["stopped_by"] == "time budget 0 s"
    with pytest.raises(DataworthError, match="Unknown stopping rule"):
        tmc_shapley(saturating(), until="forever")


def test_rules_compose():
    state = RunState(used=50, started=0.0, values=np.zeros(3))
    either = MaxSamples(100) | TimeBudget(1.0)  # time since 0.0 is long past
    assert either(state) and either.fired == "time budget 1 s"
    both = AllOf(MaxSamples(100), TimeBudget(1.0))
    assert not both(state)
    assert (MaxSamples(10) & TimeBudget(1.0))(state)
    custom = tmc_shapley(saturating(), until=MaxSamples(12), tol=0)
    assert custom.params["permutations"] == 16  # checked after each batch of 8
    with pytest.raises(DataworthError, match="level"):
        RankStable(level=0.0)


def test_banzhaf_until_ranks_grows_the_same_design_and_stops_later_when_noisier():
    quiet = banzhaf_until(quadratic(0.02), rank_k=3, seed=0)
    noisy = banzhaf_until(quadratic(0.3), rank_k=3, seed=0)
    assert quiet.params["stopped_by"] == "top and bottom 3 stable at 90%"
    assert quiet.params["n_subsets"] < noisy.params["n_subsets"]
    same = banzhaf(quadratic(0.3), n_subsets=noisy.params["n_subsets"], seed=0)
    np.testing.assert_array_equal(same.values, noisy.values)
    capped = banzhaf_until(quadratic(0.3), rank_k=3, max_subsets=100)
    assert capped.params["stopped_by"] == "100 subsets"


def test_beta_shapley_stops_by_ranks_with_the_permutation_estimator():
    result = beta_shapley(quadratic(0.02), 4, 1, estimator="permutation", until="ranks", rank_k=3)
    assert result.params["stopped_by"] == "top and bottom 3 stable at 90%"
    with pytest.raises(DataworthError, match="estimator='permutation'"):
        beta_shapley(quadratic(0.02), 4, 1, n_subsets=50, until="ranks")
