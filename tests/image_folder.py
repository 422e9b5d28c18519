"""A tiny folder of drawn shapes, the layout ``--images`` reads: one subfolder per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "cross", "square")


def draw(shape: str, rng: np.random.Generator, side: int = 8, colour: bool = False) -> Image.Image:
    """One ``side x side`` picture of ``shape`` at a random offset, with a little noise."""
    image = Image.new("RGB" if colour else "L", (side, side), 0)
    pen = ImageDraw.Draw(image)
    dx, dy = (int(v) for v in rng.integers(0, 2, size=2))
    box = (1 + dx, 1 + dy, side - 3 + dx, side - 3 + dy)
    ink = (255, 40, 40) if colour else 255
    if shape == "circle":
        pen.ellipse(box, outline=ink)
    elif shape == "square":
        pen.rectangle(box, outline=ink)
    else:
        pen.line(box, fill=ink)
        pen.line((box[0], box[3], box[2], box[1]), fill=ink)
    pixels = np.asarray(image, dtype=np.int64)
    noisy = np.clip(pixels + rng.integers(0, 30, size=pixels.shape), 0, 255).astype(np.uint8)
    if colour:
        noisy[..., 1:] = np.asarray(image, dtype=np.uint8)[..., 1:]  # noise on red only
    return Image.fromarray(noisy)


def make_folder(root: Path, per_class: int = 12, seed: int = 0, colour: bool = False) -> Path:
    """``root/<shape>/<k>.png`` for three shapes; returns ``root``."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            draw(shape, rng, colour=colour).save(root / shape / f"{k:02d}.png")
    return root
