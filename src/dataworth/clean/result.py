"""What :func:`dataworth.clean` returns: the flags, the verified gain and the curves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dataworth.clean.crossfit import RepeatOutcome
from dataworth.clean.intervals import Interval, corrected_interval


@dataclass
class CleanResult:
    """Every row's suspicion and flag, and the held-out evidence behind the decision.

    Attributes
    ----------
    ids : ndarray
        Each row's id (the task's training ids, or ``0..n-1`` for arrays).
    labels, suggested : ndarray
        The given labels and the out-of-fold predicted class, as class names.
    score : ndarray of float
        The suspicion, higher is more suspect (``dataworth.clean.signals``).
    flagged : ndarray of bool
        The rows acted on (none when no action is recommended).
    reasons : list of str
        The signals that speak against each row.
    action : {"remove", "relabel"}
    recommended : bool
        Whether the held-out gain is verified (see :attr:`decision`).
    decision : str
        The verdict in one sentence.
    metric : str
        The metric of every score.
    repeats : list of RepeatOutcome
        Each cross-fitted repeat's held-out scores.
    curve_fractions : tuple of float
        The shares of the held-out removal curves.
    fraction : float
        The share chosen on all the rows (what is acted on when recommended).
    signals : pandas.DataFrame
        Each signal per row.
    params, timings, seeds : dict
        The settings, the seconds of each phase and the seeds used.
    class_names : tuple of str
        The classes, in the order of :attr:`noise_matrix`'s rows and columns.
    """

    ids: np.ndarray
    labels: np.ndarray
    suggested: np.ndarray
    score: np.ndarray
    flagged: np.ndarray
    reasons: list[str]
    action: str
    recommended: bool
    decision: str
    metric: str
    repeats: list[RepeatOutcome]
    curve_fractions: tuple[float, ...]
    fraction: float
    signals: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    seeds: dict[str, Any] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()

    # -- the held-out evidence ---------------------------------------------------------------
    def _interval(self, values, one_sided: bool = False) -> Interval:
        n_train = int(np.mean([r.n_train for r in self.repeats]))
        n_test = int(np.mean([r.n_test for r in self.repeats]))
        return corrected_interval(values, n_train, n_test, one_sided=one_sided)

    @property
    def before(self) -> Interval:
        """The held-out metric of the model refitted on the rows as given."""
        return self._interval([r.before for r in self.repeats])

    @property
    def after(self) -> Interval:
        """The held-out metric after acting on the rows chosen on the cleaned part."""
        return self._interval([r.after for r in self.repeats])

    @property
    def gain(self) -> Interval:
        """After minus before, paired per repeat (Nadeau-Bengio interval)."""
        return self._interval([r.after - r.before for r in self.repeats])

    @property
    def random_gain(self) -> Interval:
        """Acting on as many random rows, minus before."""
        return self._interval([r.random - r.before for r in self.repeats])

    @property
    def gain_over_random(self) -> Interval:
        """The gain minus the random rows' gain, paired per repeat."""
        return self._interval([r.after - r.random for r in self.repeats])

    # -- what decides (docs/design.md, section 9) ----------------------------------------------
    @property
    def check_metric(self) -> str:
        """The metric that decides: accuracy on the noise-corrected labels, or the metric."""
        if self.metric == "accuracy":
            return "accuracy on the true labels (corrected for the estimated label noise)"
        return self.metric

    @property
    def check_gain(self) -> Interval:
        """The deciding gain, paired per repeat, with its one-sided 95% interval."""
        return self._interval([r.check_after - r.check_before for r in self.repeats], True)

    @property
    def check_over_random(self) -> Interval:
        """The deciding gain over as many random rows, with its one-sided 95% interval."""
        return self._interval([r.check_after - r.check_random for r in self.repeats], True)

    @property
    def noise_matrix(self) -> np.ndarray:
        """The mean over repeats of the estimated ``P(given label | true class)``."""
        return np.mean([r.transition for r in self.repeats], axis=0)

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    def curves_frame(self) -> pd.DataFrame:
        """The held-out removal curves: one row per order and share, with the metric's mean and
        the interval of its paired difference from acting on no row, added to the mean before."""
        rows = []
        before = np.array([r.before for r in self.repeats])
        for order in ("lowest_first", "random", "highest_first"):
            values = np.array([r.curves[order] for r in self.repeats])
            for j, share in enumerate(self.curve_fractions):
                diff = self._interval(values[:, j] - before)
                rows.append(
                    {
                        "order": order,
                        "fraction": share,
                        "metric": float(values[:, j].mean()),
                        "low": float(before.mean() + diff.low),
                        "high": float(before.mean() + diff.high),
                    }
                )
        return pd.DataFrame(rows)

    def to_frame(self) -> pd.DataFrame:
        """One row per input row: id, label, suggested label, score, flagged, reasons."""
        return pd.DataFrame(
            {
                "id": self.ids,
                "label": self.labels,
                "suggested_label": self.suggested,
                "score": self.score,
                "flagged": self.flagged,
                "reasons": self.reasons,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything ``clean.json`` holds (plain types once passed through ``to_jsonable``)."""
        return {
            "decision": self.decision,
            "recommended": self.recommended,
            "action": self.action,
            "metric": self.metric,
            "n_rows": len(self.score),
            "n_flagged": self.n_flagged,
            "fraction_chosen": self.fraction,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "gain": self.gain.to_dict(),
            "random_gain": self.random_gain.to_dict(),
            "gain_over_random": self.gain_over_random.to_dict(),
            "decided_by": {
                "metric": self.check_metric,
                "rule": (
                    "act only when the one-sided 95% intervals of the deciding gain and of its "
                    "gain over as many random rows both lie above zero, and the mean gain in "
                    f"held-out {self.metric} on the given labels is not negative"
                ),
                "gain": self.check_gain.to_dict(),
                "gain_over_random": self.check_over_random.to_dict(),
                "noise_matrix": self.noise_matrix.tolist(),
                "classes": list(self.class_names),
            },
            "repeats": [
                {
                    "seed": r.seed,
                    "n_train": r.n_train,
                    "n_test": r.n_test,
                    "fraction": r.fraction,
                    "n_acted": r.n_acted,
                    "before": r.before,
                    "after": r.after,
                    "random": r.random,
                    "check_before": r.check_before,
                    "check_after": r.check_after,
                    "check_random": r.check_random,
                    "seconds": r.seconds,
                }
                for r in self.repeats
            ],
            "curves": self.curves_frame().to_dict(orient="records"),
            "methods": self.params.get("methods", []),
            "params": self.params,
            "seeds": self.seeds,
            "timings": self.timings,
        }

    def summary(self) -> str:
        """Three lines: the verdict, the held-out figures and the deciding figures."""
        g, rg, c, cr = self.gain, self.random_gain, self.check_gain, self.check_over_random
        return (
            f"{self.decision}\n"
            f"held-out {self.metric}: {self.before.mean:.4f} -> {self.after.mean:.4f}, gain "
            f"{g.mean:+.4f} (95% {g.low:+.4f} to {g.high:+.4f}); as many random rows "
            f"{rg.mean:+.4f}; {len(self.repeats)} repeats\n"
            f"decided by {self.check_metric}: gain {c.mean:+.4f} (one-sided 95% lower bound "
            f"{c.low:+.4f}), over random rows {cr.mean:+.4f} (lower bound {cr.low:+.4f})"
        )
