"""Read what a study stored in its run folder, and nothing else.

The report is rebuilt from these files alone (``dataworth report RUN_FOLDER``): no data is
loaded, no model is fitted, and ``manifest.json`` is not read, because the study writes it after
the report step; a report built during the study and one rebuilt later must say the same.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dataworth.errors import DataworthError
from dataworth.methods.result import ValuationResult

# JSON files of a run folder that are not ValuationResult metadata.
_NOT_RESULTS = {
    "data",
    "baseline",
    "cost",
    "manifest",
    "shapley_vs_loo",
    "subsample",
    "budget",
    "budget_plan",
}


@dataclass
class RunData:
    """The stored results of one run folder.

    Attributes
    ----------
    folder : Path
        Where the files are read from (during a study: its temporary twin).
    path : Path
        The folder's final, absolute path, named in the report's commands.
    data, baseline, cost : dict or None
        ``data.json``, ``baseline.json`` and ``cost.json``.
    config : dict
        ``study.toml`` parsed (empty when absent), and ``config_text`` its text.
    results : dict of str to ValuationResult
        Every saved result, by file stem (``loo``, ``shapley_points``, ``ame``...).
    comparison : dict or None
        ``shapley_vs_loo.json``.
    subsample : dict or None
        ``subsample.json``: whether the valuation used a subsample of the training rows
        (run folders of earlier versions).
    budget : dict or None
        ``budget.json``: each valuation method's estimated, allotted and actual seconds, and
        what it valued.
    """

    folder: Path
    path: Path
    data: dict | None = None
    baseline: dict | None = None
    cost: dict | None = None
    config: dict = field(default_factory=dict)
    config_text: str | None = None
    results: dict[str, ValuationResult] = field(default_factory=dict)
    comparison: dict | None = None
    subsample: dict | None = None
    budget: dict | None = None

    def csv(self, name: str) -> pd.DataFrame | None:
        """A stored CSV table, or None when the study did not write it.

        Empty text cells stay empty strings (a point with no diagnostic flag has
        ``flags == ""``).
        """
        path = self.folder / name
        if not path.exists():
            return None
        frame = pd.read_csv(path, keep_default_na=False)
        # keep_default_na leaves empty numeric cells as "", turning the column into text:
        # convert those columns back to numbers (an empty cell becomes NaN).
        for column in frame.columns:
            if frame[column].dtype == object:
                as_number = pd.to_numeric(frame[column].replace("", None), errors="coerce")
                if as_number.notna().sum() == (frame[column] != "").sum():
                    frame[column] = as_number
        return frame

    def figure(self, stem: str) -> Path | None:
        """The saved figure ``figures/<stem>``: its PNG, else its SVG, else None."""
        for suffix in (".png", ".svg"):
            path = self.folder / "figures" / f"{stem}{suffix}"
            if path.exists():
                return path
        return None

    def figure_stems(self, prefix: str) -> list[str]:
        """Stems of the saved figures whose names start with ``prefix``, sorted."""
        folder = self.folder / "figures"
        if not folder.is_dir():
            return []
        return sorted({p.stem for p in folder.glob(f"{prefix}*") if p.suffix in (".png", ".svg")})

    def setting(self, table: str, key: str, default: Any = None) -> Any:
        """One value of ``study.toml`` (``table`` is its TOML table, e.g. ``valuation``)."""
        return self.config.get(table, {}).get(key, default)


def _json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataworthError(f"{path} is not valid JSON ({error.msg}); rerun the study.") from None


def load_run(folder: str | Path, *, path: str | Path | None = None) -> RunData:
    """Read the stored results of a run folder.

    Parameters
    ----------
    folder : str or Path
        The run folder written by ``dataworth study``.
    path : str or Path, optional
        The path to name in the report (default: ``folder``); a study building its report in
        its temporary twin passes the final path here.

    Returns
    -------
    RunData

    Raises
    ------
    DataworthError
        When ``folder`` is not a folder, or holds no ``data.json`` (not a run folder).
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DataworthError(
            f"No run folder at {folder}; pass a folder written by dataworth study."
        )
    if not folder.is_dir():
        raise DataworthError(f"{folder} is not a folder; pass a folder written by dataworth study.")
    if not (folder / "data.json").exists():
        raise DataworthError(
            f"{folder} is not a dataworth run folder (no data.json); "
            "pass a folder written by dataworth study."
        )
    run = RunData(folder=folder, path=Path(path or folder).expanduser().resolve())
    run.data = _json(folder / "data.json")
    run.baseline = _json(folder / "baseline.json")
    run.cost = _json(folder / "cost.json")
    run.comparison = _json(folder / "shapley_vs_loo.json")
    run.subsample = _json(folder / "subsample.json")
    run.budget = _json(folder / "budget.json")
    toml_path = folder / "study.toml"
    if toml_path.exists():
        run.config_text = toml_path.read_text(encoding="utf-8")
        try:
            run.config = tomllib.loads(run.config_text)
        except tomllib.TOMLDecodeError:
            run.config = {}  # still shown verbatim in the appendix
    for meta in sorted(folder.glob("*.json")):
        if meta.stem in _NOT_RESULTS or not meta.with_suffix(".parquet").exists():
            continue
        if "method" not in (_json(meta) or {}):
            continue
        run.results[meta.stem] = ValuationResult.load(meta.with_suffix(""))
    return run
