"""The networks the PyTorch learner trains: picklable factories of small modules.

A factory is called as ``factory(n_features, n_classes)`` and returns a fresh ``nn.Module``; its
``repr`` names every parameter, because it enters the learner's fingerprint. PyTorch is optional:
this module imports it only when a factory is called (see :func:`_import_torch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dataworth.errors import DataworthError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from torch import nn


def _import_torch():
    """Import torch, or explain in one line how to install it."""
    try:
        import torch
        import torch.func  # the vectorised path needs it (torch >= 2.0)
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise DataworthError(
            "The PyTorch learner needs torch: run `pip install torch==2.13.0` (a local CPU "
            'build) or `pip install "dataworth[torch]"`.'
        ) from exc
    return torch


@dataclass(frozen=True)
class MLP:
    """Factory of a multilayer perceptron: ``Linear -> ReLU`` per hidden width, then ``Linear``.

    Instances are picklable and their ``repr`` names every parameter (it enters the learner's
    fingerprint).

    Parameters
    ----------
    hidden : tuple of int
        Widths of the hidden layers.
    """

    hidden: tuple[int, ...] = (64,)

    def __call__(self, n_features: int, n_classes: int) -> nn.Module:
        torch = _import_torch()
        layers: list = []
        width = n_features
        for h in self.hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            width = h
        layers.append(torch.nn.Linear(width, n_classes))
        return torch.nn.Sequential(*layers)


@dataclass(frozen=True)
class SmallCNN:
    """Factory of a small convolutional network for square single-channel images (digits 8x8).

    The flat feature vector is reshaped to ``1 x side x side``; two 3x3 convolutions (padding 1,
    ReLU), a 2x2 max-pool, a hidden linear layer and the output layer follow.

    Parameters
    ----------
    side : int
        Image side; ``n_features`` must equal ``side * side``.
    channels : tuple of two int
        Output channels of the two convolutions.
    hidden : int
        Width of the linear layer after the convolutions.
    """

    side: int = 8
    channels: tuple[int, int] = (8, 16)
    hidden: int = 32

    def __call__(self, n_features: int, n_classes: int) -> nn.Module:
        torch = _import_torch()
        nn = torch.nn
        if n_features != self.side * self.side:
            raise DataworthError(
                f"small_cnn(side={self.side}) needs {self.side * self.side} features (a flat "
                f"{self.side}x{self.side} image); the task has {n_features}."
            )
        c1, c2 = self.channels
        pooled = self.side // 2
        return nn.Sequential(
            nn.Unflatten(1, (1, self.side, self.side)),
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * pooled * pooled, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, n_classes),
        )


def mlp(hidden: Sequence[int] = (64,)) -> MLP:
    """A factory of multilayer perceptrons with the given hidden widths (see :class:`MLP`)."""
    return MLP(tuple(int(h) for h in hidden))


def small_cnn(side: int = 8, channels: Sequence[int] = (8, 16), hidden: int = 32) -> SmallCNN:
    """A factory of small CNNs for flat ``side x side`` images (see :class:`SmallCNN`)."""
    c = tuple(int(x) for x in channels)
    if len(c) != 2:
        raise DataworthError("small_cnn needs exactly two channel counts, e.g. (8, 16).")
    return SmallCNN(int(side), c, int(hidden))
