"""Quality evaluation: detection measures, removal curves, agreement, the ranking and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import dataworth as dw
from dataworth.cli import app
from dataworth.errors import DataworthError
from dataworth.evaluate import (
    agreement_table,
    average_precision,
    curve_area,
    detection_scores,
    evaluate_methods,
    exact_agreement,
    flipped_mask,
    recall_at,
    removal_curves,
    roc_auc,
    tiny_task,
    two_means_f1,
    two_means_split,
)
from dataworth.evaluate.curves import removal_masks
from dataworth.evaluate.measures import low_value_order
from dataworth.metrics import get_metric

runner = CliRunner()


@pytest.fixture(scope="module")
def flipped_task():
    # 10% of the 398 training labels flipped on purpose (40 rows).
    return dw.load_dataset("breast_cancer", flip=0.1, seed=0)


@pytest.fixture(scope="module")
def small_task():
    return dw.load_dataset("breast_cancer", rows=200, flip=0.1, seed=0)


# --- detection measures on hand-computed cases -------------------------------------------------


def test_auc_is_one_for_a_perfect_ranking_and_zero_for_a_reversed_one():
    flipped = np.array([True, True, False, False, False])
    assert roc_auc([-2.0, -1.0, 0.5, 1.0, 3.0], flipped) == 1.0
    assert roc_auc([3.0, 2.0, -1.0, -2.0, -3.0], flipped) == 0.0
    assert average_precision([-2.0, -1.0, 0.5, 1.0, 3.0], flipped) == 1.0
    # One flipped row below both clean rows, one above: 3 of the 6 pairs are ordered right.
    assert roc_auc([0.0, 5.0, 1.0, 2.0, 3.0], flipped) == pytest.approx(3 / 6)
    # Ties count one half: a constant valuation is at chance.
    assert roc_auc(np.zeros(5), flipped) == 0.5


def test_two_means_split_separates_a_clearly_bimodal_vector():
    values = np.array([0.95, -1.0, 1.0, -1.1, 1.05, -0.9, 1.1, 0.9])
    threshold = two_means_split(values)
    assert threshold == -0.9  # the largest value of the lower cluster
    flipped = values < 0
    assert two_means_f1(values, flipped) == 1.0
    # Hand-computed: the lower cluster {-1.1,-1,-0.9} flags one clean row too -> F1 = 2*2/(3+2).
    assert two_means_f1(values, np.array([0, 1, 0, 1, 0, 0, 0, 0], bool)) == pytest.approx(0.8)


def test_two_means_split_is_the_exact_optimum_and_handles_ties():
    rng = np.random.default_rng(3)
    values = np.round(rng.normal(size=40), 1)  # many ties
    threshold = two_means_split(values)
    low, high = values[values <= threshold], values[values > threshold]

    def sse(*groups):
        return sum(((g - g.mean()) ** 2).sum() for g in groups)

    cuts = np.unique(values)[:-1]
    best = min(sse(values[values <= c], values[values > c]) for c in cuts)
    assert sse(low, high) == pytest.approx(best)
    assert two_means_split(np.ones(5)) == -np.inf  # no split of a constant vector
    assert two_means_f1(np.ones(4), np.array([1, 0, 0, 0], bool)) == 0.0


def test_recall_at_the_bottom_ten_percent():
    values = np.arange(20.0)  # the 2 lowest rows (10% of 20) are rows 0 and 1
    flipped = np.zeros(20, bool)
    flipped[[1, 5, 19]] = True
    assert recall_at(values, flipped, 0.1) == pytest.approx(1 / 3)
    flipped[0] = True
    assert recall_at(values, flipped, 0.1) == pytest.approx(2 / 4)
    assert recall_at(values, flipped, 0.25) == pytest.approx(2 / 4)  # ceil(5): rows 0..4


def test_ties_are_broken_by_the_seed_not_by_row_order():
    values = np.zeros(50)
    orders = {tuple(low_value_order(values, seed)[:5]) for seed in range(5)}
    assert len(orders) > 1
    assert np.array_equal(low_value_order(values, 1), low_value_order(values, 1))


def test_detection_scores_match_ids_and_refuse_nothing_to_detect():
    result = dw.ValuationResult("m", np.array([-1.0, 2.0, 3.0, -2.0]), np.array([10, 11, 12, 13]))
    assert flipped_mask(result, ["13", 10]).tolist() == [True, False, False, True]
    scores = detection_scores(result, np.array([10, 13]))
    assert scores["roc_auc"] == 1.0 and scores["n_flipped"] == 2 and scores["flip_rate"] == 0.5
    with pytest.raises(DataworthError, match="nothing to detect"):
        detection_scores(result, np.array([], dtype=int))


# --- removal curves ----------------------------------------------------------------------------


def test_curve_area_sign_convention_on_a_known_game():
    # An additive game: player i adds i. Its exact values order removals perfectly, so both
    # areas are positive (better than random); the reversed valuation makes both negative.
    game = dw.Game(lambda m: m @ np.arange(20.0), n_players=20)
    good = dw.ValuationResult("good", np.arange(20.0), np.arange(20))
    bad = dw.ValuationResult("bad", -np.arange(20.0), np.arange(20))
    g = removal_curves(game, good, fractions=[0, 0.1, 0.2, 0.5])
    b = removal_curves(game, bad, fractions=[0, 0.1, 0.2, 0.5])
    assert g.area_high > 0 and g.area_low > 0
    assert b.area_high < 0
    assert b.area_low < 0
    # Removing the top 10% (players 18, 19) leaves 190 - 37 = 153.
    assert g.high_first[1] == 190 - 37
    assert curve_area([0, 1], [1, 1], [0, 0]) == 1.0


def _sklearn_neg_log_loss(task, keep: np.ndarray) -> float:
    model = LogisticRegression(C=1.0, tol=1e-12, max_iter=1000, solver="newton-cholesky")
    model.fit(task.X_train[keep], task.y_train[keep])
    proba = model.predict_proba(task.X_test)[None]
    return float(get_metric("neg_log_loss")(proba, proba.argmax(2), task.y_test)[0])


def test_removal_curves_through_the_engine_equal_direct_refits(small_task):
    u = dw.Utility(small_task, learner="logreg", metric="neg_log_loss")
    result = dw.loo(u)
    fractions = [0.0, 0.1, 0.3]
    curves = removal_curves(u, result, fractions=fractions, n_random=2, seed=0)
    n = small_task.n_train
    values = np.empty(n)
    values[result.extra["position"]] = result.values
    counts = np.round(np.array(fractions) * n).astype(int)
    for order, curve in (
        (low_value_order(-values, 0), curves.high_first),
        (low_value_order(values, 0), curves.low_first),
    ):
        masks = removal_masks(order, counts, n)
        for j in (1, 2):  # two fractions, refitted directly with scikit-learn
            assert masks[j].sum() == n - counts[j]
            assert curve[j] == pytest.approx(_sklearn_neg_log_loss(small_task, masks[j]), abs=1e-6)
    assert curves.high_first[0] == curves.low_first[0] == curves.random_mean[0]
    # The order of LOO values predicts refits: removing its top rows hurts more than random.
    assert curves.area_high > 0


def test_removal_curves_need_every_row(small_task):
    u = dw.Utility(small_task)
    with pytest.raises(DataworthError, match="every row"):
        removal_curves(u, dw.loo(u, n_random=5))


# --- agreement ---------------------------------------------------------------------------------


def test_agreement_with_exact_shapley_on_a_tiny_task(small_task):
    tiny = tiny_task(small_task, 8, seed=0)
    assert tiny.n_train == 8

    def make(task):
        return dw.Utility(task, metric="neg_log_loss")

    table, exact = exact_agreement(
        make,
        tiny,
        {
            "exact_again": lambda u, t: dw.exact_shapley(u),
            "tmc_full": lambda u, t: dw.tmc_shapley(u, permutations=200, tol=0, seed=0),
        },
    )
    assert table.loc["exact_again", "spearman"] == pytest.approx(1.0)
    assert table.loc["tmc_full", "spearman"] > 0.8  # 200 untruncated permutations of 8 players
    both = agreement_table({"exact": exact, "again": exact})
    assert np.allclose(both.to_numpy(), 1.0)
    with pytest.raises(DataworthError, match="Exact Shapley"):
        tiny_task(small_task, 20)


# --- the ranking -------------------------------------------------------------------------------


def test_knn_shapley_and_loo_flag_flipped_rows_better_than_chance(flipped_task):
    # Measured on this task (398 rows, 40 flipped, seed 0): KNN-Shapley AUC 0.968 and LOO
    # 0.897. A flipped row disagrees with its neighbours (KNN) and, for logistic regression,
    # pulls the boundary the wrong way, so removing it raises the test log-likelihood (negative
    # LOO). 0.6 leaves room for other seeds while staying far above chance (0.5).
    report = evaluate_methods(flipped_task, ["loo", "knn_shapley"], exact_players=None)
    table = report.table
    assert list(table.columns[:3]) == ["rank", "seconds", "fits"]
    assert table.loc["knn_shapley", "roc_auc"] > 0.6
    assert table.loc["loo", "roc_auc"] > 0.6
    assert table.loc["loo", "fits"] == flipped_task.n_train + 1
    assert table.loc["knn_shapley", "fits"] == 0
    assert table["rank"].tolist() == [1, 2]
    assert table["roc_auc"].is_monotonic_decreasing
    assert (table[["area_high_first", "area_low_first"]] > 0).all().all()
    assert report.info["n_flipped"] == 40


def test_a_method_that_cannot_run_gets_a_note_not_a_crash(small_task):
    report = evaluate_methods(
        small_task, "influence,knn_shapley", learner="knn", exact_players=None
    )
    assert "logistic regression" in report.table.loc["influence", "note"]
    assert pd.isna(report.table.loc["influence", "rank"])
    assert report.table.index[0] == "knn_shapley"


def test_bad_method_names_and_no_flips_are_refused(small_task):
    with pytest.raises(DataworthError, match="did you mean 'knn_shapley'"):
        evaluate_methods(small_task, "knn_shaply")
    clean = dw.load_dataset("breast_cancer", rows=200, seed=0)
    with pytest.raises(DataworthError, match="nothing to detect"):
        evaluate_methods(clean, "loo")


# --- the command -------------------------------------------------------------------------------


def test_evaluate_command_prints_the_table_and_writes_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["evaluate", "--methods", "loo,knn_shapley", "--rows", "200", "--flip", "0.1"]
    result = runner.invoke(app, [*args, "--out", "ev"])
    assert result.exit_code == 0, result.output
    assert "best AUC first" in result.output
    assert "knn_shapley" in result.output and "loo" in result.output
    table = pd.read_csv(tmp_path / "ev" / "evaluation.csv", index_col="method")
    assert set(table.index) == {"loo", "knn_shapley"}
    assert pd.read_parquet(tmp_path / "ev" / "evaluation.parquet").shape[0] == 2
    figures = tmp_path / "ev" / "figures"
    assert (figures / "removal_curves.png").exists() and (figures / "detection_auc.png").exists()
    assert (tmp_path / "ev" / "exact_agreement.csv").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--methods", "loo,nope"], "Unknown method 'nope'"),
        (["--methods", "loo", "--flip", "0"], "nothing to detect"),
        (["--methods", "loo", "--subsets", "0"], "--subsets must be a positive"),
    ],
)
def test_evaluate_command_bad_input_exits_2_with_one_line(args, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["evaluate", "--rows", "200", *args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
