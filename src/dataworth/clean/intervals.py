"""The interval of a mean paired difference over repeated, overlapping random splits.

Each repeat ``j`` of ``J`` draws a new split of the rows into ``n_train`` rows that are valued,
cleaned and refitted and ``n_test`` rows that measure the metric, and gives one paired difference
``d_j`` (after minus before, on the same held-out rows). The training sets of different repeats
share most of their rows, so the ``d_j`` are positively correlated and the naive variance of their
mean, ``s^2 / J``, is too small. Nadeau and Bengio's corrected resampled t-test (Machine Learning
52, 2003) uses instead::

    var(mean d) = s^2 * (1/J + n_test/n_train)

with ``s^2`` the sample variance of the ``d_j`` and Student's t with ``J - 1`` degrees of freedom.
A one-sided interval ``[low, +inf)`` answers a one-sided question ("does acting help?"): at the
same 95% coverage its lower end is the two-sided 90% interval's, ``t(0.95)`` in place of
``t(0.975)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from dataworth.errors import DataworthError


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided interval.

    Attributes
    ----------
    mean, low, high : float
        The mean over repeats and the interval's ends (NaN with fewer than two repeats;
        ``high`` is ``+inf`` for a one-sided interval).
    level : float
        The interval's coverage, e.g. 0.95.
    n_repeats : int
        How many repeats it averages.
    one_sided : bool
        Whether the interval is ``[low, +inf)``.
    """

    mean: float
    low: float
    high: float
    level: float
    n_repeats: int
    one_sided: bool = False

    @property
    def above_zero(self) -> bool:
        """Whether the whole interval lies above zero (a gain that is not noise)."""
        return bool(np.isfinite(self.low) and self.low > 0)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "n_repeats": self.n_repeats,
            "one_sided": self.one_sided,
        }


def corrected_interval(
    differences, n_train: int, n_test: int, level: float = 0.95, one_sided: bool = False
) -> Interval:
    """The mean of per-repeat values with the Nadeau-Bengio corrected t interval.

    Parameters
    ----------
    differences : array-like of shape (J,)
        One value per repeat (a paired difference, or a metric itself).
    n_train, n_test : int
        Rows each repeat trained on and measured on.
    level : float, default=0.95
        Coverage of the interval.
    one_sided : bool, default=False
        Give ``[low, +inf)`` (Student's ``t(level)``) instead of the two-sided interval.

    Returns
    -------
    Interval
        With NaN ends when ``J < 2`` (no variance can be estimated).

    Examples
    --------
    >>> corrected_interval([1.0, 2.0, 3.0], n_train=80, n_test=20).mean
    2.0
    """
    d = np.asarray(differences, dtype=float)
    if n_train < 1 or n_test < 1:
        raise DataworthError("The corrected interval needs positive n_train and n_test.")
    if not 0 < level < 1:
        raise DataworthError(f"level must lie in (0, 1); got {level}.")
    J = len(d)
    mean = float(d.mean()) if J else float("nan")
    if J < 2:
        return Interval(mean, float("nan"), float("nan"), level, J, one_sided)
    variance = d.var(ddof=1) * (1.0 / J + n_test / n_train)
    quantile = level if one_sided else 0.5 + level / 2
    half = float(stats.t.ppf(quantile, df=J - 1) * np.sqrt(variance))
    high = float("inf") if one_sided else mean + half
    return Interval(mean, mean - half, high, level, J, one_sided)
