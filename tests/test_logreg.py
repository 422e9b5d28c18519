"""The batched logistic regression solves scikit-learn's problem exactly, on every subset.

scikit-learn's default solver (lbfgs) stops once its objective stalls, near a gradient of 1e-8,
which leaves its coefficients about 1e-6 from the optimum; the tight comparisons therefore use its
``newton-cholesky`` solver (same objective and parametrisation, solved to machine precision).
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import dataworth.learners.logreg.learner as logreg_module
import dataworth.learners.logreg.problem as logreg_problem
from dataworth import Task
from dataworth.errors import DataworthError
from dataworth.learners import memory
from dataworth.learners.base import Learner
from dataworth.learners.logreg.learner import BatchedLogisticRegression, LogisticConvergenceWarning
from dataworth.learners.memory import MEMORY_LIMIT_ENV, available_memory, chunk_budget


def _random_masks(rng, n, k, low=0.1, high=0.9):
    return rng.random((k, n)) < rng.uniform(low, high, size=(k, 1))


def _sklearn_fit(X, y, C, solver="newton-cholesky"):
    return LogisticRegression(C=C, tol=1e-12, max_iter=100_000, solver=solver).fit(X, y)


def _sklearn_proba(model, X, n_classes):
    out = np.zeros((len(X), n_classes))
    out[:, model.classes_] = model.predict_proba(X)
    return out


def _our_rows(params, n_features, n_classes, classes):
    """Our coefficient/intercept rows laid out like scikit-learn's coef_/intercept_."""
    coef, intercept = BatchedLogisticRegression.unpack(params[None], n_features, n_classes)
    coef, intercept = coef[0], intercept[0]
    if n_classes == 2:
        return coef, intercept
    if len(classes) == 2:  # scikit-learn's binary model is the second present class's row
        return coef[classes[1:]], intercept[classes[1:]]
    return coef[classes], intercept[classes]


def _check_against_sklearn(task, masks, C, tol, coef_rtol, proba_atol, solver):
    model = BatchedLogisticRegression(C=C, tol=tol)
    proba = model.predict_proba_batch(task, masks)
    params, _, converged = model.fit_batch(task.X_train, task.y_train, task.n_classes, masks)
    assert converged.all()
    for mask, p, theta in zip(masks, proba, params, strict=True):
        sk = _sklearn_fit(task.X_train[mask], task.y_train[mask], C, solver)
        coef, intercept = _our_rows(theta, task.n_features, task.n_classes, sk.classes_)
        scale = np.abs(sk.coef_).max()
        np.testing.assert_allclose(coef, sk.coef_, rtol=0, atol=coef_rtol * scale)
        np.testing.assert_allclose(intercept, sk.intercept_, rtol=0, atol=coef_rtol * scale)
        expected = _sklearn_proba(sk, task.X_test, task.n_classes)
        np.testing.assert_allclose(p, expected, rtol=0, atol=proba_atol)
        absent = ~np.isin(np.arange(task.n_classes), sk.classes_)
        assert (p[:, absent] == 0.0).all()


@pytest.fixture(scope="module")
def digits4() -> Task:
    """Four digit classes: room for subsets that lack one class but keep three."""
    X, y = load_digits(n_class=4, return_X_y=True)
    X = X[:, 1::3]  # 21 of the 64 pixels keep the test fast
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, test = order[:90], order[90:150]
    scaler = StandardScaler().fit(X[train])
    return Task.from_arrays(
        scaler.transform(X[train]), y[train], scaler.transform(X[test]), y[test], name="digits4"
    )


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_binary_matches_sklearn_exactly(cancer_400, rng, C):
    masks = _random_masks(rng, cancer_400.n_train, 5)
    masks[0] = True
    masks[1, :] = True
    masks[1, 17] = False  # a leave-one-out subset: the warm-started, downdated path
    _check_against_sklearn(
        cancer_400, masks, C, tol=1e-12, coef_rtol=1e-6, proba_atol=1e-8, solver="newton-cholesky"
    )


