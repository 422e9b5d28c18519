"""The networks the PyTorch learner trains: picklable factories of small modules.

A factory is called as ``factory(n_features, n_classes)`` and returns a fresh ``nn.Module``; its
``repr`` names every parameter, because it enters the learner's fingerprint. PyTorch is optional:
this module imports it only when a factory is called (see :func:`_import_torch`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dataworth.errors import DataworthError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from torch import nn


INSTALL_TORCH = (
    'The neural networks need PyTorch: run `pip install -e ".[torch]"` (first `pip install '
    "torch==2.13.0` for a pinned CPU build, which avoids a multi-GB CUDA download)."
)
"""The one line every refusal for lack of torch prints."""


def _import_torch():
    """Import torch, or explain in one line how to install it."""
    try:
        import torch
        import torch.func  # the vectorised path needs it (torch >= 2.0)
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise DataworthError(INSTALL_TORCH) from exc
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
    """Factory of a small convolutional network for square images (digits 8x8, image folders).

    The flat feature vector is reshaped to ``channels x side x side`` (the layout
    :func:`dataworth.data.images.read_image_folder` flattens images in); two 3x3 convolutions
    (padding 1, ReLU), a 2x2 max-pool, a hidden linear layer and the output layer follow.

    Parameters
    ----------
    side : int or None
        Image side; ``n_features`` must equal ``side * side`` (grey) or ``3 * side * side``
        (colour). ``None`` reads the side from ``n_features``: a square number is a grey image,
        three times a square a colour one (never both: 3 is not a square).
    channels : tuple of two int
        Output channels of the two convolutions.
    hidden : int
        Width of the linear layer after the convolutions.
    """

    side: int | None = 8
    channels: tuple[int, int] = (8, 16)
    hidden: int = 32

    def __call__(self, n_features: int, n_classes: int) -> nn.Module:
        torch = _import_torch()
        nn = torch.nn
        colours, side = image_layout(n_features, self.side)
        c1, c2 = self.channels
        pooled = side // 2
        return nn.Sequential(
            nn.Unflatten(1, (colours, side, side)),
            nn.Conv2d(colours, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * pooled * pooled, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, n_classes),
        )


def image_layout(n_features: int, side: int | None = None) -> tuple[int, int]:
    """``(colour channels, side)`` of square images flattened into ``n_features`` values.

    Raises
    ------
    DataworthError
        When the features are not one square image (of ``side``, when given) in grey or colour.
    """
    for colours in (1, 3):
        root = math.isqrt(n_features // colours)
        if colours * root * root == n_features and root >= 2 and side in (None, root):
            return colours, root
    wanted = (
        "a square image"
        if side is None
        else f"{side * side} features (a {side}x{side} grey image) or {3 * side * side} (colour)"
    )
    raise DataworthError(
        f"The CNN needs {wanted}; the task has {n_features} features. Use it on images "
        "(--images DIR, or --dataset digits), or choose --model mlp for tables."
    )


def mlp(hidden: Sequence[int] = (64,)) -> MLP:
    """A factory of multilayer perceptrons with the given hidden widths (see :class:`MLP`)."""
    return MLP(tuple(int(h) for h in hidden))


def small_cnn(
    side: int | None = 8, channels: Sequence[int] = (8, 16), hidden: int = 32
) -> SmallCNN:
    """A factory of small CNNs for flat ``side x side`` images (see :class:`SmallCNN`).

    ``side=None`` reads the side from the number of features.
    """
    c = tuple(int(x) for x in channels)
    if len(c) != 2:
        raise DataworthError("small_cnn needs exactly two channel counts, e.g. (8, 16).")
    return SmallCNN(None if side is None else int(side), c, int(hidden))
