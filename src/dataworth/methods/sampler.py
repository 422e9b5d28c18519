"""The randomized subset design shared by AME, AME-based Shapley and Banzhaf.

See docs/design.md, section 5.

Every design has two stages: an inclusion probability ``p_j`` drawn from a law ``P`` on (0, 1),
then a subset ``S_j`` that holds each player independently with probability ``p_j``. The
average marginal effect ``AME_P(i) = E[U(S + i) - U(S)]`` under this law is the Shapley value
for ``P = Uniform(0, 1)``, a Beta-Shapley value for a Beta law and the Banzhaf value for
``p = 1/2`` (Lin et al., ICML 2022; Wang and Jia, AISTATS 2023).

Sample ``j`` is drawn from its own stream ``SeedSequence(seed, spawn_key=(stream, j))``. The
design is therefore a pure function of ``(seed, j)``: extending a run to a larger ``m`` keeps
the same prefix, a resumed run redraws exactly the subsets it had, and the batching of the draws
changes nothing. Knockoff masks (a second ``Bernoulli(p_j)`` draw per sample, never evaluated)
come from another stream, so asking for them does not change the design.

References
----------
Lin, Zhang, Lécuyer, Li, Panda and Sen, "Measuring the Effect of Training Data on Deep Learning
Predictions via Randomized Experiments", ICML 2022.
Wang and Jia, "Data Banzhaf: A Robust Data Valuation Framework for Machine Learning",
AISTATS 2023.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy import integrate, special, stats

from dataworth.errors import DataworthError

# Stream labels in the spawn key: the subsets, their knockoffs, the CV folds of the regression
# the seed of a hierarchical second level and its random groups never share random numbers.
STREAM_DESIGN = 1
STREAM_KNOCKOFF = 2
STREAM_FOLDS = 3
STREAM_LEVEL2 = 4
STREAM_PARTITION = 5
STREAM_BOOTSTRAP = 6

DEFAULT_GRID: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)


class PLaw(ABC):
    """A law ``P`` of inclusion probabilities.

    Subclasses define :meth:`ppf` (the inverse CDF, so one uniform number gives one ``p``),
    ``ipw_variance`` (``E_P[1/(p(1-p))]``, the constant ``c`` of AME = c * beta under the
    ``1/p`` encoding) and ``discrete`` (whether ``p`` takes a few values, so centring can be
    exact per value).
    """

    name = "law"
    discrete = False

    @abstractmethod
    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF: one uniform number in [0, 1) gives one ``p``."""

    @property
    @abstractmethod
    def ipw_variance(self) -> float:
        """``E_P[1/(p(1-p))]``."""

    def describe(self) -> dict:
        return {"law": self.name}


@dataclass(frozen=True)
class Grid(PLaw):
    """``p`` uniform over a finite set of values (the authors' default is {0.2, 0.4, 0.6, 0.8})."""

    values: tuple[float, ...] = DEFAULT_GRID
    name = "grid"
    discrete = True

    def __post_init__(self) -> None:
        values = tuple(float(v) for v in self.values)
        if not values or any(not 0.0 < v < 1.0 for v in values):
            raise DataworthError(f"Grid probabilities must lie strictly in (0, 1); got {values}.")
        object.__setattr__(self, "values", values)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        index = np.minimum(
            (np.asarray(u) * len(self.values)).astype(np.int64), len(self.values) - 1
        )
        return np.asarray(self.values)[index]

    @property
    def ipw_variance(self) -> float:
        v = np.asarray(self.values)
        return float(np.mean(1.0 / (v * (1.0 - v))))

    def describe(self) -> dict:
        return {"law": self.name, "values": list(self.values)}


@dataclass(frozen=True)
class Fixed(Grid):
    """A single ``p``; ``p = 1/2`` gives the Banzhaf value (Wang and Jia, AISTATS 2023)."""

    values: tuple[float, ...] = (0.5,)
    name = "fixed"


@dataclass(frozen=True)
class Uniform(PLaw):
    """``p`` uniform on ``[eps, 1 - eps]``: the eps-truncated Shapley value.

    ``E[1/(p(1-p))] = 2 ln((1 - eps)/eps) / (1 - 2 eps)``, finite only for ``eps > 0``; this is
    why the untruncated Shapley law cannot be sampled with the ``1/p`` encoding.
    """

    eps: float = 0.01
    name = "uniform"

    def __post_init__(self) -> None:
        if not 0.0 < self.eps < 0.5:
            raise DataworthError(f"eps must lie in (0, 0.5); got {self.eps}.")

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return self.eps + (1.0 - 2.0 * self.eps) * np.asarray(u)

    @property
    def ipw_variance(self) -> float:
        return 2.0 * math.log((1.0 - self.eps) / self.eps) / (1.0 - 2.0 * self.eps)

    def describe(self) -> dict:
        return {"law": self.name, "eps": self.eps}


