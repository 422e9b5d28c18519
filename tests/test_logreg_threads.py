"""The batched logistic regression's chunks solved on several threads, and the engine's share.

A subset's arithmetic depends on that subset alone, so solving the chunks of a batch on threads
(in whatever order they finish) must give the same bits as one thread: parameters, step counts
and convergence flags. Every fit here is a real fit on real data; the threaded results equal the
one-thread ones, which test_logreg.py checks against scikit-learn.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import dataworth.learners.logreg.batches as batches_module
import dataworth.learners.logreg.learner as logreg_module
import dataworth.learners.logreg.problem as problem_module
from dataworth.engine.utility import Utility, _FitJob
from dataworth.learners.logreg.learner import BatchedLogisticRegression
from dataworth.learners.logreg.newton import _NewtonSolver
from dataworth.machine import thread_share, usable_cpus, usable_threads
from dataworth.metrics import get_metric


def _standardised(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _mixed_masks(n: int, k: int, seed: int) -> np.ndarray:
    """Subsets of every kind the solver treats apart: small ones on their own rows, large ones
    on the shared rows, and near-full ones that start from the full-data solution."""
    rng = np.random.default_rng(seed)
    share = rng.uniform(0.1, 1.0, size=k)
    masks = rng.random((k, n)) < share[:, None]
    for j in range(0, k, 10):  # a few rows left out
        masks[j] = True
        masks[j, rng.choice(n, size=1 + j % 7, replace=False)] = False
    return masks


def _fit_recording_threads(model, X, y, K, masks, monkeypatch):
    """Fit, and return the results with the threads that solved the chunks."""
    seen: set[int] = set()
    solve = _NewtonSolver._solve_chunk

    def recording(self, *args):
        seen.add(threading.get_ident())
        return solve(self, *args)

    monkeypatch.setattr(_NewtonSolver, "_solve_chunk", recording)
    out = model.fit_batch(X, y, K, masks)
    monkeypatch.setattr(_NewtonSolver, "_solve_chunk", solve)
    return out, seen


@pytest.mark.parametrize(("loader", "K"), [(load_breast_cancer, 2), (load_wine, 3)])
def test_threads_give_the_bits_of_one_thread(loader, K, monkeypatch):
    X, y = _standardised(loader)
    masks = _mixed_masks(len(y), 240, seed=K)
    model = BatchedLogisticRegression()
    model.reference(X, y, K)  # the full-data solution, shared by both runs

    monkeypatch.setattr(batches_module, "_THREAD_MIN_ROWS", np.inf)
    (one, one_steps, one_ok), seen = _fit_recording_threads(model, X, y, K, masks, monkeypatch)
    assert len(seen) == 1

    # Many small chunks on three threads: more chunks than threads, finishing in any order.
    monkeypatch.setattr(batches_module, "_THREAD_MIN_ROWS", 0)
    monkeypatch.setattr(batches_module, "usable_threads", lambda requested=None: 3)
    monkeypatch.setattr(problem_module, "_CHUNK_BYTES", 2**18)
    (many, many_steps, many_ok), seen = _fit_recording_threads(model, X, y, K, masks, monkeypatch)
    assert len(seen) > 1
    assert threading.get_ident() not in seen
    assert one_ok.all()
    assert np.array_equal(many.view(np.int64), one.view(np.int64))  # bit for bit, signs too
    assert np.array_equal(many_steps, one_steps)
    assert np.array_equal(many_ok, one_ok)

    # And the threaded fits are the optimum: one of them against scikit-learn directly.
    j = int(np.argmin(masks.sum(axis=1)))
    sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000, solver="newton-cholesky")
    sk.fit(X[masks[j]], y[masks[j]])
    present = logreg_module._class_presence(y, masks[j : j + 1], K)
    np.testing.assert_allclose(
        model.predict_proba(many[j : j + 1], X, present)[0][:, sk.classes_],
        sk.predict_proba(X),
        rtol=0,
        atol=1e-7,
    )


def test_a_small_batch_stays_on_the_calling_thread(monkeypatch):
    X, y = _standardised(load_breast_cancer)
    masks = _mixed_masks(len(y), 4, seed=0)
    model = BatchedLogisticRegression()
    monkeypatch.setattr(batches_module, "usable_threads", lambda requested=None: 3)
    _, seen = _fit_recording_threads(model, X, y, 2, masks, monkeypatch)
    assert seen == {threading.get_ident()}


def test_thread_share_limits_the_threads_and_is_restored():
    cores = usable_cpus()
    assert usable_threads() == cores
    assert usable_threads(5) == 5  # an explicit setting wins
    with thread_share(cores + 8):
        assert usable_threads() == cores  # never more than the process may use
    with thread_share(1):
        assert usable_threads() == 1
        assert usable_threads(3) == 3
        for inner in (None, 2):  # an inner block never lifts the outer limit
            with thread_share(inner):
                assert usable_threads() == 1
        assert usable_threads() == 1
    assert usable_threads() == cores


def test_engine_workers_get_a_share_of_the_cores(cancer_small):
    cores = usable_cpus()
    assert Utility(cancer_small)._worker_threads() is None
    assert Utility(cancer_small, backend="processes", n_jobs=1)._worker_threads() == cores
    many = Utility(cancer_small, backend="processes", n_jobs=2 * cores)
    assert many._worker_threads() == 1
    remote = Utility(cancer_small, backend="dask", scheduler="tcp://127.0.0.1:1")
    assert remote._worker_threads() == 1

    # The job a worker runs passes its share on to the learner's fits.
    seen = []

    class Recording(BatchedLogisticRegression):
        def predict_proba_batch(self, task, masks, chains=None):
            seen.append(usable_threads())
            return super().predict_proba_batch(task, masks, chains)

    masks = np.ones((2, cancer_small.n_train), dtype=bool)
    masks[1, 0] = False
    job = _FitJob(cancer_small, Recording(), get_metric("accuracy"), "proba", threads=1)
    scores, _ = job((masks, None))
    assert seen == [1] and scores.shape == (2,)
    assert usable_threads() == cores
    # The serial backend's job adds no limit: a caller's own limit reaches the fits.
    serial = _FitJob(cancer_small, Recording(), get_metric("accuracy"), "proba")
    serial((masks, None))
    with thread_share(1):
        serial((masks, None))
    assert seen[1:] == [cores, 1]
