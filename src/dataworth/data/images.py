"""Image folders as a data source: one subfolder per class, each image one row of pixels.

The layout is the one image toolkits share: ``DIR/<class>/<file>``. Each readable image is
resized to a square of ``image_size`` pixels and flattened, channels first, into one row of
values in [0, 1] (columns ``px_<row>_<col>`` for grey images, ``r_``, ``g_``, ``b_`` ones for
colour), so the tabular learners see pixels and the CNN folds them back into images (its side and
channels follow from the number of columns, see
:func:`dataworth.learners.torch.models.image_layout`). A folder whose images are all grey (every
pixel with equal red, green and blue) gives one channel, any other three. A row's id is its
file's path relative to ``DIR`` (``cat/0001.png``), so every value names the image it is about.

A file Pillow cannot read is left out and named by a warning of its own (:class:`Finding`
``unreadable_image``); the data checks of rows (duplicate images, images in both splits, a class
too small for the split) then run as on any table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dataworth.data.findings import Finding
from dataworth.errors import DataworthError

__all__ = ["DEFAULT_IMAGE_SIZE", "ImageFolder", "read_image_folder"]

DEFAULT_IMAGE_SIZE = 28
MAX_IMAGE_SIZE = 256
"""Larger sides make rows of hundreds of thousands of columns, beyond every learner here."""


class ImageFolder:
    """What :func:`read_image_folder` found: the pixel rows, their labels and the unreadable files.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per readable image (pixel columns and ``label``), indexed by relative path.
    shape : tuple of int
        ``(channels, side, side)`` of every image.
    findings : list of Finding
        One ``unreadable_image`` warning per file that could not be read.
    """

    def __init__(self, frame: pd.DataFrame, shape: tuple[int, int, int], findings: list) -> None:
        self.frame = frame
        self.shape = shape
        self.findings = findings


def read_image_folder(path, image_size: int = DEFAULT_IMAGE_SIZE) -> ImageFolder:
    """Read ``DIR/<class>/<file>`` images into rows of pixels (see the module's docstring).

    Parameters
    ----------
    path : str or Path
        The folder; each subfolder is a class, named by the subfolder.
    image_size : int, default 28
        Side of the square every image is resized to (bilinear).

    Returns
    -------
    ImageFolder

    Raises
    ------
    DataworthError
        The folder is missing, has no class subfolders, or no readable image.
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(path)
    size = _check_size(image_size)
    if not folder.is_dir():
        raise DataworthError(
            f"--images {str(folder)!r} is not a folder; give a folder with one subfolder of "
            "images per class."
        )
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataworthError(
            f"--images {str(folder)!r} has no subfolders; put each class's images in a "
            "subfolder named after the class (DIR/cat/1.png, DIR/dog/2.png)."
        )
    pixels: list[np.ndarray] = []
    labels: list[str] = []
    ids: list[str] = []
    findings: list[Finding] = []
    for class_dir in classes:
        files = sorted(p for p in class_dir.rglob("*") if p.is_file())
        for file in files:
            if any(part.startswith(".") for part in file.relative_to(folder).parts):
                continue  # hidden files (.DS_Store) are no images
            name = file.relative_to(folder).as_posix()
            try:
                with Image.open(file) as image:
                    rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                    pixels.append(np.asarray(rgb, dtype=np.float64).transpose(2, 0, 1) / 255.0)
            except UnidentifiedImageError:
                findings.append(_unreadable(name, "not an image Pillow can read"))
                continue
            except (OSError, ValueError) as error:  # truncated or corrupt image data
                findings.append(_unreadable(name, str(error).splitlines()[0] or "corrupt"))
                continue
            labels.append(class_dir.name)
            ids.append(name)
    if not pixels:
        raise DataworthError(
            f"--images {str(folder)!r} holds no image Pillow can read (PNG, JPEG, ...); "
            f"{len(findings)} file(s) could not be read."
        )
    stack = np.stack(pixels)
    grey = bool((stack[:, :1] == stack).all())
    if grey:
        stack = stack[:, :1]
    channels = ("px",) if grey else ("r", "g", "b")
    columns = [f"{c}_{r}_{k}" for c in channels for r in range(size) for k in range(size)]
    frame = pd.DataFrame(stack.reshape(len(stack), -1), columns=columns, index=pd.Index(ids))
    frame["label"] = labels
    return ImageFolder(frame, (len(channels), size, size), findings)


def _check_size(image_size) -> int:
    if isinstance(image_size, bool) or int(image_size) != image_size or image_size < 2:
        raise DataworthError(
            f"--image-size must be a whole number of pixels >= 2; got {image_size}."
        )
    if image_size > MAX_IMAGE_SIZE:
        raise DataworthError(
            f"--image-size {image_size} makes rows of {image_size * image_size} pixels or more; "
            f"use at most {MAX_IMAGE_SIZE} (the default is {DEFAULT_IMAGE_SIZE})."
        )
    return int(image_size)


def _unreadable(name: str, reason: str) -> Finding:
    return Finding(
        check="unreadable_image",
        severity="warning",
        columns=(),
        message=f"Image file {name!r} cannot be read ({reason}); it was left out. Replace or "
        "remove it.",
        meaning="The image is not valued and does not train any model.",
        rows=(name,),
    )
