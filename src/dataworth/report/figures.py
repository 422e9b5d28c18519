"""Figures of the baseline and cost studies, saved as PNG and SVG.

Figures are built as :class:`matplotlib.figure.Figure` objects on the Agg canvas, never through
``pyplot``: no display is needed, no global figure registry fills up in long runs, and the
library never changes the user's matplotlib backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

if TYPE_CHECKING:  # only for type hints; report sits above the studies
    from dataworth.study.baseline import BaselineResult
    from dataworth.study.cost.timing import CostResult

FORMATS = ("png", "svg")


def new_figure(width: float = 6.0, height: float = 4.5) -> tuple[Figure, object]:
    """A figure with one axes on the Agg canvas (no pyplot, no display)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def save_figure(
    fig: Figure, folder: str | Path, stem: str, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Save ``fig`` as ``folder/stem.png`` and ``folder/stem.svg``.

    Parameters
    ----------
    fig : matplotlib Figure
    folder : str or Path
        Created when missing.
    stem : str
        File name without extension.
    formats : sequence of str, default=("png", "svg")

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = folder / f"{stem}.{fmt}"
        # 150 dpi keeps labels sharp in reports without making PNGs large.
        fig.savefig(path, dpi=150, format=fmt)
        paths.append(path)
    return paths


def confusion_matrix_figure(confusion: pd.DataFrame, title: str = "Confusion matrix") -> Figure:
    """Heatmap of counts, each cell annotated with its count and its share of the true class."""
    counts = confusion.to_numpy()
    row_share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 2.5 + 0.8 * len(confusion)
    fig, ax = new_figure(size + 1.2, size)
    image = ax.imshow(row_share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the true class")
    ax.set_xticks(
        range(counts.shape[1]), [str(c) for c in confusion.columns], rotation=30, ha="right"
    )
    ax.set_yticks(range(counts.shape[0]), [str(c) for c in confusion.index])
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            # Dark cells get white text so the numbers stay legible.
            color = "white" if row_share[i, j] > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{counts[i, j]}\n{row_share[i, j]:.0%}",
                ha="center",
                va="center",
                color=color,
                fontsize=10,
            )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return fig


def roc_figure(curves: list[dict], title: str = "ROC curve") -> Figure:
    """ROC curve(s) with the chance diagonal; the legend gives each curve's AUC."""
    fig, ax = new_figure(5.5, 5.0)
    for entry in curves:
        ax.plot(entry["fpr"], entry["tpr"], lw=2, label=f"{entry['label']}: AUC {entry['auc']:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def pr_figure(curves: list[dict], title: str = "Precision-recall curve") -> Figure:
    """Precision-recall curve(s); a dotted line marks each class's prevalence (chance level)."""
    fig, ax = new_figure(5.5, 5.0)
    for entry in curves:
        (line,) = ax.step(
            entry["recall"],
            entry["precision"],
            where="post",
            lw=2,
            label=f"{entry['label']}: AP {entry['average_precision']:.3f}",
        )
        ax.axhline(entry["prevalence"], ls=":", lw=1, color=line.get_color())
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title + " (dotted: prevalence)")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def cost_figure(fit_times: pd.DataFrame, title: str = "Fit time vs training size") -> Figure:
    """Median fit time against training rows, one line per model, log-log."""
    fig, ax = new_figure(6.0, 4.5)
    timed = fit_times[fit_times["seconds"].notna()]
    for model, rows in timed.groupby("model", sort=False):
        rows = rows.sort_values("rows")
        ax.plot(rows["rows"], rows["seconds"], marker="o", lw=2, label=str(model))
    ax.set_xscale("log")
    ax.set_yscale("log")
    # Label the measured sizes themselves: "40" reads better than "4 x 10^1".
    sizes = sorted({int(r) for r in timed["rows"]})
    if sizes:
        ax.set_xticks(sizes, [str(r) for r in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training rows")
    ax.set_ylabel("median fit time (seconds)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def baseline_figures(result: BaselineResult, folder: str | Path) -> dict[str, list[Path]]:
    """Confusion matrix, ROC and precision-recall figures of the primary model."""
    model = result.primary_model
    figures = {
        "confusion_matrix": confusion_matrix_figure(
            result.confusion, f"Confusion matrix: {model}, test set"
        ),
        "roc_curve": roc_figure(result.curves["roc"], f"ROC: {model}, test set"),
        "pr_curve": pr_figure(result.curves["pr"], f"Precision-recall: {model}, test set"),
    }
    return {stem: save_figure(fig, folder, stem) for stem, fig in figures.items()}


def cost_figures(result: CostResult, folder: str | Path) -> dict[str, list[Path]]:
    """The fit-time figure of a cost study."""
    return {"fit_time": save_figure(cost_figure(result.fit_times), folder, "fit_time")}
