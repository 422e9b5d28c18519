"""The PyTorch learner: side-by-side training equals one-at-a-time training, determinism per
subset, the engine's store and methods, and the poisoned-digits experiment with a CNN.

Skipped where torch is not installed (it is an optional extra), except the checks that the core
package does not need it.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from dataworth import Task, Utility
from dataworth.data.poison import poisoned_digits
from dataworth.errors import DataworthError


def test_core_package_does_not_import_torch() -> None:
    code = (
        "import sys, dataworth, dataworth.learners.torch.learner;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_torch_says_how_to_install(monkeypatch) -> None:
    from dataworth.learners.torch import learner as torch_learner

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(DataworthError, match=r"pip install torch==2\.13\.0"):
        torch_learner.TorchLearner(torch_learner.mlp())


torch = pytest.importorskip("torch")

from dataworth.learners.torch.learner import (  # noqa: E402  (after the importorskip)
    TorchLearner,
    mlp,
    small_cnn,
    submodel_seed,
)
from dataworth.methods.ame import ame  # noqa: E402
from dataworth.methods.loo import loo  # noqa: E402


@pytest.fixture(scope="module")
def digits_task() -> Task:
    """200 training and 100 test digits, pixels scaled to [0, 1]."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return Task.from_arrays(X[:200], y[:200], X[200:300], y[200:300], name="digits-300")