def test_default_tolerance_agrees_with_sklearn_default_solver(cancer_400, rng):
    masks = _random_masks(rng, cancer_400.n_train, 4, low=0.4)
    _check_against_sklearn(
        cancer_400, masks, 1.0, tol=1e-8, coef_rtol=1e-5, proba_atol=1e-5, solver="lbfgs"
    )


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("fixture", ["wine_small", "iris_small"])
def test_multinomial_matches_sklearn_with_missing_classes(fixture, C, request, rng):
    task = request.getfixturevalue(fixture)
    y = task.y_train
    masks = _random_masks(rng, task.n_train, 5, low=0.5)
    masks[0] = True
    masks[1] = y != 0  # exactly two classes: scikit-learn fits a binary model
    masks[2] = (y != 2) & (rng.random(len(y)) < 0.7)
    _check_against_sklearn(
        task, masks, C, tol=1e-12, coef_rtol=1e-6, proba_atol=1e-8, solver="newton-cholesky"
    )


def test_multinomial_subset_missing_one_of_four_classes(digits4, rng):
    y = digits4.y_train
    masks = np.stack(
        [
            y != 3,  # three of four classes: multinomial over the present ones
            (y != 1) & (rng.random(len(y)) < 0.8),
            np.isin(y, [1, 3]),  # two of four: binary
            np.ones(len(y), dtype=bool),
        ]
    )
    _check_against_sklearn(
        digits4, masks, 1.0, tol=1e-12, coef_rtol=1e-6, proba_atol=1e-8, solver="newton-cholesky"
    )


