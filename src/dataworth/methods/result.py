"""ValuationResult: what every method returns."""

from __future__ import annotations

import functools
import json
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataworth.errors import DataworthError

# Distributions whose versions the manifest records, with the module each installs.
_VERSIONED = (
    ("dataworth", "dataworth"),
    ("numpy", "numpy"),
    ("scipy", "scipy"),
    ("scikit-learn", "sklearn"),
    ("pandas", "pandas"),
)


def package_versions() -> dict[str, str]:
    """Versions of the packages that can change a result, for the manifest."""
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> tuple[tuple[str, str], ...]:
    # Reading package metadata costs milliseconds (it parses files; 13 ms for these five, a
    # third of a small LOO); versions cannot change while the process runs, so it is done once,
    # and an imported module's own ``__version__`` (the code that runs) is taken when it has one.
    versions = {"python": platform.python_version()}
    for name, module in _VERSIONED:
        found = getattr(sys.modules.get(module), "__version__", None)
        if isinstance(found, str):
            versions[name] = found
            continue
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return tuple(versions.items())


def jsonable(value: Any) -> Any:
    """A JSON-ready copy: numpy arrays and scalars as Python values, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@dataclass
class ValuationResult:
    """Values of players (training points or groups) from one method.

    Attributes
    ----------
    method : str
        Name of the method (``"loo"``, ``"leave_group_out"``, ...).
    values : ndarray of shape (n_players,)
        One value per player, in the metric's units; positive means the player helps.
    player_ids : ndarray
        For points, their ids in the user's source; for groups, the group names.
    stderr : ndarray or None
        Standard error of each value where the method is random.
    counts : ndarray
        Number of utility evaluations behind each value.
    params : dict
        The method's parameters.
    seed : int or None
        The seed that determined every random choice.
    n_evaluations : int
        Distinct utility evaluations the method asked for.
    n_fitted : int
        Of those, the ones fitted in this call (the rest came from the store).
    n_fallback : int
        Evaluations scored by the degenerate-subset policy.
    timings : dict
        Seconds spent, by phase.
    manifest : dict
        Package versions and fingerprints of the task, learner and utility.
    extra : dict of str to ndarray
        Further per-player columns (a group's size, a point's position, ...).
    ci_low, ci_high : ndarray or None
        Bounds of a confidence interval for each value at level ``params["ci_level"]``, NaN
        where the method gives none (``ci_note`` says why). What the interval covers is the
        method's own sampling error (see :mod:`dataworth.methods.intervals`).
    exact : bool
        Whether the values are exact (no sampling): then ``ci_low == ci_high == values``.
    ci_note : str
        Why there is no interval, or what the interval is, in one line.
    samples : dict or None
        What a bootstrap of the run needs (kept in memory only, not saved): for a permutation
        method ``{"kind": "mean", "rows": (m, n) marginal contributions}``; for the MSR
        Banzhaf estimator ``{"kind": "msr", "masks": (m, n) bool, "y": (m,) scores}``.
    """

    method: str
    values: np.ndarray
    player_ids: np.ndarray
    stderr: np.ndarray | None = None
    counts: np.ndarray | None = None
    params: dict = field(default_factory=dict)
    seed: int | None = None
    n_evaluations: int = 0
    n_fitted: int = 0
    n_fallback: int = 0
    timings: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    exact: bool = False
    ci_note: str = ""
    samples: dict | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        self.player_ids = np.asarray(self.player_ids)
        n = len(self.values)
        if len(self.player_ids) != n:
            raise ValueError("player_ids and values must have the same length")
        if self.counts is None:
            self.counts = np.zeros(n, dtype=np.int64)
        for name, column in self.extra.items():
            if len(column) != n:
                raise ValueError(f"extra column {name!r} has the wrong length")
        if self.exact and self.ci_low is None:
            # An exact value has no sampling error: its interval is the value itself.
            self.ci_low, self.ci_high = self.values.copy(), self.values.copy()
            self.ci_note = self.ci_note or "exact: no sampling error"
        elif self.ci_low is None and not self.ci_note:
            self.ci_note = "this method gives no interval"

    def __len__(self) -> int:
        return len(self.values)

    def to_frame(self) -> pd.DataFrame:
        """One row per player: id, value, standard error, count, interval and the extra columns."""
        frame = pd.DataFrame({"player_id": self.player_ids, "value": self.values})
        frame["stderr"] = np.nan if self.stderr is None else self.stderr
        frame["count"] = self.counts
        frame["ci_low"] = np.nan if self.ci_low is None else self.ci_low
        frame["ci_high"] = np.nan if self.ci_high is None else self.ci_high
        for name, column in self.extra.items():
            frame[name] = column
        return frame

    def metadata(self) -> dict:
        """Everything but the per-player columns, JSON-able."""
        return jsonable(
            {
                "method": self.method,
                "params": self.params,
                "seed": self.seed,
                "n_evaluations": self.n_evaluations,
                "n_fitted": self.n_fitted,
                "n_fallback": self.n_fallback,
                "timings": self.timings,
                "manifest": self.manifest,
                "has_stderr": self.stderr is not None,
                "has_ci": self.ci_low is not None,
                "exact": self.exact,
                "ci_note": self.ci_note,
                "extra_columns": list(self.extra),
            }
        )

    def save(self, path: str | Path) -> Path:
        """Write ``PATH.parquet`` (values), ``PATH.csv`` (the same table) and ``PATH.json``.

        Returns the stem path.
        """
        stem = Path(path)
        stem = stem.with_suffix("") if stem.suffix in (".parquet", ".csv", ".json") else stem
        stem.parent.mkdir(parents=True, exist_ok=True)
        frame = self.to_frame()
        frame.assign(player_id=frame["player_id"].astype(str)).to_parquet(
            stem.with_suffix(".parquet"), index=False
        )
        frame.to_csv(stem.with_suffix(".csv"), index=False)
        meta = self.metadata() | {"player_id_dtype": str(self.player_ids.dtype)}
        stem.with_suffix(".json").write_text(json.dumps(meta, indent=2))
        return stem

    @classmethod
    def load(cls, path: str | Path) -> ValuationResult:
        """Read a result written by :meth:`save`."""
        stem = Path(path)
        stem = stem.with_suffix("") if stem.suffix in (".parquet", ".csv", ".json") else stem
        meta_path, table_path = stem.with_suffix(".json"), stem.with_suffix(".parquet")
        if not meta_path.exists() or not table_path.exists():
            raise DataworthError(
                f"No saved result at {stem} (expected {meta_path.name} and {table_path.name})."
            )
        meta = json.loads(meta_path.read_text())
        frame = pd.read_parquet(table_path)
        ids = frame["player_id"].to_numpy()
        # Files written before intervals existed have no ci columns: the result has none.
        has_ci = meta.get("has_ci", False) and "ci_low" in frame
        dtype = meta.get("player_id_dtype", "object")
        if dtype.startswith(("int", "uint")):
            ids = ids.astype(dtype)
        return cls(
            method=meta["method"],
            values=frame["value"].to_numpy(),
            player_ids=ids,
            stderr=frame["stderr"].to_numpy() if meta.get("has_stderr") else None,
            counts=frame["count"].to_numpy(),
            params=meta["params"],
            seed=meta["seed"],
            n_evaluations=meta["n_evaluations"],
            n_fitted=meta.get("n_fitted", 0),
            n_fallback=meta["n_fallback"],
            timings=meta["timings"],
            manifest=meta["manifest"],
            extra={c: frame[c].to_numpy() for c in meta.get("extra_columns", [])},
            ci_low=frame["ci_low"].to_numpy() if has_ci else None,
            ci_high=frame["ci_high"].to_numpy() if has_ci else None,
            exact=bool(meta.get("exact", False)),
            ci_note=meta.get("ci_note", ""),
        )
