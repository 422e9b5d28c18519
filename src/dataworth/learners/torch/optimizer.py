"""The optimiser update of the PyTorch learner, written so both training paths round alike."""

from __future__ import annotations

from typing import Protocol

from dataworth.learners.torch.models import _import_torch


class OptimizerSettings(Protocol):
    """What the update reads of its learner (the PyTorch learner has these attributes); a
    protocol, so that this module needs no import of the learner that imports it."""

    optimizer: str
    lr: float
    momentum: float
    weight_decay: float


class _OptimizerState:
    """Adam or SGD-with-momentum on a list of tensors (stacked or not), one kernel per operation.

    Every update is written as separate elementwise operations (no fused ``addcmul`` or
    ``alpha=``): each result is then one correctly rounded IEEE operation per element, the same
    whether a tensor holds one submodel or is a slice of a stack of many, and whether an element
    falls in a SIMD body or a scalar tail. That keeps the side-by-side and one-at-a-time paths
    (and different batch compositions) in step.
    """

    def __init__(self, learner: OptimizerSettings, tensors: list) -> None:
        torch = _import_torch()
        self.learner = learner
        self.t = 0
        self.m = [torch.zeros_like(p) for p in tensors]
        self.v = [torch.zeros_like(p) for p in tensors] if learner.optimizer == "adam" else None

    @classmethod
    def create(cls, learner: OptimizerSettings, tensors: list) -> _OptimizerState:
        return cls(learner, tensors)

    def step(self, params: list, grads: list) -> list:
        torch = _import_torch()
        ln = self.learner
        self.t += 1
        out = []
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if ln.weight_decay:
                g = g + p * ln.weight_decay
            if ln.optimizer == "sgd":
                self.m[i] = self.m[i] * ln.momentum + g if self.t > 1 else g
                out.append(p - self.m[i] * ln.lr)
                continue
            b1, b2, eps = 0.9, 0.999, 1e-8
            self.m[i] = self.m[i] * b1 + g * (1.0 - b1)
            self.v[i] = self.v[i] * b2 + (g * g) * (1.0 - b2)
            m_hat = self.m[i] / (1.0 - b1**self.t)
            v_hat = self.v[i] / (1.0 - b2**self.t)
            out.append(p - (m_hat / (torch.sqrt(v_hat) + eps)) * ln.lr)
        return out
