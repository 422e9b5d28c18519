"""Test tables of several shapes for the benchmarks: a claim must hold on more than one of them.

Each builder returns a pandas DataFrame with a ``label`` column, as a user's CSV would hold it,
so that the study reads it through the same loader, checks and preprocessing as a user's file.
``python benchmarks/tables.py KIND ROWS OUT.csv`` writes one.

Kinds:

* ``numeric2`` / ``numeric5``: 20 numeric columns (10 informative), 2 or 5 balanced classes.
* ``mixed5``: shaped like a public gem-price table: 6 skewed, correlated numeric columns and
  3 categorical ones of 5, 7 and 8 levels, 5 unequal classes (3/9/22/26/40%) that overlap a lot
  (a logistic model gets about two thirds right), and a few rows repeated.
* ``mixed2``: 4 numeric and 5 categorical columns (3 to 12 levels, one with rare levels), two
  unequal classes (70/30), some missing values.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

KINDS = ("numeric2", "numeric5", "mixed5", "mixed2")


def _numeric(rows: int, classes: int, seed: int) -> pd.DataFrame:
    X, y = make_classification(
        n_samples=rows,
        n_features=20,
        n_informative=10,
        n_redundant=4,
        n_classes=classes,
        flip_y=0.05,
        random_state=seed,
    )
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame["label"] = np.array([f"class_{c}" for c in range(classes)])[y]
    return frame


def _categorical(rng, score: np.ndarray, levels: int, noise: float, prefix: str) -> np.ndarray:
    """Levels cut from a latent score at its quantiles, a share of them drawn at random."""
    cuts = np.quantile(score, np.linspace(0, 1, levels + 1)[1:-1])
    codes = np.digitize(score, cuts)
    swap = rng.random(len(score)) < noise
    codes[swap] = rng.integers(0, levels, swap.sum())
    return np.array([f"{prefix}{c}" for c in range(levels)])[codes]


def _mixed5(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.gamma(2.0, 0.4, rows)  # skewed, like a weight
    quality = rng.normal(size=rows)
    latent = 0.8 * quality + 0.3 * rng.normal(size=rows) - 0.2 * np.log(size)
    frame = pd.DataFrame(
        {
            "size": size.round(2),
            "depth": (61.8 + 1.2 * rng.normal(size=rows) - 0.6 * latent).round(1),
            "table": (57.0 + 2.0 * rng.normal(size=rows) - 0.9 * latent).round(0),
            "price": np.exp(7.8 + 1.1 * np.log(size) + 0.15 * quality).round(0),
            "width": (5.7 * size ** (1 / 3) + 0.05 * rng.normal(size=rows)).round(2),
            "height": (3.5 * size ** (1 / 3) - 0.02 * latent + 0.05 * rng.normal(size=rows)).round(
                2
            ),
        }
    )
    frame["colour"] = _categorical(rng, quality + rng.normal(size=rows), 7, 0.3, "c")
    frame["clarity"] = _categorical(rng, quality + rng.normal(size=rows), 8, 0.3, "k")
    frame["origin"] = _categorical(rng, latent + 2 * rng.normal(size=rows), 5, 0.5, "o")
    shares = np.cumsum([0.03, 0.09, 0.22, 0.26])
    cuts = np.quantile(latent + 0.6 * rng.normal(size=rows), shares)
    names = np.array(["fair", "good", "very good", "premium", "ideal"])
    frame["label"] = names[np.digitize(latent + 0.6 * rng.normal(size=rows), cuts)]
    repeat = rng.choice(rows, size=rows // 200, replace=False)  # a few repeated rows
    frame.iloc[repeat[1::2]] = frame.iloc[repeat[::2][: len(repeat[1::2])]].to_numpy()
    return frame


def _mixed2(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=rows)
    age = np.clip(40 + 12 * rng.normal(size=rows) + 3 * latent, 18, 90).round(0)
    income = np.exp(10.5 + 0.5 * rng.normal(size=rows) + 0.2 * latent).round(-2)
    hours = np.clip(40 + 10 * rng.normal(size=rows) + 2 * latent, 1, 99).round(0)
    balance = (rng.exponential(1000, rows) * (latent > 1.5)).round(0)
    frame = pd.DataFrame({"age": age, "income": income, "hours": hours, "balance": balance})
    frame.loc[rng.random(rows) < 0.02, "income"] = np.nan
    frame["sector"] = _categorical(rng, latent + rng.normal(size=rows), 12, 0.3, "s")
    frame["education"] = _categorical(rng, latent + 0.7 * rng.normal(size=rows), 6, 0.2, "e")
    frame["region"] = _categorical(rng, rng.normal(size=rows), 4, 0.0, "r")
    frame["status"] = _categorical(rng, latent + 2 * rng.normal(size=rows), 3, 0.1, "m")
    # rare levels: a long tail of small categories
    tail = rng.zipf(2.0, rows).clip(1, 30)
    frame["channel"] = np.array([f"ch{t}" for t in range(31)])[tail]
    score = latent + 0.8 * rng.normal(size=rows)
    frame["label"] = np.where(score > np.quantile(score, 0.7), "yes", "no")
    return frame


def make_frame(kind: str, rows: int, seed: int = 0) -> pd.DataFrame:
    """A table of ``rows`` rows of the given kind (see the module's docstring)."""
    if kind == "numeric2":
        return _numeric(rows, 2, seed)
    if kind == "numeric5":
        return _numeric(rows, 5, seed)
    if kind == "mixed5":
        return _mixed5(rows, seed)
    if kind == "mixed2":
        return _mixed2(rows, seed)
    raise ValueError(f"unknown table kind {kind!r}; choose one of {', '.join(KINDS)}")


if __name__ == "__main__":
    kind, rows, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    make_frame(kind, rows).to_csv(out, index=False)
