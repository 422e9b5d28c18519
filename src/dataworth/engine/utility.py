"""The utility U(S): fit a learner on training subset S, score it on the test set.

Everything a method needs from the engine passes through :meth:`Utility.evaluate`: the batch of
subsets is deduplicated, looked up in the evaluation store, split into the subsets the learner
can fit and the degenerate ones (scored by the prior-only policy), chunked, run on the executor,
and every finished chunk is written to the store at once so an interrupted run loses at most the
chunks in flight.

A batch may name *chains* of nested subsets (the prefixes of a permutation, say). A learner that
supports them solves each chain in order, every member warm-started from the one before; the engine
never splits a chain across chunks, and computes a chain from its first member whenever any member
is missing from the store, so a member's value depends only on its chain, never on the chunking,
the backend or what the store already held.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataworth.data.task import Task
from dataworth.engine.executors import default_n_workers, make_executor, map_chunks
from dataworth.engine.game import Evaluation, as_masks
from dataworth.engine.hashing import subset_keys
from dataworth.engine.store import EvaluationStore
from dataworth.errors import DataworthError
from dataworth.learners import Learner, make_learner
from dataworth.learners.degenerate import is_degenerate, prior_predictions
from dataworth.learners.memory import available_memory
from dataworth.machine import one_blas_thread, thread_share, usable_cpus, usable_threads
from dataworth.metrics import PER_PREDICTION_KINDS, Metric, get_metric, per_prediction_scores

ProgressCallback = Callable[[int, int], None]

_BATCHED_CHUNK = 256
# Predictions of at least this many probabilities are scored on threads.
_SCORE_THREAD_ENTRIES = 2**22
# Chunks of chains run on threads from this many rows of fits in all (the members' sizes summed):
# about half a second of multiclass chain fits (a tenth of one binary), well above a pool's cost.
_CHAIN_THREAD_MIN_ROWS = 2_000_000


@dataclass(frozen=True)
class _FitJob:
    """What a worker needs to score a chunk: small, picklable, free of executors and stores."""

    task: Task
    learner: Learner
    metric: Metric
    per_prediction_kind: str
    # Threads a learner may run for one chunk: this worker's share of the cores when several
    # workers fit at once (None in the serial backend: no limit beyond the caller's own).
    threads: int | None = None

    def __call__(
        self, chunk: tuple[np.ndarray, np.ndarray | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        masks, chains = chunk
        with thread_share(self.threads):
            if chains is None:
                proba = self.learner.predict_proba_batch(self.task, masks)
            else:
                proba = self.learner.predict_proba_batch(self.task, masks, chains=chains)
            return _score_on_threads(proba, self.task, self.metric, self.per_prediction_kind)


def _whole_chains(rows: np.ndarray, labels: np.ndarray, size: int) -> list[np.ndarray]:
    """Chunks of about ``size`` rows that never split a chain (a longer chain is one chunk)."""
    _, first, counts = np.unique(labels, return_index=True, return_counts=True)
    chunks: list[np.ndarray] = []
    current: list[np.ndarray] = []
    filled = 0
    for start, count in sorted(zip(first, counts, strict=True)):
        members = rows[labels == labels[start]]
        if current and filled + count > size:
            chunks.append(np.concatenate(current))
            current, filled = [], 0
        current.append(members)
        filled += count
    if current:
        chunks.append(np.concatenate(current))
    return chunks


def _score(proba, labels, task: Task, metric: Metric, kind: str):
    scores = np.asarray(metric(proba, labels, task.y_test), dtype=np.float64)
    return scores, per_prediction_scores(proba, task.y_test, kind)


def _score_on_threads(proba, task: Task, metric: Metric, kind: str):
    """:func:`_score` of fitted models' predictions, large batches split by model on threads.

    Every metric scores each model from its own predictions, and NumPy releases the GIL in
    these array operations; scoring LOO's 35,000 models on 15,000 test rows took a third of
    its time on one thread.
    """
    # The predicted labels (an argmax over a short last axis, a sixth of scoring LOO's models)
    # only for the metrics that read them.
    label_free = not metric.uses_labels

    def part(sl: slice):
        labels = None if label_free else proba[sl].argmax(axis=2)
        return _score(proba[sl], labels, task, metric, kind)

    threads = usable_threads() if proba.size >= _SCORE_THREAD_ENTRIES else 1
    if threads == 1 or len(proba) < 2:
        return part(slice(None))
    bounds = np.linspace(0, len(proba), min(threads, len(proba)) + 1).astype(int)

    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        parts = list(pool.map(part, [slice(a, b) for a, b in itertools.pairwise(bounds)]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class Utility:
    """``U(S)``: a task, a learner and a metric, evaluated on batches of subsets.

    Parameters
    ----------
    task : Task
        The training and test rows.
    learner : str, Learner or scikit-learn classifier, default="logreg"
        See :func:`dataworth.learners.make_learner`.
    metric : str or Metric, default="neg_log_loss"
        A metric where higher is better (see :data:`dataworth.metrics.METRICS`).
    per_prediction : {"proba", "margin", "log_odds"}, default="proba"
        The per-test-row score: the probability of the true class, its margin, or its log-odds
        ``log(p / (1 - p))`` (the output the linear datamodeling score correlates).
    backend : {"serial", "processes", "dask"}, default="serial"
        Where chunks of subsets are fitted.
    n_jobs : int, optional
        Workers for the ``processes`` and ``dask`` backends.
    scheduler : str, optional
        Address of a running Dask scheduler; by default a local cluster is started.
    store : str, Path or EvaluationStore, optional
        The evaluation store (a SQLite file). Values found there are never refitted. By default
        an in-memory store lives as long as this object.
    chunk_size : int, optional
        Subsets per chunk sent to one worker.
    seed : int, default=0
        Random state pinned in generic models that use one (and the networks' seed).
    device : {"auto", "cpu", "cuda"}, optional
        Where a network learner (``"mlp"``, ``"cnn"``) trains; ``auto`` (the default) is CUDA
        when available.

    Examples
    --------
    >>> import numpy as np, dataworth as dw
    >>> task = dw.load_dataset("iris", seed=0)
    >>> u = dw.Utility(task, learner="logreg", metric="accuracy")
    >>> float(u.evaluate(np.ones((1, task.n_train), bool)).scores[0]) > 0.8
    True
    """

    def __init__(
        self,
        task: Task,
        learner: Any = "logreg",
        metric: str | Metric = "neg_log_loss",
        *,
        per_prediction: str = "proba",
        backend: str = "serial",
        n_jobs: int | None = None,
        scheduler: str | None = None,
        store: str | Path | EvaluationStore | None = None,
        chunk_size: int | None = None,
        seed: int = 0,
        device: str | None = None,
    ) -> None:
        if per_prediction not in PER_PREDICTION_KINDS:
            raise DataworthError(
                f"Unknown per-prediction score {per_prediction!r}; use one of "
                f"{', '.join(PER_PREDICTION_KINDS)}."
            )
        if chunk_size is not None and chunk_size < 1:
            raise DataworthError("chunk_size must be a positive number of subsets.")
        self.task = task
        self.learner = make_learner(learner, seed=seed, device=device)
        self.metric = get_metric(metric)
        self.per_prediction_kind = per_prediction
        self.backend = backend
        self.n_jobs = n_jobs
        self.scheduler = scheduler
        self.chunk_size = chunk_size
        self.store = store if isinstance(store, EvaluationStore) else EvaluationStore(store)
        self._executor_cm = None
        self._executor = None
        self.progress: ProgressCallback | None = None

    # -- identity -------------------------------------------------------------------------
    @property
    def n_players(self) -> int:
        return self.task.n_train

    @property
    def fingerprint(self) -> str:
        """Identifies everything that determines ``U``: task, learner, metric, score kind."""
        text = "|".join(
            (
                self.task.fingerprint,
                self.learner.fingerprint(),
                self.metric.name,
                self.per_prediction_kind,
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def describe(self) -> dict:
        """A JSON-able description for manifests."""
        return {
            "task": self.task.name,
            "task_fingerprint": self.task.fingerprint,
            "learner": self.learner.fingerprint(),
            "metric": self.metric.name,
            "per_prediction": self.per_prediction_kind,
            "utility_fingerprint": self.fingerprint,
            "backend": self.backend,
        }

    # -- executor lifecycle ---------------------------------------------------------------
    def _get_executor(self):
        if self._executor is None:
            self._executor_cm = make_executor(self.backend, self.n_jobs, self.scheduler)
            self._executor = self._executor_cm.__enter__()
        return self._executor

    def close(self) -> None:
        """Shut down worker processes or the Dask cluster started for this utility."""
        if self._executor_cm is not None:
            self._executor_cm.__exit__(None, None, None)
        self._executor_cm = self._executor = None

    def __enter__(self) -> Utility:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):
        raise TypeError(
            "A Utility holds an executor and a store and is not sent to workers; "
            "workers receive only the task, learner and metric."
        )

    # -- evaluation -----------------------------------------------------------------------
    def evaluate(self, masks, per_prediction: bool = False, chains=None) -> Evaluation:
        """Scores of a batch of training subsets.

        Parameters
        ----------
        masks : array-like of bool, shape (K, n_train)
            Each row selects a training subset.
        per_prediction : bool
            Also return the ``(K, n_test)`` per-prediction scores.
        chains : array-like of int, shape (K,), optional
            Chain labels: rows with the same label form a chain, in the order they appear, each a
            superset of the chain's previous row (the prefixes of a permutation, for example).
            Learners that support chains warm-start each member from the one before, which is
            much cheaper than independent fits; every value still meets the learner's tolerance.
            Ignored by other learners.

        Returns
        -------
        Evaluation
        """
        masks = as_masks(masks, self.n_players)
        chain_ids = self._chain_ids(chains, masks)
        keys = subset_keys(masks)
        # One fit per distinct subset, whatever the batch repeats (prefixes of permutations
        # share the empty and the full set, for instance).
        first_of: dict[bytes, int] = {}
        for k, key in enumerate(keys):
            first_of.setdefault(key, k)
        unique_keys = list(first_of)
        unique_rows = np.fromiter(first_of.values(), dtype=np.int64, count=len(first_of))

        found = self.store.get_many(self.fingerprint, unique_keys)
        if per_prediction:
            found = {k: v for k, v in found.items() if v.per_prediction is not None}
        results: dict[bytes, tuple[float, np.ndarray | None, bool]] = {
            k: (v.score, v.per_prediction, v.fallback) for k, v in found.items()
        }
        todo = [i for i, key in zip(unique_rows, unique_keys, strict=True) if key not in found]
        todo_rows = np.asarray(todo, dtype=np.int64)
        if len(todo_rows) and chain_ids is not None:
            # Every member of a chain with anything missing, from its first member on: a
            # member's value is defined by its chain, whatever the store already held.
            wanted = np.isin(chain_ids, chain_ids[todo_rows])
            self._compute(masks, keys, np.flatnonzero(wanted), per_prediction, results, chain_ids)
        elif len(todo_rows):
            self._compute(masks, keys, todo_rows, per_prediction, results)

        scores = np.array([results[k][0] for k in keys], dtype=np.float64)
        fallback = np.array([results[k][2] for k in keys], dtype=bool)
        per_pred = np.stack([results[k][1] for k in keys]) if per_prediction else None
        return Evaluation(scores, per_pred, fallback, n_fitted=len(todo_rows), n_cached=len(found))

    def _chain_ids(self, chains, masks: np.ndarray) -> np.ndarray | None:
        """Validated chain labels, or None when there are none or the learner ignores them."""
        if chains is None or not getattr(self.learner, "supports_chains", False):
            return None
        chain_ids = np.asarray(chains).reshape(-1)
        if chain_ids.shape != (len(masks),) or not np.issubdtype(chain_ids.dtype, np.integer):
            raise DataworthError(
                f"chains must hold one integer label per subset ({len(masks)}); "
                f"got an array of shape {chain_ids.shape} and dtype {chain_ids.dtype}."
            )
        return chain_ids

    def _compute(self, masks, keys, rows, per_prediction, results, chain_ids=None) -> None:
        task = self.task
        degenerate = is_degenerate(task.y_train, masks[rows], task.n_classes)
        total, done = len(rows), 0

        def record(batch_rows, scores, per_pred, fallback: bool) -> None:
            # A chain may hold a subset twice, or one the store already had: the first value
            # stands (values in the store are never replaced).
            nonlocal done
            entries = []
            for j, row in enumerate(batch_rows):
                if keys[row] in results:
                    continue
                pp = per_pred[j] if per_prediction else None
                results[keys[row]] = (float(scores[j]), pp, fallback)
                entries.append((keys[row], float(scores[j]), pp, fallback))
            self.store.put_many(self.fingerprint, entries)
            done += len(batch_rows)
            if self.progress is not None:
                self.progress(done, total)

        prior_rows = rows[degenerate]
        if len(prior_rows):
            proba, labels = prior_predictions(
                task.y_train, masks[prior_rows], task.n_classes, task.n_test
            )
            scores, per_pred = _score(proba, labels, task, self.metric, self.per_prediction_kind)
            record(prior_rows, scores, per_pred, True)

        fit_rows = rows[~degenerate]
        if not len(fit_rows):
            return
        size = self.chunk_size or self._default_chunk(len(fit_rows))
        if chain_ids is None:
            chunks = [fit_rows[i : i + size] for i in range(0, len(fit_rows), size)]
        else:
            chunks = _whole_chains(fit_rows, chain_ids[fit_rows], size)
        items = [(masks[c], None if chain_ids is None else chain_ids[c]) for c in chunks]

        def on_result(index: int, result) -> None:
            record(chunks[index], result[0], result[1], False)

        threads = self._chain_threads(chunks, masks) if chain_ids is not None else 1
        if threads > 1:
            # Serial backend, several chunks of chains: each chain is sequential and the chunks
            # are independent, so they run side by side on threads (the compiled chain solvers
            # release the GIL), one core and one BLAS thread each. A chunk's numbers do not
            # depend on the thread that fits it.
            job = _FitJob(task, self.learner, self.metric, self.per_prediction_kind, 1)
            pool = ThreadPoolExecutor(threads, thread_name_prefix="dataworth-chains")
            try:
                with one_blas_thread():
                    map_chunks(pool, job, items, on_result=on_result, max_in_flight=threads)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            return
        job = _FitJob(
            task, self.learner, self.metric, self.per_prediction_kind, self._worker_threads()
        )
        map_chunks(self._get_executor(), job, items, on_result=on_result)

    def _chain_threads(self, chunks: list[np.ndarray], masks: np.ndarray) -> int:
        """Threads for chunks of chains in the serial backend (1: the executor runs them).

        One below ``_CHAIN_THREAD_MIN_ROWS`` rows of fits in all (estimated from each chunk's
        last member), where a pool costs more than it saves; else as many as the usable cores
        (or the share the caller allows), at most one per chunk, and no more than a quarter of
        the free memory holds: each chunk in flight keeps its models' test-row probabilities and
        their scores.
        """
        if self.backend != "serial" or len(chunks) < 2:
            return 1
        rows = sum(len(c) * int(masks[c[-1]].sum()) for c in chunks)
        if rows < _CHAIN_THREAD_MIN_ROWS:
            return 1
        threads = min(usable_threads(), len(chunks))
        free = available_memory()
        if free is not None:
            largest = max(len(c) for c in chunks)
            per_chunk = 8 * largest * self.task.n_test * (2 * self.task.n_classes + 2)
            threads = min(threads, max(1, free // 4 // max(per_chunk, 1)))
        return max(1, threads)

    def _worker_threads(self) -> int | None:
        """Each worker's share of the cores: workers times a learner's threads stay within them.

        Workers of a remote Dask scheduler run on machines whose cores are unknown here; they
        get one thread each (the cluster's own workers and threads are its parallelism).
        """
        if self.backend == "serial":
            return None
        if self.scheduler is not None:
            return 1
        return max(1, usable_cpus() // (self.n_jobs or default_n_workers()))

    def _default_chunk(self, n: int) -> int:
        if getattr(self.learner, "batched", False):
            return _BATCHED_CHUNK
        workers = 1 if self.backend == "serial" else (self.n_jobs or 2)
        # A few chunks per worker balance the load; small chunks let the store keep progress.
        return max(1, min(32, math.ceil(n / (4 * workers))))
