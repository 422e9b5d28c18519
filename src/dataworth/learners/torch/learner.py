"""Small PyTorch networks retrained on many training subsets, side by side.

See docs/design.md, section 4, for the batched learners.

The AME paper's utility is a neural network retrained on thousands of random subsets. Trained one
at a time, each small model wastes most of its time in Python and tiny kernels; here ``K``
submodels of one architecture are trained at once as one vectorised program: their parameters are
stacked along a leading axis (:func:`torch.func.stack_module_state`) and one call of
``vmap(grad(loss))`` over :func:`torch.func.functional_call` gives every submodel's gradient on its
own minibatch; a hand-written Adam/SGD update then acts on the stacked tensors.

Training rule (Lin et al., ICML 2022): every submodel takes the same, fixed number of optimisation
steps whatever the size of its subset. With a fixed number of *epochs* instead, small subsets would
be under-trained and the subset size would leak into every value.

Each submodel is a pure function of (learner parameters, task, its subset):

* its seed is derived from the learner's ``seed`` and a SHA-256 digest of the subset's mask bits
  (:func:`submodel_seed`), never from its position in a batch, so the same subset gives the same
  model in any batch, chunk, worker or run. The engine relies on this: a cached value must be the
  value a refit would give;
* that seed initialises the module (the factory is called under ``torch.manual_seed``; with
  ``shared_init=True`` every submodel starts instead from the learner's ``seed``, common random
  numbers that lower the variance of sampling estimators) and a separate stream draws its
  minibatches, ``steps x batch_size`` row indices sampled uniformly *with replacement* from its
  own subset only (so a two-point subset still gets full batches);
* results are bitwise independent of the batch on a given machine: a lone subset is trained
  beside a copy of itself, because ``vmap`` over one submodel runs different kernels;
* logits of classes absent from the subset are set to ``-inf`` in training and prediction, so,
  like the other learners, a submodel gives those classes probability exactly 0.

The side-by-side path and the one-at-a-time path start from the same parameters, see the same
minibatches and apply the same update arithmetic; they agree to float rounding (the gradients are
computed by different kernels). Models the vectorised path cannot train (BatchNorm with running
statistics, dropout or anything else ``vmap`` refuses) are trained one at a time.

PyTorch is an optional dependency: install it with ``pip install "dataworth[torch]"`` (or, on
machines with a local CPU build, ``pip install torch==2.13.0``). Importing this module without it
works; constructing a :class:`TorchLearner` raises a :class:`~dataworth.errors.DataworthError`.
"""

from __future__ import annotations

import copy
import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dataworth.data.task import Task
from dataworth.errors import DataworthError

# The module factories and the optimiser update live beside this module; the names stay
# importable from here.
from dataworth.learners.torch.models import MLP, SmallCNN, _import_torch, mlp, small_cnn
from dataworth.learners.torch.optimizer import _OptimizerState

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

__all__ = ["MLP", "SmallCNN", "TorchLearner", "mlp", "small_cnn", "submodel_seed"]

# Bump when the training arithmetic or the seed derivation changes, so that stored utilities of
# an older trainer are never mixed with new ones (part of the fingerprint).
_TRAINER_VERSION = "torch-sbs-1"
_SEED_DOMAIN = b"dataworth-torch-submodel-v1"
# Test rows are predicted in fixed-size blocks (independent of K) to bound activation memory.
_PREDICT_ROWS = 512
_OPTIMIZERS = ("adam", "sgd")
# Mixed into a submodel's seed for the random numbers its module draws in training (dropout).
_DROPOUT_STREAM = 0x5DEECE66D


# ---------------------------------------------------------------------- seeds