@pytest.mark.parametrize("fixture", ["cancer_400", "wine_small", "digits4"])
def test_small_subsets_on_their_own_rows_match_sklearn(fixture, request, rng):
    """Subsets of at most n/2 rows are solved on their gathered, zero-padded rows."""
    task = request.getfixturevalue(fixture)
    n, y = task.n_train, task.y_train
    sizes = sorted({6, 11, n // 5, n // 3})
    masks = np.zeros((len(sizes), n), dtype=bool)
    for row, size in zip(masks, sizes, strict=True):
        # one row of each class first, so every subset has at least two classes
        firsts = [rng.choice(np.flatnonzero(y == c)) for c in range(2)]
        rest = rng.choice(np.setdiff1d(np.arange(n), firsts), size=size - 2, replace=False)
        row[firsts] = True
        row[rest] = True
    lengths = logreg_module._compact_length(masks.sum(axis=1), n)
    assert (lengths >= masks.sum(axis=1)).all()  # every subset takes the own-rows path
    _check_against_sklearn(
        task, masks, 1.0, tol=1e-12, coef_rtol=1e-6, proba_atol=1e-8, solver="newton-cholesky"
    )


def test_compact_length_depends_on_the_size_alone():
    sizes = np.arange(1, 1001)
    lengths = logreg_module._compact_length(sizes, 2000)
    own = lengths > 0
    assert own[:800].all()
    assert (lengths[own] >= sizes[own]).all()
    assert (lengths[own] <= np.maximum(sizes[own] + 7, 1.25 * sizes[own])).all()
    assert (np.diff(lengths[own]) >= 0).all()
    # a padded length past n / 2 means the shared rows
    assert logreg_module._compact_length(np.array([150, 199, 250]), 400).tolist() == [160, 0, 0]


def _independent_binary_gradient(params, X, y, masks, C):
    """Mean-scaled gradient written out directly (not with the module's helpers)."""
    grads = []
    for theta, mask in zip(params, masks, strict=True):
        w, b = theta[:-1], theta[-1]
        Xs, ys = X[mask], y[mask]
        r = 1.0 / (1.0 + np.exp(-(Xs @ w + b))) - ys
        grads.append(np.r_[Xs.T @ r + w / C, r.sum()] / mask.sum())
    return np.array(grads)


@pytest.mark.parametrize("C", [0.1, 10.0])
def test_gradient_at_solution_is_below_tol(cancer_400, rng, C):
    model = BatchedLogisticRegression(C=C)
    masks = np.concatenate(
        [_random_masks(rng, cancer_400.n_train, 10), ~np.eye(10, cancer_400.n_train, dtype=bool)]
    )
    params, n_iter, converged = model.fit_batch(cancer_400.X_train, cancer_400.y_train, 2, masks)
    assert converged.all() and (n_iter <= model.max_iter).all()
    grad = _independent_binary_gradient(params, cancer_400.X_train, cancer_400.y_train, masks, C)
    assert np.abs(grad).max() <= model.tol * (1 + 1e-6)
    ours = model.mean_gradient(params, cancer_400.X_train, cancer_400.y_train, 2, masks)
    np.testing.assert_allclose(ours, grad, rtol=0, atol=1e-13)


def test_multinomial_gradient_at_solution_is_below_tol(wine_small, rng):
    model = BatchedLogisticRegression()
    masks = _random_masks(rng, wine_small.n_train, 8, low=0.5)
    masks[0] = wine_small.y_train != 1
    params, _, converged = model.fit_batch(
        wine_small.X_train, wine_small.y_train, wine_small.n_classes, masks
    )
    assert converged.all()
    grad = model.mean_gradient(params, wine_small.X_train, wine_small.y_train, 3, masks)
    assert np.abs(grad).max() <= model.tol
    # Intercepts of a multinomial fit sum to zero, as scikit-learn's do.
    _, intercept = model.unpack(params[1:], wine_small.n_features, 3)
    np.testing.assert_allclose(intercept.sum(axis=1), 0.0, atol=1e-12)


def _mixed_masks(rng, n, k=37):
    """Random subsets mixed with leave-one-out and leave-two-out ones (both solver paths)."""
    masks = _random_masks(rng, n, k, low=0.05, high=0.95)
    for j in range(0, k, 4):
        masks[j] = True
        masks[j, rng.choice(n, size=1 + j % 2, replace=False)] = False
    return masks


@pytest.mark.parametrize("fixture", ["cancer_small", "wine_small", "digits4"])
def test_results_do_not_depend_on_batching(fixture, request, rng, monkeypatch):
    # n_train = 60 or 90 (not multiples of the SIMD width), so a subset's rows sit at different
    # vector-lane offsets in different batches.
    task = request.getfixturevalue(fixture)
    masks = _mixed_masks(rng, task.n_train)
    counts = np.stack([(masks & (task.y_train == c)).sum(1) for c in range(task.n_classes)], 1)
    masks = masks[(counts > 0).sum(axis=1) >= 2]
    model = BatchedLogisticRegression()
    args = (task.X_train, task.y_train, task.n_classes)
    whole = model.fit_batch(*args, masks)
    whole_proba = model.predict_proba_batch(task, masks)
    for size in (1, 5, 16):
        parts = [
            BatchedLogisticRegression().fit_batch(*args, masks[i : i + size])
            for i in range(0, len(masks), size)
        ]
        for got, expected in zip(zip(*parts, strict=True), whole, strict=True):
            assert np.array_equal(np.concatenate(got), expected)
        proba = np.concatenate(
            [
                model.predict_proba_batch(task, masks[i : i + size])
                for i in range(0, len(masks), size)
            ]
        )
        assert np.array_equal(proba, whole_proba)
    # The internal memory chunking does not change anything either.
    monkeypatch.setattr(logreg_problem, "_CHUNK_BYTES", 1)
    tiny = BatchedLogisticRegression().fit_batch(*args, masks)
    for got, expected in zip(tiny, whole, strict=True):
        assert np.array_equal(got, expected)


def test_far_away_warm_start_reaches_the_same_solution(cancer_400, wine_small, rng):
    for task in (cancer_400, wine_small):
        model = BatchedLogisticRegression(tol=1e-11)
        masks = _random_masks(rng, task.n_train, 6, low=0.4)
        args = (task.X_train, task.y_train, task.n_classes)
        default, _, ok_default = model.fit_batch(*args, masks)
        far = 20.0 * rng.standard_normal(default.shape)
        params, n_iter, converged = model.fit_batch(*args, masks, init=far)
        assert ok_default.all() and converged.all()
        assert (n_iter > 3).all()
        np.testing.assert_allclose(params, default, rtol=0, atol=1e-7 * np.abs(default).max())


def test_separable_tiny_subset_converges(cancer_400):
    y = cancer_400.y_train
    mask = np.zeros(cancer_400.n_train, dtype=bool)
    mask[np.flatnonzero(y == 0)[:2]] = True
    mask[np.flatnonzero(y == 1)[:2]] = True
    for C in (1.0, 1e4):
        model = BatchedLogisticRegression(C=C, tol=1e-12, max_iter=200)
        params, _, converged = model.fit_batch(cancer_400.X_train, y, 2, mask[None])
        assert converged.all()
        sk = _sklearn_fit(cancer_400.X_train[mask], y[mask], C)
        p = model.predict_proba(params, cancer_400.X_test)[0]
        np.testing.assert_allclose(p, sk.predict_proba(cancer_400.X_test), atol=1e-8)
        # Separated by a wide margin on its own rows: probabilities near 0 and 1, still finite.
        train_p = model.predict_proba(params, cancer_400.X_train[mask])[0]
        assert np.all(train_p[np.arange(4), y[mask]] > 0.5)


def test_learner_protocol_and_pickling(cancer_small):
    model = BatchedLogisticRegression(C=0.5)
    assert isinstance(model, Learner)
    assert model.name == "logreg"
    masks = np.ones((3, cancer_small.n_train), dtype=bool)
    masks[1, :20] = False
    masks[2, 30:] = False
    proba = model.predict_proba_batch(cancer_small, masks)
    assert proba.shape == (3, cancer_small.n_test, 2)
    np.testing.assert_allclose(proba.sum(axis=2), 1.0)
    blob = pickle.dumps(model)
    assert len(blob) < 2000  # the cached reference solution stays behind
    clone = pickle.loads(blob)
    assert clone.fingerprint() == model.fingerprint()
    assert np.array_equal(clone.predict_proba_batch(cancer_small, masks), proba)


def test_fingerprint_tracks_parameters():
    fingerprints = {
        BatchedLogisticRegression().fingerprint(),
        BatchedLogisticRegression(C=2.0).fingerprint(),
        BatchedLogisticRegression(tol=1e-8).fingerprint(),
        BatchedLogisticRegression(max_iter=50).fingerprint(),
    }
    assert len(fingerprints) == 4
    assert BatchedLogisticRegression().fingerprint() == BatchedLogisticRegression().fingerprint()


def test_non_convergence_is_reported(cancer_400, rng):
    model = BatchedLogisticRegression(max_iter=1)
    masks = _random_masks(rng, cancer_400.n_train, 3)
    init = 30.0 * rng.standard_normal((3, cancer_400.n_features + 1))
    with pytest.warns(LogisticConvergenceWarning, match="did not reach"):
        _, n_iter, converged = model.fit_batch(
            cancer_400.X_train, cancer_400.y_train, 2, masks, init=init
        )
    assert not converged.any() and (n_iter == 1).all()


def test_bad_inputs_are_rejected(cancer_small):
    model = BatchedLogisticRegression()
    one_class = cancer_small.y_train == 0
    with pytest.raises(DataworthError, match="fewer than two classes"):
        model.predict_proba_batch(cancer_small, one_class[None])
    with pytest.raises(DataworthError, match="shape"):
        model.predict_proba_batch(cancer_small, np.ones((2, 3), dtype=bool))
    with pytest.raises(DataworthError):
        BatchedLogisticRegression(C=0.0)


def test_reference_is_the_full_data_fit(rng):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:150]
    y = y[:150]
    model = BatchedLogisticRegression(tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = model.reference(X, y, 2)
    sk = _sklearn_fit(X, y, 1.0)
    np.testing.assert_allclose(ref, np.r_[sk.coef_[0], sk.intercept_], atol=1e-8)
    params, n_iter, _ = model.fit_batch(X, y, 2, np.ones((1, len(y)), dtype=bool))
    # Started at its own solution, the full set takes the one polishing step every subset takes.
    assert n_iter[0] == 1
    np.testing.assert_allclose(params[0], ref, rtol=0, atol=1e-10)


def test_chunks_follow_available_memory(wine_small, rng, monkeypatch):
    """A small memory limit shrinks the internal chunks; a large one never grows them past the
    fixed budget; neither changes a value."""
    task = wine_small
    masks = _mixed_masks(rng, task.n_train)
    args = (task.X_train, task.y_train, task.n_classes)
    problem = logreg_module._make_problem(*args)
    default = logreg_module._chunk_size(problem)
    whole = BatchedLogisticRegression().fit_batch(*args, masks)
    whole_proba = BatchedLogisticRegression().predict_proba_batch(task, masks)

    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1T")
    assert logreg_module._chunk_size(problem) == default
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1M")  # a quarter of it for a chunk: 256 KiB
    per_subset = logreg_module._CHUNK_BYTES // default
    assert chunk_budget(logreg_module._CHUNK_BYTES) == 2**18
    small = logreg_module._chunk_size(problem)
    assert 1 <= small < default and small <= 2**18 // per_subset + 1
    for got, expected in zip(
        BatchedLogisticRegression().fit_batch(*args, masks), whole, strict=True
    ):
        assert np.array_equal(got, expected)
    proba = BatchedLogisticRegression().predict_proba_batch(task, masks)
    assert np.array_equal(proba, whole_proba)


@pytest.mark.parametrize("text", ["lots", "-5G", "0"])
def test_a_bad_memory_limit_says_what_to_give(text, monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, text)
    with pytest.raises(DataworthError, match=r"not a memory size.*512M"):
        available_memory()


def test_memory_limit_units(monkeypatch):
    for text, expected in [("4096", 4096), ("2K", 2048), ("1.5g", 3 * 2**29), ("64MiB", 2**26)]:
        monkeypatch.setenv(MEMORY_LIMIT_ENV, text)
        assert memory._limit_from_env() == expected
        assert available_memory() <= expected
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "64K")
    assert chunk_budget(2**30) == 2**14 and chunk_budget(100) == 100


@pytest.mark.parametrize("classes", range(2, 10))
def test_softmax_has_the_bits_of_the_plain_formula(classes, rng):
    """The class-major softmax gives NumPy's max, exp and last-axis sum bit for bit."""
    from dataworth.learners.logreg.numerics import _softmax

    z = rng.normal(size=(6, 301, classes)) * 30
    offset = np.where(rng.random((6, classes)) < 0.3, -np.inf, 0.0)
    offset[:, 0] = 0.0
    shifted = z + offset[:, None, :]
    top = shifted.max(axis=-1, keepdims=True)
    e = np.exp(shifted - top)
    total = e.sum(axis=-1, keepdims=True)
    proba, lse = _softmax(z, offset)
    assert np.array_equal(proba, e / total)
    assert np.array_equal(lse, (np.log(total) + top)[..., 0])
    assert (proba[np.broadcast_to(offset[:, None, :] == -np.inf, proba.shape)] == 0.0).all()


@pytest.mark.parametrize("fixture", ["cancer_400", "wine_small"])
def test_predictions_on_threads_have_the_same_bits(fixture, request, rng, monkeypatch):
    task = request.getfixturevalue(fixture)
    masks = _mixed_masks(rng, task.n_train)
    model = BatchedLogisticRegression()
    params, _, _ = model.fit_batch(task.X_train, task.y_train, task.n_classes, masks)
    one = model.predict_proba(params, task.X_test, n_classes=task.n_classes)
    monkeypatch.setattr(logreg_module, "_PREDICT_THREAD_ENTRIES", 1)
    monkeypatch.setattr(logreg_module, "usable_threads", lambda: 3)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "64K")  # many small chunks
    assert np.array_equal(model.predict_proba(params, task.X_test, n_classes=task.n_classes), one)


def test_one_blas_thread_limits_blas_and_keeps_its_controller():
    from threadpoolctl import threadpool_info

    from dataworth import machine

    with machine.one_blas_thread():
        blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert blas and all(lib["num_threads"] == 1 for lib in blas)
    first = machine._blas_controller()
    assert machine._blas_controller() is first  # no extension module imported in between