@dataclass(frozen=True)
class Beta(PLaw):
    """``p ~ Beta(a, b)``, truncated to ``[eps, 1 - eps]`` when ``eps > 0``.

    ``E[1/(p(1-p))]`` is finite without truncation only when ``a > 1`` and ``b > 1`` (it is then
    ``B(a-1, b-1)/B(a, b)``); Beta-Shapley's usual ``Beta(4, 1)`` needs ``eps > 0``.
    """

    a: float = 2.0
    b: float = 2.0
    eps: float = 0.0
    name = "beta"

    def __post_init__(self) -> None:
        if self.a <= 0 or self.b <= 0:
            raise DataworthError(f"Beta parameters must be positive; got a={self.a}, b={self.b}.")
        if not 0.0 <= self.eps < 0.5:
            raise DataworthError(f"eps must lie in [0, 0.5); got {self.eps}.")
        if self.eps == 0.0 and (self.a <= 1 or self.b <= 1):
            raise DataworthError(
                f"Beta({self.a}, {self.b}) puts too much mass near 0 or 1 for the 1/p encoding "
                "(E[1/(p(1-p))] is infinite); truncate it with eps > 0, e.g. eps=0.01."
            )

    def _cdf_bounds(self) -> tuple[float, float]:
        law = stats.beta(self.a, self.b)
        return float(law.cdf(self.eps)), float(law.cdf(1.0 - self.eps))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        lo, hi = self._cdf_bounds()
        return stats.beta(self.a, self.b).ppf(lo + (hi - lo) * np.asarray(u))

    @property
    def ipw_variance(self) -> float:
        if self.eps == 0.0:
            return float(
                np.exp(special.betaln(self.a - 1, self.b - 1) - special.betaln(self.a, self.b))
            )
        lo, hi = self._cdf_bounds()
        pdf = stats.beta(self.a, self.b).pdf
        value, _ = integrate.quad(
            lambda p: pdf(p) / (p * (1.0 - p)), self.eps, 1.0 - self.eps, limit=200
        )
        return float(value / (hi - lo))

    def describe(self) -> dict:
        return {"law": self.name, "a": self.a, "b": self.b, "eps": self.eps}


@dataclass(frozen=True)
class LogitUniform(PLaw):
    """``logit(p)`` uniform on ``[logit(eps), logit(1 - eps)]``: the AMESV design.

    Its density is proportional to ``1/(p(1-p))`` on ``[eps, 1 - eps]``. With the ``x - p``
    encoding this importance weight cancels the conditional variance ``p(1-p)`` of the
    encoding, so the regression coefficient is the AME for ``Uniform(eps, 1 - eps)`` directly
    (Lin et al., ICML 2022, the SV estimator).
    """

    eps: float = 0.01
    name = "logit_uniform"

    def __post_init__(self) -> None:
        if not 0.0 < self.eps < 0.5:
            raise DataworthError(f"eps must lie in (0, 0.5); got {self.eps}.")

    @property
    def width(self) -> float:
        """``logit(1 - eps) - logit(eps)``, the normaliser of the density."""
        return 2.0 * math.log((1.0 - self.eps) / self.eps)

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return special.expit(-self.width / 2.0 + self.width * np.asarray(u))

    @property
    def centred_variance(self) -> float:
        """``E[p(1-p)]``, the variance of an ``x - p`` column: ``(1 - 2 eps) / width``."""
        return (1.0 - 2.0 * self.eps) / self.width

    @property
    def ipw_variance(self) -> float:
        # E[1/(p(1-p))] = (1/width) * integral of 1/(p(1-p))^2 over [eps, 1-eps]; in closed form
        # via the antiderivative of 1/(p^2 (1-p)^2) = 1/p^2 + 1/(1-p)^2 + 2/p + 2/(1-p).
        def anti(p: float) -> float:
            return -1.0 / p + 1.0 / (1.0 - p) + 2.0 * math.log(p / (1.0 - p))

        return (anti(1.0 - self.eps) - anti(self.eps)) / self.width

    def describe(self) -> dict:
        return {"law": self.name, "eps": self.eps}