def submodel_seed(mask: np.ndarray, seed: int) -> int:
    """The seed of the submodel trained on ``mask``: a function of the subset, not its position.

    Parameters
    ----------
    mask : ndarray of bool, shape (n_train,)
    seed : int
        The learner's seed.

    Returns
    -------
    int
        A 63-bit integer from a SHA-256 digest of the seed, the mask's length and its packed bits
        (stable across processes, machines and Python versions, unlike ``hash()``).
    """
    mask = np.asarray(mask, dtype=bool)
    h = hashlib.sha256(_SEED_DOMAIN)
    h.update(int(seed).to_bytes(8, "little", signed=True))
    h.update(len(mask).to_bytes(8, "little"))
    h.update(np.packbits(mask).tobytes())
    return int.from_bytes(h.digest()[:8], "little") & (2**63 - 1)


def _minibatch_rows(mask: np.ndarray, seed: int, steps: int, batch_size: int) -> np.ndarray:
    """``(steps, batch_size)`` training positions drawn with replacement from the subset."""
    members = np.flatnonzero(mask)
    # A stream of its own (not the one that initialises the module), from the submodel's seed.
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1])))
    return members[rng.integers(0, len(members), size=(steps, batch_size))]


# ---------------------------------------------------------------------- the learner


class TorchLearner:
    """Train one small PyTorch network per subset, many side by side, and predict the test rows.

    Parameters
    ----------
    module_factory : callable
        ``module_factory(n_features, n_classes) -> nn.Module`` giving a fresh module whose forward
        maps a ``(batch, n_features)`` float tensor to ``(batch, n_classes)`` logits. It is called
        once per submodel under that submodel's seed, so its initialisation is reproducible. It
        must be picklable (for worker processes) and its ``repr`` should name everything that
        changes the architecture: the fingerprint (the store's key) uses it. :func:`mlp` and
        :func:`small_cnn` give such factories.
    steps : int, default 200
        Optimisation steps per submodel, the same for every subset size.
    batch_size : int, default 32
        Rows per minibatch, drawn with replacement from the submodel's own subset.
    lr : float, default 0.01
        Learning rate.
    weight_decay : float, default 0.0
        L2 penalty added to the gradient (coupled, as in ``torch.optim.Adam``).
    optimizer : {"adam", "sgd"}, default "adam"
        Adam (betas 0.9, 0.999, eps 1e-8) or SGD with ``momentum``.
    momentum : float, default 0.9
        Momentum of SGD (ignored by Adam).
    seed : int, default 0
        Base seed; each submodel's seed is derived from it and its subset (:func:`submodel_seed`).
    device : str or torch.device, optional
        Where to train; by default CUDA when ``torch.cuda.is_available()``, else the CPU.
    vectorized : bool, default True
        Train submodels side by side with ``torch.func``; ``False`` trains them one at a time.
        Modules the vectorised path cannot handle are trained one at a time either way.
    max_parallel : int, default 64
        Most submodels trained in one vectorised program (bounds memory). Results do not
        depend on it.
    n_threads : int, optional
        CPU threads for torch during a fit (restored afterwards); by default torch's setting.
        Use 1 with the ``processes`` backend, so that workers do not oversubscribe the cores.
    dtype : {"float32", "float64"}, default "float32"
    shared_init : bool, default False
        Start every submodel from the same initial parameters (drawn from ``seed``) instead of
        from its own seed; minibatches still come from each submodel's seed. These common random
        numbers take the initialisation's noise out of the differences between subsets, which
        lowers the variance of sampling estimators (AME, TMC) at the same number of fits; the
        values then refer to that one initialisation rather than averaging over them.

    Notes
    -----
    The same subset gives the same model (and probabilities) whatever other subsets share its
    batch: its seed depends only on ``seed`` and its mask, its minibatches only on that seed, and
    the vectorised update treats each submodel's slice on its own.

    Examples
    --------
    >>> import numpy as np, dataworth as dw
    >>> from dataworth.learners.torch.learner import TorchLearner, mlp
    >>> task = dw.load_dataset("iris", seed=0)
    >>> learner = TorchLearner(mlp((16,)), steps=50)
    >>> u = dw.Utility(task, learner=learner, metric="accuracy")
    >>> float(u.evaluate(np.ones((1, task.n_train), bool)).scores[0]) > 0.5
    True
    """

    name = "torch"
    # Tells the engine to send whole chunks of subsets (one vectorised program per chunk).
    batched = True

    def __init__(
        self,
        module_factory: Callable[[int, int], Any],
        *,
        steps: int = 200,
        batch_size: int = 32,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        momentum: float = 0.9,
        seed: int = 0,
        device: str | None = None,
        vectorized: bool = True,
        max_parallel: int = 64,
        n_threads: int | None = None,
        dtype: str = "float32",
        shared_init: bool = False,
    ) -> None:
        _import_torch()
        if not callable(module_factory):
            raise DataworthError(
                "module_factory must be callable: (n_features, n_classes) -> Module."
            )
        for label, value in (("steps", steps), ("batch_size", batch_size)):
            if int(value) != value or value < 1:
                raise DataworthError(f"{label} must be a positive integer, got {value!r}.")
        if int(max_parallel) != max_parallel or max_parallel < 1:
            raise DataworthError(f"max_parallel must be a positive integer, got {max_parallel!r}.")
        if not (np.isfinite(lr) and lr > 0):
            raise DataworthError(f"lr must be a positive number, got {lr!r}.")
        if not (np.isfinite(weight_decay) and weight_decay >= 0):
            raise DataworthError(f"weight_decay must be >= 0, got {weight_decay!r}.")
        if optimizer not in _OPTIMIZERS:
            raise DataworthError(f"Unknown optimizer {optimizer!r}; use one of {_OPTIMIZERS}.")
        if not 0.0 <= momentum < 1.0:
            raise DataworthError(f"momentum must lie in [0, 1), got {momentum!r}.")
        if dtype not in ("float32", "float64"):
            raise DataworthError(f"dtype must be 'float32' or 'float64', got {dtype!r}.")
        if n_threads is not None and (int(n_threads) != n_threads or n_threads < 1):
            raise DataworthError(f"n_threads must be a positive integer, got {n_threads!r}.")
        self.module_factory = module_factory
        self.steps = int(steps)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.optimizer = optimizer
        self.momentum = float(momentum)
        self.seed = int(seed)
        self.device = None if device is None else str(device)
        self.vectorized = bool(vectorized)
        self.max_parallel = int(max_parallel)
        self.n_threads = None if n_threads is None else int(n_threads)
        self.dtype = dtype
        self.shared_init = bool(shared_init)
        self._data: tuple[str, str, Any] | None = None  # (task fingerprint, device, tensors)
        self._fallback_reason: str | None = None

    # ------------------------------------------------------------------ protocol and plumbing

    def __repr__(self) -> str:
        return (
            f"TorchLearner({self.module_factory!r}, steps={self.steps}, "
            f"batch_size={self.batch_size}, lr={self.lr!r}, weight_decay={self.weight_decay!r}, "
            f"optimizer={self.optimizer!r}, seed={self.seed}, vectorized={self.vectorized})"
        )

    def fingerprint(self) -> str:
        """A stable text naming the architecture, the training settings and the trainer."""
        torch = _import_torch()
        factory = self.module_factory
        # A factory with its own repr (a dataclass, say) names its parameters. A default repr
        # (functions, plain objects) holds a memory address, different in every process: such a
        # factory is named by its qualified name (or its class's) instead.
        described = repr(factory)
        if " at 0x" in described:
            owner = factory if hasattr(factory, "__qualname__") else type(factory)
            described = f"{owner.__module__}.{owner.__qualname__}"
        momentum = f",momentum={self.momentum!r}" if self.optimizer == "sgd" else ""
        return (
            f"torch({described},steps={self.steps},batch={self.batch_size},lr={self.lr!r},"
            f"wd={self.weight_decay!r},opt={self.optimizer}{momentum},seed={self.seed},"
            f"dtype={self.dtype},device={self._device().type},vectorized={self.vectorized},"
            f"shared_init={self.shared_init},"
            f"trainer={_TRAINER_VERSION},torch={torch.__version__.split('+')[0]})"
        )

    def __getstate__(self) -> dict:
        # Tensors cached for the last task are rebuilt in the worker; keeps pickles small.
        state = self.__dict__.copy()
        state["_data"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def fallback_reason(self) -> str | None:
        """Why the last fit trained one at a time although ``vectorized`` was asked (or None)."""
        return self._fallback_reason

    def predict_proba_batch(self, task: Task, masks: np.ndarray) -> np.ndarray:
        """Train one submodel per row of ``masks`` and return the test rows' class probabilities.

        Parameters
        ----------
        task : Task
        masks : ndarray of bool, shape (K, n_train)
            Each row selects a training subset with at least two classes.

        Returns
        -------
        ndarray of shape (K, n_test, n_classes)
            Softmax probabilities (float64); exactly zero for a class the subset lacks.
        """
        torch = _import_torch()
        masks = self._check_masks(masks, task.n_train)
        out = np.empty((len(masks), task.n_test, task.n_classes))
        with self._threads():
            for start in range(0, len(masks), self.max_parallel):
                chunk = masks[start : start + self.max_parallel]
                padded = self._pad(chunk)
                proba = self._predict(task, padded, self._fit_chunk(task, padded))
                out[start : start + len(chunk)] = proba[: len(chunk)].to("cpu", torch.float64)
        return out

    def fit_params(self, task: Task, masks: np.ndarray) -> dict[str, torch.Tensor]:
        """Train one submodel per row of ``masks`` and return their stacked parameters.

        Parameters
        ----------
        task : Task
        masks : ndarray of bool, shape (K, n_train)

        Returns
        -------
        dict of str to Tensor
            For each parameter name of the module, a tensor with a leading axis of length ``K``
            (on the CPU).
        """
        torch = _import_torch()
        masks = self._check_masks(masks, task.n_train)
        pieces: list[dict] = []
        with self._threads():
            for start in range(0, len(masks), self.max_parallel):
                chunk = masks[start : start + self.max_parallel]
                trained = self._fit_chunk(task, self._pad(chunk))
                pieces.append(
                    {k: v[: len(chunk)].detach().cpu() for k, v in trained.params.items()}
                )
        return {k: torch.cat([p[k] for p in pieces]) for k in pieces[0]}

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _check_masks(masks: np.ndarray, n_train: int) -> np.ndarray:
        masks = np.asarray(masks)
        if masks.ndim != 2 or masks.shape[1] != n_train or masks.dtype != bool:
            raise DataworthError(f"masks must be a (K, {n_train}) boolean array.")
        if len(masks) and not masks.any(axis=1).all():
            raise DataworthError("Every subset given to the torch learner needs a training row.")
        return masks

    def _pad(self, chunk: np.ndarray) -> np.ndarray:
        """A lone subset is trained and predicted beside a copy of itself.

        ``vmap`` over a batch of one runs different CPU kernels (unbatched matrix products that
        split their reductions across threads differently) than over two or more, and the results
        differ in the last bits. Batches of two or more agree bit for bit, so padding makes a
        subset's model independent of how many other subsets share its call.
        """
        if self.vectorized and len(chunk) == 1:
            return np.repeat(chunk, 2, axis=0)
        return chunk

    def _device(self):
        torch = _import_torch()
        if self.device is not None:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _threads(self):
        torch = _import_torch()
        learner = self

        class _Threads:
            def __enter__(self) -> None:
                self.old = torch.get_num_threads()
                if learner.n_threads is not None:
                    torch.set_num_threads(learner.n_threads)

            def __exit__(self, *exc) -> None:
                torch.set_num_threads(self.old)

        return _Threads()

    def _tensors(self, task: Task):
        """The task's arrays as tensors on the device, cached for the last task."""
        torch = _import_torch()
        device = self._device()
        if self._data is None or self._data[:2] != (task.fingerprint, str(device)):
            dt = getattr(torch, self.dtype)
            tensors = (
                # Copies: the task's arrays are read-only, which torch does not support.
                torch.tensor(np.array(task.X_train), dtype=dt, device=device),
                torch.tensor(np.array(task.y_train), dtype=torch.long, device=device),
                torch.tensor(np.array(task.X_test), dtype=dt, device=device),
            )
            self._data = (task.fingerprint, str(device), tensors)
        return self._data[2]

    def _new_module(self, task: Task, seed: int):
        """The factory's module, initialised from the submodel's seed without touching the
        caller's global random state."""
        torch = _import_torch()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self.module_factory(task.n_features, task.n_classes)
        if not isinstance(module, torch.nn.Module):
            raise DataworthError("module_factory must return a torch.nn.Module.")
        return module.to(device=self._device(), dtype=getattr(torch, self.dtype))

    def _class_offsets(self, task: Task, masks: np.ndarray):
        """``(K, n_classes)`` logit offsets: 0 for a class in the subset, -inf otherwise."""
        torch = _import_torch()
        present = np.zeros((len(masks), task.n_classes), dtype=bool)
        for c in range(task.n_classes):
            present[:, c] = (masks & (task.y_train == c)[None, :]).any(axis=1)
        offsets = np.where(present, 0.0, -np.inf)
        return torch.as_tensor(offsets, dtype=getattr(torch, self.dtype), device=self._device())

    def _fit_chunk(self, task: Task, masks: np.ndarray):
        """Train the chunk's submodels (side by side where the module allows it)."""
        torch = _import_torch()
        seeds = [submodel_seed(m, self.seed) for m in masks]
        init_seeds = [self.seed] * len(seeds) if self.shared_init else seeds
        modules = [self._new_module(task, s) for s in init_seeds]
        rows = np.stack(
            [
                _minibatch_rows(m, s, self.steps, self.batch_size)
                for m, s in zip(masks, seeds, strict=True)
            ]
        )
        rows_t = torch.as_tensor(rows, device=self._device())
        offsets = self._class_offsets(task, masks)
        self._fallback_reason = None
        if self.vectorized:
            reason = _unvectorizable(modules[0])
            if reason is None:
                try:
                    return self._train_side_by_side(task, modules, rows_t, offsets)
                except (RuntimeError, NotImplementedError, ValueError) as exc:
                    # vmap refuses some operations (random ones, in-place buffer updates...);
                    # the model is still trainable, one submodel at a time.
                    reason = f"vmap failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            self._fallback_reason = reason
            warnings.warn(
                f"Training submodels one at a time: {reason}.", RuntimeWarning, stacklevel=3
            )
            # Fresh modules: a failed attempt may have changed them.
            modules = [self._new_module(task, s) for s in init_seeds]
        return self._train_one_at_a_time(task, modules, seeds, rows_t, offsets)

    def _train_side_by_side(self, task: Task, modules: list, rows, offsets):
        torch = _import_torch()
        from torch.func import functional_call, grad, stack_module_state, vmap

        X, y, _ = self._tensors(task)
        params, buffers = stack_module_state(modules)
        params = {k: v.detach() for k, v in params.items()}
        # A stateless skeleton: functional_call supplies each submodel's tensors.
        base = copy.deepcopy(modules[0]).to("meta")
        base.train()

        def loss(p, b, xb, yb, offset):
            logits = functional_call(base, (p, b), (xb,)) + offset
            return torch.nn.functional.cross_entropy(logits, yb)

        # randomness="error": a module drawing random numbers (dropout) would otherwise train
        # with numbers shared across, or dependent on, the batch; it goes one at a time instead.
        batched_grad = vmap(grad(loss), in_dims=(0, 0, 0, 0, 0), randomness="error")
        state = _OptimizerState.create(self, list(params.values()))
        names = list(params)
        for t in range(self.steps):
            idx = rows[:, t]  # (K, batch)
            grads = batched_grad(params, buffers, X[idx], y[idx], offsets[:, None, :])
            new = state.step([params[k] for k in names], [grads[k] for k in names])
            params = dict(zip(names, new, strict=True))
        base.eval()
        return _Trained(base, params, buffers, None)

    def _train_one_at_a_time(self, task: Task, modules: list, seeds: list, rows, offsets):
        torch = _import_torch()
        from torch.func import stack_module_state

        X, y, _ = self._tensors(task)
        for k, module in enumerate(modules):
            module.train()
            params = list(module.parameters())
            state = _OptimizerState.create(self, [p.detach() for p in params])
            # Modules that draw random numbers in training (dropout) draw them from the
            # submodel's seed, so the result does not depend on the caller's random state.
            with torch.random.fork_rng(devices=[] if X.device.type == "cpu" else [X.device]):
                torch.manual_seed(seeds[k] ^ _DROPOUT_STREAM)
                for t in range(self.steps):
                    idx = rows[k, t]
                    logits = module(X[idx]) + offsets[k]
                    value = torch.nn.functional.cross_entropy(logits, y[idx])
                    grads = torch.autograd.grad(value, params)
                    new = state.step([p.detach() for p in params], [g.detach() for g in grads])
                    with torch.no_grad():
                        for p, v in zip(params, new, strict=True):
                            p.copy_(v)
            module.eval()
        params, buffers = stack_module_state(modules)
        params = {k: v.detach() for k, v in params.items()}
        base = copy.deepcopy(modules[0]).to("meta")
        base.eval()
        return _Trained(base, params, buffers, modules)

    def _predict(self, task: Task, masks: np.ndarray, trained: _Trained, X_rows=None):
        """Softmax probabilities of the test rows (or of ``X_rows``, a tensor on the device)."""
        torch = _import_torch()
        from torch.func import functional_call, vmap

        X_test = self._tensors(task)[2] if X_rows is None else X_rows
        offsets = self._class_offsets(task, masks)
        base = trained.base
        batched = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))
        blocks = []
        with torch.no_grad():
            for start in range(0, len(X_test), _PREDICT_ROWS):
                xb = X_test[start : start + _PREDICT_ROWS]
                if trained.modules is None:
                    logits = batched(trained.params, trained.buffers, xb)
                else:
                    # Trained one at a time: predict the same way (any module works in eval).
                    logits = torch.stack([m(xb) for m in trained.modules])
                blocks.append(torch.softmax(logits + offsets[:, None, :], dim=2))
        if not blocks:
            return torch.empty((len(masks), 0, task.n_classes))
        return torch.cat(blocks, dim=1)

    def fit_predictor(self, task: Task) -> Callable[[np.ndarray], np.ndarray]:
        """Train one network on every training row and return ``predict_proba(X)`` for any rows.

        The network is the one :meth:`predict_proba_batch` trains on the full mask (same seed,
        same minibatches), so the baseline's model of a study is its valuation's full-data model.

        Parameters
        ----------
        task : Task

        Returns
        -------
        callable
            ``predict_proba(X) -> (len(X), n_classes)`` float64 probabilities.
        """
        torch = _import_torch()
        padded = self._pad(np.ones((1, task.n_train), dtype=bool))
        with self._threads():
            trained = self._fit_chunk(task, padded)

        def predict_proba(X: np.ndarray) -> np.ndarray:
            rows = torch.tensor(
                np.array(X, dtype=np.float64),
                dtype=getattr(torch, self.dtype),
                device=self._device(),
            )
            with self._threads():
                proba = self._predict(task, padded, trained, X_rows=rows)
            return proba[0].to("cpu", torch.float64).numpy()

        return predict_proba


@dataclass
class _Trained:
    """A chunk of trained submodels: a stateless skeleton with stacked parameters and buffers,
    and the modules themselves when they were trained one at a time."""

    base: Any
    params: dict
    buffers: dict
    modules: list | None


def _unvectorizable(module) -> str | None:
    """Why a module cannot be trained by the vectorised path, or None."""
    torch = _import_torch()
    for sub in module.modules():
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm) and sub.track_running_stats:
            return f"{type(sub).__name__} updates running statistics in training"
        if isinstance(sub, torch.nn.modules.dropout._DropoutNd):
            return f"{type(sub).__name__} draws random numbers in training"
    return None
