"""Figures of a quality evaluation: removal curves per method and a bar chart of detection AUC."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from dataworth.evaluate.curves import RemovalCurves
from dataworth.report.figures import new_figure, save_figure

__all__ = [
    "detection_bar_figure",
    "draw_removal",
    "removal_figure",
    "removal_grid_figure",
    "save_evaluation_figures",
]


def draw_removal(ax, curves: RemovalCurves, *, legend: bool = True) -> None:
    """Draw the three removal curves of one method on ``ax``."""
    x = 100 * curves.fractions
    ax.fill_between(
        x,
        curves.random_mean - curves.random_std,
        curves.random_mean + curves.random_std,
        color="grey",
        alpha=0.25,
        lw=0,
    )
    n_random = curves.params.get("n_random", "")
    ax.plot(
        x, curves.random_mean, color="grey", ls="--", lw=1.5, label=f"random ({n_random} orders)"
    )
    ax.plot(x, curves.high_first, color="tab:red", marker="o", ms=3, lw=2, label="highest first")
    ax.plot(x, curves.low_first, color="tab:blue", marker="o", ms=3, lw=2, label="lowest first")
    ax.set_title(
        f"{curves.method}: area high {curves.area_high:+.3g}, low {curves.area_low:+.3g}",
        fontsize=9,
    )
    ax.set_xlabel("training rows removed (%)", fontsize=8)
    ax.set_ylabel(f"test {curves.metric}", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=7)


def removal_figure(curves: RemovalCurves) -> Figure:
    """The removal curves of one method (highest first, lowest first, random with +-1 sd)."""
    fig, ax = new_figure(6.0, 4.5)
    draw_removal(ax, curves)
    return fig


def removal_grid_figure(curves: Sequence[RemovalCurves], columns: int = 3) -> Figure:
    """Every method's removal curves side by side, one panel each, on shared y limits."""
    rows = max(1, math.ceil(len(curves) / columns))
    fig, first = new_figure(3.6 * columns, 3.0 * rows)
    fig.delaxes(first)
    axes = fig.subplots(rows, columns, squeeze=False, sharey=True)
    for i, ax in enumerate(axes.flat):
        if i < len(curves):
            draw_removal(ax, curves[i], legend=i == 0)
        else:
            ax.set_visible(False)
    fig.suptitle("Point removal: test metric after removing rows in value order", fontsize=10)
    return fig


def detection_bar_figure(
    table: pd.DataFrame, column: str = "roc_auc", chance: float = 0.5, title: str | None = None
) -> Figure:
    """Horizontal bars of one detection measure per method, best on top, with the chance line."""
    shown = table[column].dropna().sort_values()
    fig, ax = new_figure(6.0, 0.9 + 0.35 * max(1, len(shown)))
    bars = ax.barh([str(i) for i in shown.index], shown.to_numpy(), color="tab:blue")
    ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    ax.axvline(chance, color="grey", ls="--", lw=1, label=f"chance ({chance:g})")
    ax.set_xlim(0, 1.08)
    ax.set_xlabel(column.replace("_", " "))
    ax.set_title(title or f"Flipped-label detection: {column.replace('_', ' ')}")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def save_evaluation_figures(
    curves: Sequence[RemovalCurves], table: pd.DataFrame, folder: str | Path, flip_rate: float
) -> dict[str, list[Path]]:
    """Write the grid, one removal figure per method, and the AUC and AP bar charts."""
    saved: dict[str, list[Path]] = {}
    if curves:
        saved["removal_curves"] = save_figure(removal_grid_figure(curves), folder, "removal_curves")
        for c in curves:
            stem = f"removal_{c.method}"
            saved[stem] = save_figure(removal_figure(c), folder, stem)
    if "roc_auc" in table and table["roc_auc"].notna().any():
        saved["detection_auc"] = save_figure(detection_bar_figure(table), folder, "detection_auc")
    if "average_precision" in table and table["average_precision"].notna().any():
        fig = detection_bar_figure(table, "average_precision", chance=flip_rate)
        saved["detection_ap"] = save_figure(fig, folder, "detection_ap")
    return saved
