"""Figures of the valuation results: LOO, leave-group-out, Shapley and their comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dataworth.methods.result import ValuationResult
from dataworth.report.figures import new_figure

_PLAIN, _FLAGGED = "#4C72B0", "#C44E52"


def loo_figure(result: ValuationResult, diagnostics: pd.DataFrame | None = None) -> Figure:
    """LOO influence per point, bars of flagged points in red with their flags below."""
    fig, ax = new_figure(7.5, 4.5)
    order = np.argsort(-result.values, kind="stable")
    labels = [str(result.player_ids[i]) for i in order]
    flags = (
        diagnostics["flags"].to_numpy()[order]
        if diagnostics is not None
        else np.full(len(order), "")
    )
    colours = [_FLAGGED if f else _PLAIN for f in flags]
    ax.bar(range(len(order)), result.values[order], color=colours)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(order)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_xlabel("training point id (sorted by influence)")
    ax.set_ylabel(f"LOO influence on {result.manifest.get('metric', 'the metric')}")
    ax.set_title("Exact leave-one-out influence")
    if any(flags):
        from matplotlib.patches import Patch

        ax.legend(
            [Patch(color=_PLAIN), Patch(color=_FLAGGED)],
            ["nothing unusual", "flagged by a diagnostic"],
            fontsize=8,
        )
    return fig


def group_size_figure(result: ValuationResult) -> Figure:
    """Group size against leave-group-out influence (the plot the course asks for)."""
    fig, ax = new_figure()
    sizes = np.asarray(result.extra["size"])
    order = np.argsort(sizes, kind="stable")
    ax.plot(sizes[order], result.values[order], marker="o", color=_PLAIN)
    for i in order:
        ax.annotate(
            str(result.player_ids[i]),
            (sizes[i], result.values[i]),
            fontsize=7,
            textcoords="offset points",
            xytext=(4, 4),
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("group size (training points removed)")
    ax.set_ylabel(f"influence on {result.manifest.get('metric', 'the metric')}")
    ax.set_title("Leave-group-out influence against group size")
    return fig


def shapley_distribution_figure(result: ValuationResult) -> Figure:
    """Histogram with a rug of all Shapley values, the efficiency sum printed on it."""
    fig, ax = new_figure()
    values = result.values
    ax.hist(values, bins=min(40, max(10, len(values) // 10)), color=_PLAIN, alpha=0.85)
    bottom = ax.get_ylim()[0]
    ax.plot(values, np.full(len(values), bottom), "|", color="black", markersize=10, alpha=0.5)
    full, empty = result.manifest.get("full_value"), result.manifest.get("empty_value")
    text = f"sum(phi) = {values.sum():.4g}"
    if full is not None and empty is not None:
        text += f"\nU(D) - U(empty) = {full:.4g} - ({empty:.4g}) = {full - empty:.4g}"
    ax.text(
        0.02,
        0.97,
        text,
        transform=ax.transAxes,
        va="top",
        fontsize=8,
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
    )
    ax.set_xlabel("Shapley value")
    ax.set_ylabel("number of players")
    ax.set_title(
        f"Distribution of {len(values)} TMC-Shapley values "
        f"({result.params.get('permutations')} permutations)"
    )
    return fig


def shapley_errorbar_figure(result: ValuationResult, player_ids) -> Figure:
    """Shapley values with one standard error for the chosen players (e.g. the LOO points)."""
    fig, ax = new_figure()
    index = {str(p): i for i, p in enumerate(result.player_ids)}
    rows = [index[str(p)] for p in player_ids if str(p) in index]
    stderr = result.stderr[rows] if result.stderr is not None else None
    ax.errorbar(
        range(len(rows)), result.values[rows], yerr=stderr, fmt="o", color=_PLAIN, capsize=3
    )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(
        range(len(rows)),
        [str(result.player_ids[r]) for r in rows],
        rotation=60,
        ha="right",
        fontsize=8,
    )
    ax.set_xlabel("training point id")
    ax.set_ylabel("Shapley value ± 1 standard error")
    ax.set_title("Shapley values of the LOO points")
    return fig


def shapley_vs_loo_figure(shapley: ValuationResult, loo: ValuationResult, flagged_ids=()) -> Figure:
    """Scatter of LOO against Shapley for the shared points, flagged points highlighted."""
    fig, ax = new_figure()
    index = {str(p): i for i, p in enumerate(shapley.player_ids)}
    pairs = [(index[str(p)], j) for j, p in enumerate(loo.player_ids) if str(p) in index]
    s = np.array([shapley.values[i] for i, _ in pairs])
    v = np.array([loo.values[j] for _, j in pairs])
    flagged = np.array([str(loo.player_ids[j]) in {str(f) for f in flagged_ids} for _, j in pairs])
    ax.scatter(v[~flagged], s[~flagged], color=_PLAIN, s=18, label="point")
    if flagged.any():
        ax.scatter(v[flagged], s[flagged], color=_FLAGGED, s=30, label="flagged by a diagnostic")
        ax.legend(fontsize=8)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.axvline(0, color="grey", linewidth=0.6)
    ax.set_xlabel("exact LOO influence")
    ax.set_ylabel("TMC-Shapley value")
    ax.set_title("Shapley against leave-one-out")
    return fig


def group_shapley_figure(result: ValuationResult, point_sums=None) -> Figure:
    """Group Shapley values against group size, with the sums of member point values."""
    fig, ax = new_figure()
    sizes = np.asarray(result.extra["size"])
    ax.errorbar(
        sizes,
        result.values,
        yerr=result.stderr,
        fmt="o",
        color=_PLAIN,
        capsize=3,
        label="group Shapley value",
    )
    if point_sums is not None:
        ax.scatter(
            sizes, point_sums, marker="x", color=_FLAGGED, label="sum of member point values"
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("group size")
    ax.set_ylabel("value")
    ax.set_title("Group Shapley values against group size")
    ax.legend(fontsize=8)
    return fig


def ame_rank_figure(result: ValuationResult, title: str) -> Figure:
    """AME values against their rank, the Knockoff selection marked."""
    fig, ax = new_figure()
    order = np.argsort(-result.values, kind="stable")
    values = result.values[order]
    ranks = np.arange(1, len(values) + 1)
    selected = np.asarray(result.extra.get("selected", np.zeros(len(values), bool)), bool)[order]
    ax.plot(ranks, values, color=_PLAIN, linewidth=1, label="AME")
    if selected.any():
        ax.scatter(
            ranks[selected],
            values[selected],
            color=_FLAGGED,
            s=14,
            zorder=3,
            label=f"selected by Knockoffs ({int(selected.sum())})",
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("rank")
    ax.set_ylabel("AME (metric units)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def value_distribution_figure(result: ValuationResult) -> Figure:
    """Histogram with a rug of the values of any method."""
    fig, ax = new_figure()
    values = result.values[np.isfinite(result.values)]
    ax.hist(values, bins=min(40, max(10, len(values) // 10)), color=_PLAIN, alpha=0.85)
    bottom = ax.get_ylim()[0]
    ax.plot(values, np.full(len(values), bottom), "|", color="black", markersize=10, alpha=0.5)
    ax.set_xlabel(f"{result.method} value")
    ax.set_ylabel("number of points")
    ax.set_title(f"Distribution of {len(values)} {result.method} values")
    return fig


def ame_target_rows_figure(task, test_row: int, result: ValuationResult, top: int = 10) -> Figure:
    """The explained test row next to the training rows with the largest AME for it.

    Each row of the heat map is one point's (standardised) features, so a reader can see whether
    the training rows that drive the prediction resemble the row being predicted.
    """
    selected = np.asarray(result.extra.get("selected", np.zeros(len(result), bool)), bool)
    order = [i for i in np.argsort(-result.values, kind="stable") if selected[i]][:top]
    if not order:
        order = list(np.argsort(-result.values, kind="stable")[:top])
    index = {str(p): i for i, p in enumerate(task.train_ids)}
    positions = [index[str(result.player_ids[i])] for i in order]
    rows = np.vstack([task.X_test[test_row][None, :], task.X_train[positions]])
    labels = [f"test {task.test_ids[test_row]} ({task.class_names[task.y_test[test_row]]})"] + [
        f"train {task.train_ids[p]} ({task.class_names[task.y_train[p]]}) {result.values[i]:+.3g}"
        for p, i in zip(positions, order, strict=True)
    ]
    fig, ax = new_figure(max(6.0, 0.22 * task.n_features + 3), 0.35 * len(rows) + 2)
    limit = float(np.nanmax(np.abs(rows))) or 1.0
    image = ax.imshow(rows, aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit)
    ax.axhline(0.5, color="black", linewidth=1.5)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_xticks(range(task.n_features), task.feature_names, rotation=90, fontsize=6)
    ax.set_title(f"Test row {task.test_ids[test_row]} and the training rows that drive it (AME)")
    fig.colorbar(image, ax=ax, label="feature value (standardised)", shrink=0.8)
    return fig
