"""Pictures of image data: the training images behind a prediction, and the rows a method flags.

A task read from images (or the built-in digits) keeps ``metadata["image_shape"]``; its rows are
the pixels, flattened channels first. Valuing images is only readable as images: a reader wants
to see which training pictures made the network predict a label, and whether the pictures a
method ranks lowest are mislabelled or broken. The pictures are drawn from the raw pixels (before
standardisation) when the task keeps them, each figure on one grey or colour scale.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from dataworth.data.task import Task
from dataworth.methods.result import ValuationResult
from dataworth.report.figures import new_figure

__all__ = ["has_images", "prediction_images_figure", "thumbnails_figure"]

THUMBNAILS = 10
"""Training images a thumbnail figure shows (the lowest values)."""
_ID_CHARS = 16


def has_images(task: Task) -> bool:
    """Whether the task's rows are images."""
    return task.metadata.get("image_shape") is not None


def _pixels(task: Task, side: str) -> np.ndarray:
    """The rows' raw pixels (``side`` is ``train`` or ``test``), standardised ones if not kept."""
    raw = task.metadata.get(f"raw_{side}")
    target = (task.metadata.get("source") or {}).get("target")
    if raw is not None and target in raw.columns:
        return raw.drop(columns=[target]).to_numpy(dtype=np.float64)
    return task.X_train if side == "train" else task.X_test


def _picture(row: np.ndarray, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
    """One flat row as an image for ``imshow``: ``(H, W)`` grey or ``(H, W, 3)`` colour."""
    channels, height, width = shape
    image = (row.reshape(channels, height, width) - low) / max(high - low, 1e-12)
    image = np.clip(image, 0.0, 1.0)
    return image[0] if channels == 1 else image.transpose(1, 2, 0)


def _short(identifier) -> str:
    text = str(identifier)
    return text if len(text) <= _ID_CHARS else "…" + text[-(_ID_CHARS - 1) :]


def _draw(ax, image: np.ndarray, title: str, colour: str = "black") -> None:
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0)
    ax.set_title(title, fontsize=7, color=colour)
    ax.set_xticks([])
    ax.set_yticks([])


def _positions(task: Task, result: ValuationResult) -> np.ndarray | None:
    """Training positions of the result's players, or None when they are not training rows."""
    index = {str(p): i for i, p in enumerate(task.train_ids)}
    found = [index.get(str(p)) for p in result.player_ids]
    return None if any(f is None for f in found) else np.asarray(found, dtype=int)


def prediction_images_figure(
    task: Task, test_row: int, result: ValuationResult, top: int = 6
) -> Figure | None:
    """The explained test image, and the training images of largest positive and negative AME.

    Parameters
    ----------
    task : Task
        With ``metadata["image_shape"]``.
    test_row : int
        Position of the explained test row.
    result : ValuationResult
        AME of that prediction (one value per training row).
    top : int
        Images per side.

    Returns
    -------
    Figure or None
        None when the task holds no images or the players are not training rows.
    """
    positions = _positions(task, result)
    if not has_images(task) or positions is None:
        return None
    shape = tuple(task.metadata["image_shape"])
    train, test = _pixels(task, "train"), _pixels(task, "test")
    order = np.argsort(-result.values, kind="stable")
    helping = [i for i in order[:top] if result.values[i] > 0]
    hurting = [i for i in order[::-1][:top] if result.values[i] < 0]
    shown = np.vstack([test[test_row][None, :], train[positions[[*helping, *hurting]]]])
    low, high = float(shown.min()), float(shown.max())
    fig, _ = new_figure(1.3 * (top + 1.4), 4.8)
    fig.clear()
    grid = fig.subplots(2, top + 1, squeeze=False)
    for ax in grid.ravel():
        ax.axis("off")
    truth = task.class_names[task.y_test[test_row]]
    # The explained image sits on the left of the top line, its helpers beside it.
    grid[0, 0].axis("on")
    test_title = f"test {_short(task.test_ids[test_row])}\ntrue {truth}"
    _draw(grid[0, 0], _picture(test[test_row], shape, low, high), test_title)
    for line, (items, name, colour) in enumerate(
        ((helping, "raise", "#2a7a2a"), (hurting, "lower", "#b22222"))
    ):
        if not items:
            grid[line, 1].text(0, 0.5, f"no training image {name}s it", fontsize=8)
        for k, i in enumerate(items, start=1):
            p = positions[i]
            ax = grid[line, k]
            ax.axis("on")
            label = task.class_names[task.y_train[p]]
            title = f"{_short(task.train_ids[p])}\n{label} {result.values[i]:+.3g}"
            _draw(ax, _picture(train[p], shape, low, high), title, colour)
    fig.suptitle(
        f"Test image {task.test_ids[test_row]}: the training images whose AME most raises (top) "
        "and lowers (bottom) the probability of its true label",
        fontsize=9,
    )
    return fig


def thumbnails_figure(
    task: Task, result: ValuationResult, title: str, count: int = THUMBNAILS
) -> Figure | None:
    """The training images a method values lowest (the rows it flags as harmful), lowest first.

    Returns None when the task holds no images or the players are not training rows.
    """
    positions = _positions(task, result)
    if not has_images(task) or positions is None or len(positions) == 0:
        return None
    shape = tuple(task.metadata["image_shape"])
    train = _pixels(task, "train")
    values = np.where(np.isnan(result.values), np.inf, result.values)
    order = np.argsort(values, kind="stable")[:count]
    shown = train[positions[order]]
    low, high = float(shown.min()), float(shown.max())
    columns = min(len(order), 5)
    rows = -(-len(order) // columns)
    fig, _ = new_figure(1.4 * columns + 0.4, 1.55 * rows + 0.6)
    fig.clear()
    grid = fig.subplots(rows, columns, squeeze=False)
    for ax in grid.ravel():
        ax.axis("off")
    for k, i in enumerate(order):
        ax = grid[k // columns, k % columns]
        ax.axis("on")
        p = positions[i]
        label = task.class_names[task.y_train[p]]
        text = f"{_short(task.train_ids[p])}\n{label} {result.values[i]:+.3g}"
        _draw(ax, _picture(train[p], shape, low, high), text)
    fig.suptitle(title, fontsize=9)
    return fig
