"""Compile the kernels a study's paths will use on a second thread, while the models are timed.

With the ``fast`` extra, the first run on a machine compiles each Numba kernel a path uses (a
few seconds each; then they are read from the on-disk cache). A study times its baseline models
with scikit-learn, one thread at a time, before it times any compiled path, so the compilation
can run beside those fits: Numba's LLVM passes release the interpreter lock, and the machine has
a core to spare. Only the kernels the task's paths take are compiled: the chain solver of the
logistic regression for its number of classes, KNN-Shapley's, the LASSO path of AME, and the
bagged trees only from the size at which Data-OOB grows them.

The warm-up calls the same functions a study calls, on a tiny task of the same kind, so the
compiled signatures are the ones the real calls need. The cost study waits for it to finish
before it times a path, so no timing counts a compilation.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

from dataworth.data.task import Task


def _tiny_task(n_classes: int) -> Task:
    """A task of 24 training and 8 test rows with ``n_classes`` classes (float64 features)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 3))
    y = np.arange(32) % n_classes
    return Task.from_arrays(X[:24], y[:24], X[24:], y[24:], name="warm-up")


def _warm_chains(task: Task) -> None:
    """One chain of the logistic regression, below its BLAS-thread limit.

    The learner's public path holds BLAS to one thread while it fits, and that limit is
    process-wide: set and restored from this thread it would change the threads of the fits the
    main thread is timing. The chain itself makes only tiny BLAS calls here.
    """
    from dataworth.learners.logreg.learner import BatchedLogisticRegression

    n = task.n_train
    masks = np.tri(n, dtype=bool)[n // 2 :]  # nested prefixes of half the rows and more
    chains = np.zeros(len(masks), dtype=np.int64)
    learner = BatchedLogisticRegression()
    params, _, _ = learner._fit_chains(
        task.X_train, task.y_train, task.n_classes, masks, None, None, chains
    )
    # The probabilities of its models (compiled for three classes or more).
    learner.predict_proba(params, task.X_test, n_classes=task.n_classes)


def _warm_knn(task: Task, k: int) -> None:
    from dataworth.methods.knn.shapley import knn_shapley

    # Both forms the cost study and the study call: one test row, and blocks of rows.
    knn_shapley(task, k, test_rows=[0])
    knn_shapley(task, k, block_rows=4)


def warm_up_kernels(task: Task, learner: str, knn_k: int = 10) -> None:
    """Compile (or load) the kernels this task's paths use; a no-op without Numba.

    Parameters
    ----------
    task : Task
        The study's task: its size and number of classes decide which kernels are used.
    learner : str
        The valuation learner's name (the chain solver is the logistic regression's).
    knn_k : int, default=10
        KNN-Shapley's neighbours (capped by the tiny task's size).
    """
    try:
        import numba  # noqa: F401
    except ImportError:
        return
    from dataworth.methods.ame.lasso.paths import warm_up_compiled_path
    from dataworth.methods.trees.bagged import warm_up as warm_up_trees
    from dataworth.methods.trees.oob import TREES_MIN_ROWS

    tiny = _tiny_task(task.n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny task's findings concern nobody
        if learner == "logreg":
            _warm_chains(tiny)
        _warm_knn(tiny, min(knn_k, 5))
        warm_up_compiled_path()
        if task.n_train >= TREES_MIN_ROWS:
            warm_up_trees()


class KernelWarmUp:
    """:func:`warm_up_kernels` on a daemon thread; :meth:`wait` joins it.

    An error on the thread is kept, not raised: the real call then compiles (and fails, if it
    must) on its own thread, where the error belongs.
    """

    def __init__(self, task: Task, learner: str, knn_k: int = 10) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(task, learner, knn_k), name="dataworth-warm-up", daemon=True
        )
        self._thread.start()

    def _run(self, task: Task, learner: str, knn_k: int) -> None:
        try:
            warm_up_kernels(task, learner, knn_k)
        except Exception as error:  # kept for the record, see the class docstring
            self.error = error

    def wait(self) -> None:
        """Block until the warm-up is done."""
        self._thread.join()