def make_law(law: str | PLaw | None = "grid", *, eps: float = 0.01) -> PLaw:
    """A law of ``p`` from its name: ``grid``, ``uniform``, ``banzhaf``, ``logit_uniform``.

    ``beta:A,B`` gives a Beta law (truncated at ``eps`` when ``A <= 1`` or ``B <= 1``); a
    :class:`PLaw` instance is returned as it is.
    """
    if isinstance(law, PLaw):
        return law
    if law is None or law == "grid":
        return Grid()
    if law == "uniform":
        return Uniform(eps)
    if law in ("banzhaf", "fixed"):
        return Fixed()
    if law == "logit_uniform":
        return LogitUniform(eps)
    if isinstance(law, str) and law.startswith("beta:"):
        try:
            a, b = (float(v) for v in law[5:].split(","))
        except ValueError:
            raise DataworthError(
                f"Write a Beta law as beta:A,B (e.g. beta:4,1); got {law!r}."
            ) from None
        return Beta(a, b, eps if (a <= 1 or b <= 1) else 0.0)
    raise DataworthError(
        f"Unknown law of p {law!r}; use grid, uniform, banzhaf, logit_uniform or beta:A,B."
    )


def _stream(seed: int, stream: int, j: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, j)))


@dataclass(frozen=True)
class SubsetSampler:
    """Draws the subsets ``(p_j, S_j)`` of a randomized design over ``n_players``.

    Parameters
    ----------
    n_players : int
        Number of players (columns of the masks).
    law : PLaw
        The law of the inclusion probability ``p``.

    Examples
    --------
    >>> sampler = SubsetSampler(10, Grid())
    >>> p, masks = sampler.draw(seed=0, start=0, stop=4)
    >>> p2, masks2 = sampler.draw(seed=0, start=2, stop=4)
    >>> bool((masks[2:] == masks2).all() and (p[2:] == p2).all())
    True
    """

    n_players: int
    law: PLaw

    def draw(self, seed: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``start .. stop - 1`` of the design.

        Returns
        -------
        p : ndarray of shape (stop - start,)
            The inclusion probability of each sample.
        masks : ndarray of bool, shape (stop - start, n_players)
            ``masks[j, i]`` says whether player ``i`` is in subset ``start + j``.
        """
        _check_range(start, stop)
        # One generator per sample: its first number picks p_j, the next n_players the mask.
        rngs = [_stream(seed, STREAM_DESIGN, j) for j in range(start, stop)]
        u = np.array([rng.random() for rng in rngs], dtype=np.float64)
        p = np.asarray(self.law.ppf(u), dtype=np.float64).reshape(-1)
        masks = np.empty((len(rngs), self.n_players), dtype=bool)
        for row, rng in enumerate(rngs):
            masks[row] = rng.random(self.n_players) < p[row]
        return p, masks

    def knockoffs(self, seed: int, p: np.ndarray, start: int) -> np.ndarray:
        """Knockoff masks for samples ``start .. start + len(p) - 1``: ``Bernoulli(p_j)`` again.

        Drawn from a stream independent of the design, with each sample's own ``p_j``, so a
        knockoff column is exchangeable with its player's column given ``p`` (model-X
        knockoffs, Candès et al. 2018, as used by Lin et al., ICML 2022).
        """
        p = np.asarray(p, dtype=np.float64)
        _check_range(start, start + len(p))
        masks = np.empty((len(p), self.n_players), dtype=bool)
        for row, j in enumerate(range(start, start + len(p))):
            masks[row] = _stream(seed, STREAM_KNOCKOFF, j).random(self.n_players) < p[row]
        return masks


def _check_range(start: int, stop: int) -> None:
    if start < 0 or stop < start:
        raise DataworthError(
            f"Sample indices must satisfy 0 <= start <= stop; got {start}, {stop}."
        )


def draw(
    seed: int, start: int, stop: int, *, n_players: int, law: str | PLaw = "grid"
) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``start .. stop - 1`` of a design: a pure function of ``seed`` and the index.

    A shortcut for ``SubsetSampler(n_players, make_law(law)).draw(seed, start, stop)``.
    """
    return SubsetSampler(n_players, make_law(law)).draw(seed, start, stop)


def subsets_for(k: int, n_players: int, factor: float = 8.0) -> int:
    """The number of subsets ``ceil(factor * k * log2(n))`` for ``k`` influential points.

    Lin et al. (ICML 2022) size their experiments this way with ``factor`` from 1 to 8.
    """
    if k < 1:
        raise DataworthError(f"The assumed number of influential points k must be >= 1; got {k}.")
    if factor <= 0:
        raise DataworthError(f"The sizing factor must be positive; got {factor}.")
    return max(2, math.ceil(factor * k * math.log2(max(n_players, 2))))