def _masks(n_train: int, k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((k, n_train)) < 0.5


@pytest.mark.parametrize(
    "factory", [mlp((32,)), small_cnn(channels=(4, 8), hidden=16)], ids=["mlp", "cnn"]
)
def test_side_by_side_equals_one_at_a_time(digits_task: Task, factory) -> None:
    """A submodel trained in a vmapped stack of three equals the same model trained alone with
    plain autograd: same initialisation, same minibatches, same update arithmetic."""
    masks = _masks(digits_task.n_train, 3)
    start = TorchLearner(factory, steps=1, seed=3, lr=1e-12).fit_params(digits_task, masks)
    for optimizer in ("adam", "sgd"):
        options = {"steps": 30, "seed": 3, "optimizer": optimizer, "lr": 0.05}
        stacked = TorchLearner(factory, **options).fit_params(digits_task, masks)
        alone = TorchLearner(factory, vectorized=False, **options)
        single = alone.fit_params(digits_task, masks[[1]])
        assert stacked.keys() == single.keys()
        for name in stacked:
            np.testing.assert_allclose(
                stacked[name][1].numpy(), single[name][0].numpy(), rtol=0, atol=1e-5, err_msg=name
            )
        # The models did train: the parameters moved away from their initialisation.
        moved = max(float((stacked[k] - start[k]).abs().max()) for k in stacked)
        assert moved > 1e-2


@pytest.mark.parametrize("factory", [mlp((32,)), small_cnn(channels=(4, 8), hidden=16)])
def test_probabilities_do_not_depend_on_the_batch(digits_task: Task, factory) -> None:
    masks = _masks(digits_task.n_train, 3, seed=1)
    learner = TorchLearner(factory, steps=30)
    batch = learner.predict_proba_batch(digits_task, masks)
    alone = learner.predict_proba_batch(digits_task, masks[[2]])
    reordered = learner.predict_proba_batch(digits_task, masks[[2, 0]])
    # Bit for bit: the engine caches a subset's value and must get the same from a refit.
    np.testing.assert_array_equal(batch[2], alone[0])
    np.testing.assert_array_equal(batch[2], reordered[0])
    # Chunking inside the learner changes nothing either.
    chunked = TorchLearner(factory, steps=30, max_parallel=2).predict_proba_batch(
        digits_task, masks
    )
    np.testing.assert_array_equal(batch, chunked)
    np.testing.assert_allclose(batch.sum(axis=2), 1.0, atol=1e-6)


def test_seed_is_a_function_of_the_subset() -> None:
    mask = _masks(50, 1)[0]
    assert submodel_seed(mask, 0) == submodel_seed(mask.copy(), 0)
    assert submodel_seed(mask, 0) != submodel_seed(mask, 1)
    other = mask.copy()
    other[0] = not other[0]
    assert submodel_seed(mask, 0) != submodel_seed(other, 0)
    # The mask's length is part of the seed (packed bits are padded to whole bytes).
    assert submodel_seed(np.ones(3, bool), 0) != submodel_seed(np.r_[np.ones(3, bool), False], 0)


def test_learner_seed_changes_the_models_and_global_rng_is_untouched(digits_task) -> None:
    masks = _masks(digits_task.n_train, 2)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = TorchLearner(mlp((16,)), steps=10, seed=0).predict_proba_batch(digits_task, masks)
    after = torch.rand(3)
    torch.testing.assert_close(after, expected)  # the caller's random stream is not consumed
    b = TorchLearner(mlp((16,)), steps=10, seed=1).predict_proba_batch(digits_task, masks)
    assert np.abs(a - b).max() > 1e-4


def test_absent_classes_get_probability_zero(digits_task: Task) -> None:
    mask = np.isin(digits_task.y_train, [1, 7])  # a two-class subset of a ten-class task
    proba = TorchLearner(mlp((16,)), steps=20).predict_proba_batch(digits_task, mask[None])
    absent = [c for c in range(10) if c not in (1, 7)]
    assert (proba[0][:, absent] == 0.0).all()
    np.testing.assert_allclose(proba[0].sum(axis=1), 1.0, atol=1e-6)


class _NormedMLP:
    """A factory whose module has BatchNorm with running statistics (not vectorisable)."""

    def __repr__(self) -> str:
        return "NormedMLP()"

    def __call__(self, n_features: int, n_classes: int):
        nn = torch.nn
        return nn.Sequential(
            nn.Linear(n_features, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, n_classes)
        )


def test_module_that_cannot_be_vectorised_falls_back(digits_task: Task) -> None:
    masks = _masks(digits_task.n_train, 3, seed=2)
    learner = TorchLearner(_NormedMLP(), steps=20)
    with pytest.warns(RuntimeWarning, match="one at a time: BatchNorm1d"):
        batch = learner.predict_proba_batch(digits_task, masks)
    assert learner.fallback_reason is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        alone = learner.predict_proba_batch(digits_task, masks[[1]])
        explicit = TorchLearner(_NormedMLP(), steps=20, vectorized=False)
        same = explicit.predict_proba_batch(digits_task, masks)
    np.testing.assert_array_equal(batch[1], alone[0])
    np.testing.assert_array_equal(batch, same)


def test_bad_arguments_are_reported(digits_task: Task) -> None:
    with pytest.raises(DataworthError, match="steps"):
        TorchLearner(mlp(), steps=0)
    with pytest.raises(DataworthError, match="optimizer"):
        TorchLearner(mlp(), optimizer="lbfgs")
    wrong = Task.from_arrays(np.zeros((4, 5)), [0, 1, 0, 1], np.zeros((2, 5)), [0, 1])
    with pytest.raises(DataworthError, match="needs 64 features"):
        TorchLearner(small_cnn()).predict_proba_batch(wrong, np.ones((1, 4), bool))


def _plain_factory(n_features: int, n_classes: int):
    return torch.nn.Linear(n_features, n_classes)


def test_fingerprint_and_pickle(digits_task: Task) -> None:
    a = TorchLearner(mlp((16,)), steps=10)
    assert a.fingerprint() == TorchLearner(mlp((16,)), steps=10).fingerprint()
    assert a.fingerprint() != TorchLearner(mlp((17,)), steps=10).fingerprint()
    assert a.fingerprint() != TorchLearner(mlp((16,)), steps=11).fingerprint()
    # A plain function as the factory is named without its (per-process) memory address.
    assert " at 0x" not in TorchLearner(_plain_factory).fingerprint()
    assert "_plain_factory" in TorchLearner(_plain_factory).fingerprint()
    masks = _masks(digits_task.n_train, 2)
    before = a.predict_proba_batch(digits_task, masks)
    clone = pickle.loads(pickle.dumps(a))  # workers receive the learner this way
    assert clone._data is None  # cached tensors are not shipped
    np.testing.assert_array_equal(clone.predict_proba_batch(digits_task, masks), before)


def test_utility_loo_and_store(iris_small: Task) -> None:
    learner = TorchLearner(mlp((8,)), steps=25, batch_size=16, lr=0.05)
    u = Utility(iris_small, learner=learner, metric="neg_log_loss")
    result = loo(u)
    assert result.values.shape == (iris_small.n_train,)
    assert np.isfinite(result.values).all()
    assert np.abs(result.values).max() > 0  # removing a row changes its retrained model
    # Everything LOO needed is in the store: asking again fits nothing.
    masks = ~np.eye(iris_small.n_train, dtype=bool)
    again = u.evaluate(np.vstack([np.ones(iris_small.n_train, bool), masks]))
    assert again.n_fitted == 0
    full = again.scores[0]
    np.testing.assert_allclose(full - again.scores[1:], result.values, atol=1e-12)


# ---------------------------------------------------------------------- poisoned digits


# Small enough for CI (about 12 s on one core); benchmarks/bench_torch.py --poison runs it
# with more subsets and on 300 rows. The sizes were chosen by measurement:
# * 8 poisons, not 6: at q = 0.2 Knockoff+ selects nothing unless at least 5 points beat their
#   knockoffs, so with 6 poisons one weak poison left the selection empty (seeds 1 and 5 of
#   0-6);
# * a 3x3 patch: with the 2x2 one, 60 steps learn a weak backdoor (150 rows, 10 poisons: mean
#   P(0) 0.29 on the targets with every poison in) and minibatch noise made up about 80% of a
#   target's variance across subsets;
# * 80 rows and 400 subsets: fewer null points, and a LASSO (160 columns) that the subsets
#   determine well (with 200 subsets the per-row paths took 15 times longer than with 300).
N_TRAIN, N_POISONS, PATCH_SIZE, N_TARGETS, N_SUBSETS, STEPS = 80, 8, 3, 10, 400, 60


def _precision_recall(selected: np.ndarray, poisons: np.ndarray) -> tuple[float, float]:
    hits = int(np.isin(np.flatnonzero(selected), poisons).sum())
    return (hits / selected.sum() if selected.sum() else float("nan")), hits / len(poisons)


def _poison_experiment(seed: int = 0) -> dict:
    """The AME paper's poisoning experiment with a CNN, small enough for CI.

    ``k`` training images with a bright 3x3 patch relabelled 0; the test rows are patched images
    of other digits labelled 0, so the metric measures the attack's success and each row's
    per-prediction score is its probability of class 0. Every submodel is the same small CNN
    trained for a fixed number of steps; the initialisation is shared (common random numbers),
    so the differences between subsets come from their data and their minibatches.

    The metric is the Brier score, bounded like the probabilities. With the log-loss (the mean
    log-probability of class 0 here), subsets holding few poisons give log-probabilities of -10
    to -20 whose swings dominate the LASSO's squared error: on the same fits Knockoff+ selected
    nothing on 6 of seeds 0-9, where the Brier score's selections were never empty. ``seed``
    sets both the task (which rows are sampled and poisoned) and AME's subsets.
    """
    k, m = N_POISONS, N_SUBSETS
    task, poisons = poisoned_digits(
        N_TRAIN, k, n_targets=N_TARGETS, seed=seed, patch_size=PATCH_SIZE
    )
    learner = TorchLearner(
        small_cnn(channels=(4, 8), hidden=16),
        steps=STEPS,
        lr=0.03,
        shared_init=True,
        n_threads=1,  # small kernels: one thread avoids OpenMP waits on a busy CI machine
    )
    u = Utility(task, learner=learner, metric="neg_brier")
    clean = np.ones((2, N_TRAIN), bool)
    clean[1, poisons] = False
    attack = u.evaluate(clean, per_prediction=True).per_prediction.mean(axis=1)

    # One set of fits serves every target: the per-row run stores the per-prediction scores.
    # cv=5 folds instead of 20 keeps the LASSO paths (one per target, plus the metric) cheap.
    per_row = ame(u, n_subsets=m, fdr=0.2, target=list(range(task.n_test)), seed=seed, cv=5)
    metric = ame(u, n_subsets=m, fdr=0.2, seed=seed, cv=5)
    rows = [_precision_recall(r.extra["selected"], poisons) for r in per_row.values()]
    mean_values = np.mean([r.values for r in per_row.values()], axis=0)
    return {
        "attack": attack,
        "metric_fitted": metric.n_fitted,
        "metric": _precision_recall(metric.extra["selected"], poisons),
        "rows": rows,
        # Share of poisons among the k highest values averaged over the per-row targets.
        "top_k_rows": float(np.isin(np.argsort(-mean_values)[:k], poisons).mean()),
        # False discovery proportion of each target (0 when nothing is selected), averaged.
        "rows_fdp": float(np.mean([0.0 if np.isnan(p) else 1.0 - p for p, _ in rows])),
    }


def test_ame_with_knockoffs_finds_the_poisons_of_a_cnn() -> None:
    """AME with Knockoff+ (q = 0.2) on a CNN's subsets selects the poisons (see
    :func:`_poison_experiment`)."""
    out = _poison_experiment(seed=0)
    # The network learns the backdoor from the poisons: mean P(0) on the targets with and
    # without them, 0.76 and 0.00 here; the smallest gap on seeds 0-9 was 0.395 - 0.110.
    assert out["attack"][0] > out["attack"][1] + 0.2
    assert out["metric_fitted"] == 0  # the per-row run fitted every subset the metric needs
    # On the metric, Knockoff+ finds most poisons and little else. Measured on seeds 0-9:
    # precision 0.78-1.00, recall 0.62-1.00, never an empty selection (seed 0: 1.00 and 0.75).
    precision, recall = out["metric"]
    assert recall >= 0.5
    assert precision >= 0.75
    # Per test row the signal is weaker (one noisy probability instead of ten averaged): at
    # this size 1 to 8 of the 10 selections were non-empty (seeds 0-9), so no recall is asserted
    # per row; but the values averaged over the rows rank the poisons first (top-8 share
    # 0.75-1.00) and false discoveries stay rare (mean false discovery proportion over the
    # rows, empty selections counting 0: 0.00-0.12; seed 0: 0.04).
    assert out["top_k_rows"] >= 0.5
    assert out["rows_fdp"] <= 0.25
