"""The figure of a sampled ranking's ends: the top and bottom values with their intervals."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from dataworth.methods.result import ValuationResult
from dataworth.report.figures import new_figure

_PLAIN, _SHORT = "#4C72B0", "#C44E52"


def interval_figure(
    result: ValuationResult, short: ValuationResult | None = None, *, rows: int = 20
) -> Figure:
    """The ``rows`` highest and lowest values with their confidence intervals.

    Parameters
    ----------
    result : ValuationResult
        The run whose ranking is drawn (its intervals as bars; a value without an interval is
        drawn as a point alone).
    short : ValuationResult, optional
        A shorter run of the same players, drawn as crosses at the same rows (for example the
        course's 10 permutations beside the run continued until stable).
    rows : int
        How many rows at each end.
    """
    v = result.values
    order = np.argsort(-v, kind="stable")
    shown = order if len(v) <= 2 * rows else np.concatenate([order[:rows], order[-rows:]])
    y = np.arange(len(shown))[::-1].astype(float)
    if len(shown) < len(v):
        y[rows:] -= 1.0  # a gap between the two ends
    fig, ax = new_figure(7.0, max(4.0, 0.17 * len(shown) + 1.5))
    low = result.ci_low[shown] if result.ci_low is not None else np.full(len(shown), np.nan)
    high = result.ci_high[shown] if result.ci_high is not None else np.full(len(shown), np.nan)
    has = np.isfinite(low) & np.isfinite(high)
    ax.hlines(y[has], low[has], high[has], color=_PLAIN, linewidth=1.5, label="95% interval")
    ax.plot(v[shown], y, "o", color=_PLAIN, markersize=3.5, label=_label(result))
    if short is not None:
        index = {str(p): i for i, p in enumerate(short.player_ids)}
        at = [index.get(str(result.player_ids[i])) for i in shown]
        ok = np.array([a is not None for a in at])
        ax.plot(
            short.values[[a for a in at if a is not None]],
            y[ok],
            "x",
            color=_SHORT,
            markersize=4,
            label=_label(short),
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [str(result.player_ids[i]) for i in shown], fontsize=6)
    ax.set_ylabel("training point id (highest value at the top)")
    ax.set_xlabel(f"Shapley value ({result.manifest.get('metric', 'metric')})")
    ax.set_title(f"The {min(rows, len(v))} highest and lowest values with their intervals")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def _label(result: ValuationResult) -> str:
    count = result.params.get("permutations")
    return f"{count} permutations" if count is not None else result.method
