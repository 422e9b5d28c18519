"""What the cost study measured (:class:`CostResult`): fit times, and the seconds per refit they
imply at any training size.

Kept apart from the timing (:mod:`dataworth.study.cost.timing`) and the plan
(:mod:`dataworth.study.cost.plan`), which both read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dataworth.errors import DataworthError

MIN_ROWS_PER_CLASS = 3
"""A subsample needs a few rows of every class for a fit (and its timing) to mean anything."""


@dataclass
class CostResult:
    """Measured fit times and what they imply for each valuation method.

    Attributes
    ----------
    fit_times : DataFrame
        One row per model and training size: ``model, fraction, rows, seconds, n_timed, note``
        (``seconds`` is NaN and ``note`` says why when a size was skipped).
    n_train : int
        Training rows of the task.
    valuation_model : str
        The learner valuation methods will refit.
    utility : dict or None
        Timing of subset evaluations through the engine (``seconds_per_subset`` and more), or
        ``None`` when the engine is not available (``utility_note`` says why).
    utility_note : str
    notes : list of str
        Sizes skipped and other remarks, as sentences.
    """

    fit_times: pd.DataFrame
    n_train: int
    n_classes: int
    valuation_model: str
    utility: dict[str, Any] | None = None
    utility_note: str = ""
    notes: list[str] = field(default_factory=list)
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Seconds of each method's own path (see :func:`dataworth.study.cost.paths.time_paths`)."""

    def seconds_per_fit(self, rows: int | None = None) -> float:
        """Estimated seconds per valuation refit on ``rows`` training rows (default: all).

        Uses the engine's measured time per subset when there is one (that is what methods pay),
        otherwise the median scikit-learn fit time; other sizes follow a power law through the
        measured sizes (a straight line in log-log).
        """
        rows = self.n_train if rows is None else rows
        own = self.fit_times[
            (self.fit_times["model"] == self.valuation_model) & self.fit_times["seconds"].notna()
        ]
        if own.empty and self.utility is None:
            raise DataworthError(
                f"No fit time was measured for {self.valuation_model!r}; rerun the cost study."
            )
        scale = _power_law(own["rows"].to_numpy(float), own["seconds"].to_numpy(float))
        if self.utility is not None:
            measured_rows = self.utility["rows"]
            return self.utility["seconds_per_subset"] * scale(rows) / scale(measured_rows)
        return float(scale(rows))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "n_train": self.n_train,
            "valuation_model": self.valuation_model,
            "fit_times": self.fit_times.to_dict(orient="records"),
            "utility": self.utility,
            "utility_note": self.utility_note,
            "notes": list(self.notes),
            "paths": self.paths,
        }

    def scale(self, rows: int | None) -> float:
        """How much longer a fit on ``rows`` rows takes than one on all training rows."""
        if rows is None or rows == self.n_train:
            return 1.0
        return self.seconds_per_fit(rows) / self.seconds_per_fit(self.n_train)


def _power_law(rows: np.ndarray, seconds: np.ndarray) -> Callable[[float], float]:
    """``seconds(rows)`` through the measured points; flat when only one size was measured."""
    if len(rows) == 0:
        return lambda r: 1.0
    if len(np.unique(rows)) < 2:
        value = float(np.median(seconds))
        return lambda r: value
    slope, intercept = np.polyfit(np.log(rows), np.log(np.maximum(seconds, 1e-9)), 1)
    # Fit times never shrink as data grows; a negative slope is timing noise on tiny sizes.
    slope = max(slope, 0.0)
    return lambda r: float(np.exp(intercept + slope * np.log(max(r, 1.0))))
