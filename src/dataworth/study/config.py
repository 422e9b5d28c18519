"""The configuration of a study: every option in one dataclass, saved as ``study.toml``.

A run folder holds the exact configuration it was made with, so ``dataworth study --config
runs/<name>/study.toml`` repeats the run. TOML is read with the standard library's ``tomllib``;
the standard library has no writer, so :func:`dumps_toml` writes the small subset we need
(scalars, lists of scalars and one level of tables).
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dataworth.errors import DataworthError

# Which TOML table each option lives in. The dataclass stays flat (the CLI maps options to fields
# one to one); the tables only make study.toml easier to read.
_SECTIONS: dict[str, tuple[str, ...]] = {
    "data": (
        "dataset",
        "csv",
        "parquet",
        "images",
        "image_size",
        "target",
        "rows",
        "train_size",
        "split",
        "flip",
        "drop",
        "strict",
    ),
    "model": ("model", "metric", "baselines", "device"),
    "study": ("seed", "budget_seconds"),
    "valuation": (
        "loo_points",
        "loo_ids",
        "group_by",
        "group_fractions",
        "permutations",
        "tmc_tol",
        "tmc_players",
        "stable_share",
        "stable_permutations",
        "ame_subsets",
        "ame_k",
        "ame_fdr",
        "ame_target",
        "ame_rows",
        "ame_players",
        "knn_k",
        "oob_estimators",
        "beta_alpha",
        "beta_beta",
        "influence_method",
    ),
    "engine": ("backend", "n_jobs", "scheduler"),
    "output": ("out", "overwrite"),
}
_PATH_FIELDS = ("csv", "parquet", "images", "out")


@dataclass
class StudyConfig:
    """Every option of a study: the data, the models, the metric, the seed and the output.

    Parameters
    ----------
    dataset : str
        Name of a built-in dataset (used when neither ``csv`` nor ``parquet`` is given).
    csv, parquet : str, optional
        A file with the user's own data; ``target`` names its label column.
    images : str, optional
        A folder with one subfolder of images per class (the labels are the subfolders' names).
    image_size : int
        Side of the square the images are resized to.
    target : str, optional
        The label column of a CSV/Parquet file.
    rows : int, optional
        Use a random sample of this many rows of the source (before splitting).
    train_size : int or float
        Training rows as a count (``>= 1``) or a fraction of the rows (``< 1``).
    split : str
        ``random`` (stratified), ``time:COLUMN`` or ``group:COLUMN``.
    flip : float
        Share of training labels flipped on purpose (for experiments with known bad points).
    drop : list of str, optional
        Columns removed before anything else (an identifier, a column restating the label).
    strict : bool
        Stop with an error when a data check finds a problem, instead of a warning.
    model : str
        The primary model: the one valued, whose confusion matrix and curves are reported.
    metric : str, optional
        The primary metric; ``None`` lets the baseline study choose and justify one.
    baselines : list of str, optional
        Baseline models to compare; ``None`` means every available model.
    device : str
        Where the networks (``model = "mlp"`` or ``"cnn"``) train: ``auto`` (CUDA when
        available), ``cpu`` or ``cuda``. The other models ignore it.
    seed : int
        The one seed every random choice derives from.
    budget_seconds : float
        Time the whole study may take (the plan checks each method alone against it); see
        :mod:`dataworth.study.budget` for how the study shares it.
    loo_points : int or "all"
        Training points whose exact LOO influence is computed (random, drawn with ``seed``).
    loo_ids : list of str, optional
        Explicit ids of training rows to value instead of random points.
    group_by : str
        How groups are built: ``random`` (of ``group_fractions``), ``label``,
        ``feature:NAME``, ``cluster:K`` or ``column:NAME``.
    group_fractions : list of float
        Sizes of the random groups, as shares of the training set.
    permutations : int
        TMC-Shapley permutations (the course setting is 10).
    tmc_tol : float
        TMC truncation tolerance.
    tmc_players : str
        ``points``, ``groups`` or ``both``: who receives TMC-Shapley values.
    stable_share : float
        Share of ``budget_seconds`` for a second TMC run of the points that continues the
        course's permutations until the top and bottom 10 values are stable; 0 turns it off.
    stable_permutations : int
        Most permutations of that run. The time share is a safety limit; the cap is what
        normally stops the run, so the same seed gives the same values on any machine that is
        not starved of time.
    ame_subsets : int, optional
        AME: the number of random subsets ``m`` (each one fit).
    ame_k : int, optional
        AME: instead of ``ame_subsets``, the assumed number of influential points ``k``;
        then ``m = 8 k log2(n)``.
    ame_fdr : float
        AME: the target false discovery rate ``q`` of the Knockoff selection.
    ame_target : str
        What the ``ame`` command explains: ``metric``, ``test:ID[,ID...]`` (single
        predictions, by test-row id) or ``all-test``.
    ame_rows : int
        The study also explains this many single predictions: the test rows whose true class
        the full model finds least likely.
    ame_players : str
        ``points`` or ``groups``.
    knn_k : int
        KNN-Shapley: the number of neighbours.
    oob_estimators : int
        Data-OOB: the number of bootstrap models.
    beta_alpha, beta_beta : float
        Beta Shapley's parameters (the paper's default is (4, 1)).
    influence_method : str
        ``first_order`` (Koh and Liang's formula) or ``newton`` (one Newton step per point).
    backend : str
        ``serial``, ``processes`` or ``dask``.
    n_jobs : int, optional
        Workers of the ``processes`` and ``dask`` backends.
    scheduler : str, optional
        Address of a running Dask scheduler.
    out : str, optional
        The run folder; ``None`` makes ``runs/<dataset>-<timestamp>``.
    overwrite : bool
        Replace an existing ``out`` folder instead of refusing.
    """

    dataset: str = "breast_cancer"
    csv: str | None = None
    parquet: str | None = None
    images: str | None = None
    image_size: int = 28
    target: str | None = None
    rows: int | None = None
    train_size: float | int = 0.7
    split: str = "random"
    flip: float = 0.0
    drop: list[str] | None = None
    strict: bool = False
    model: str = "logreg"
    metric: str | None = None
    baselines: list[str] | None = None
    device: str = "auto"
    seed: int = 0
    budget_seconds: float = 600.0
    loo_points: int | str = 10
    loo_ids: list[str] | None = None
    group_by: str = "random"
    group_fractions: list[float] = field(
        default_factory=lambda: [round(0.1 * k, 1) for k in range(1, 11)]
    )
    permutations: int = 10
    tmc_tol: float = 0.01
    tmc_players: str = "both"
    stable_share: float = 0.1
    stable_permutations: int = 200
    ame_subsets: int | None = 4000
    ame_k: int | None = None
    ame_fdr: float = 0.1
    ame_target: str = "metric"
    ame_rows: int = 3
    ame_players: str = "points"
    knn_k: int = 10
    oob_estimators: int = 200
    beta_alpha: float = 4.0
    beta_beta: float = 1.0
    influence_method: str = "first_order"
    backend: str = "serial"
    n_jobs: int | None = None
    scheduler: str | None = None
    out: str | None = None
    overwrite: bool = False
    # Free-form extra tables later study steps may add; kept through a save/load roundtrip.
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.train_size = parse_train_size(self.train_size)
        if self.rows is not None and (isinstance(self.rows, bool) or int(self.rows) < 1):
            raise DataworthError(
                f"rows must be a positive count, got {self.rows!r}; pass --rows N with N >= 1."
            )
        if not 0.0 <= float(self.flip) < 1.0:
            raise DataworthError(
                f"flip must be a share in [0, 1), got {self.flip!r}; e.g. --flip 0.1 flips 10%."
            )
        self.budget_seconds = parse_duration(self.budget_seconds)
        from dataworth.learners.torch.networks import check_device

        self.device = check_device(self.device)
        if self.drop is not None:
            from dataworth.data.load import parse_drop

            self.drop = parse_drop(self.drop) or None
        given = [f"--{k}" for k in ("csv", "parquet", "images") if getattr(self, k) is not None]
        if len(given) > 1:
            raise DataworthError(
                f"Give one of --csv, --parquet or --images, not {given[0]} and {given[1]}."
            )
        self.loo_points = parse_points(self.loo_points)
        if isinstance(self.group_fractions, str):
            self.group_fractions = parse_fractions(self.group_fractions)
        bad = [f for f in self.group_fractions if not 0.0 < float(f) <= 1.0]
        if bad or not self.group_fractions:
            raise DataworthError(
                f"Group fractions must lie in (0, 1], e.g. --fractions 0.1,0.5,1; got {bad}."
            )
        if int(self.permutations) < 1:
            raise DataworthError("permutations must be at least 1; e.g. --permutations 10.")
        if float(self.tmc_tol) < 0:
            raise DataworthError("The truncation tolerance must be >= 0; e.g. --tol 0.01.")
        if not 0.0 <= float(self.stable_share) <= 1.0 or int(self.stable_permutations) < 1:
            raise DataworthError(
                "stable_share must lie in [0, 1] and stable_permutations be at least 1; "
                "e.g. --stable-share 0.1 --stable-permutations 200."
            )
        if isinstance(self.loo_ids, str):
            self.loo_ids = [x.strip() for x in self.loo_ids.split(",") if x.strip()]
        if self.tmc_players not in ("points", "groups", "both"):
            raise DataworthError(
                f"Unknown players {self.tmc_players!r}; use points, groups or both."
            )
        if self.ame_k is not None:
            self.ame_subsets = None  # sizing by k replaces the fixed number of subsets
        if self.ame_subsets is not None and int(self.ame_subsets) < 2:
            raise DataworthError("AME needs at least 2 subsets; e.g. --subsets 2000.")
        if not 0.0 < float(self.ame_fdr) < 1.0:
            raise DataworthError(f"--fdr must lie in (0, 1), got {self.ame_fdr}; e.g. --fdr 0.1.")
        if self.ame_players not in ("points", "groups"):
            raise DataworthError(f"Unknown AME players {self.ame_players!r}; use points or groups.")
        if int(self.ame_rows) < 0:
            raise DataworthError("ame_rows must be zero or a positive number of test rows.")
        if int(self.knn_k) < 1 or int(self.oob_estimators) < 1:
            raise DataworthError("--k and --estimators must be positive counts.")
        if self.influence_method not in ("first_order", "newton"):
            raise DataworthError(
                f"Unknown influence method {self.influence_method!r}; use first_order or newton."
            )
        if self.backend not in ("serial", "processes", "dask"):
            raise DataworthError(
                f"Unknown backend {self.backend!r}; use serial, processes or dask."
            )

    @property
    def source_label(self) -> str:
        """A short name of the data source, used in default run-folder names."""
        path = self.csv or self.parquet
        if self.images:
            return Path(self.images).resolve().name or "images"
        return Path(path).stem if path else self.dataset

    def updated(self, **changes: Any) -> StudyConfig:
        """A copy with the given options changed; ``None`` values are ignored (not given)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested ``{table: {option: value}}``; options that are ``None`` are left out."""
        out: dict[str, dict[str, Any]] = {}
        for section, names in _SECTIONS.items():
            table = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
            out[section] = table
        for section, table in self.extra.items():
            out.setdefault(section, {}).update(table)
        return out

    def to_toml(self, path: str | Path | None = None) -> str:
        """The configuration as TOML text; written to ``path`` when given.

        Paths to data files are made absolute so the file works from any directory.
        """
        data = self.to_dict()
        for name in ("csv", "parquet"):
            if name in data["data"]:
                data["data"][name] = str(Path(data["data"][name]).expanduser().resolve())
        text = "# dataworth study configuration; rerun with: dataworth study --config <this file>\n"
        text += dumps_toml(data)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> StudyConfig:
        """Build from the nested tables of :meth:`to_dict` (unknown options are an error)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, dict[str, Any]] = {}
        for section, table in data.items():
            if not isinstance(table, dict):
                raise DataworthError(
                    f"study.toml: {section!r} must be a table such as [data]; "
                    "put options under [data], [model], [study] or [output]."
                )
            if section not in _SECTIONS:
                extra[section] = dict(table)
                continue
            for key, value in table.items():
                if key not in known or key not in _SECTIONS[section]:
                    raise DataworthError(
                        f"study.toml: unknown option {key!r} in [{section}]; "
                        f"known there: {', '.join(_SECTIONS[section])}."
                    )
                kwargs[key] = value
        # Relative paths in a hand-written study.toml mean "next to this file", like pyproject.
        if base_dir is not None:
            for name in _PATH_FIELDS:
                if kwargs.get(name) is not None and not Path(kwargs[name]).is_absolute():
                    kwargs[name] = str(base_dir / kwargs[name])
        try:
            return cls(**kwargs, extra=extra)
        except TypeError as error:  # a wrong value type that the dataclass cannot take
            raise DataworthError(f"study.toml: {error}; check the option's type.") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> StudyConfig:
        """Read a ``study.toml`` written by :meth:`to_toml` or by hand."""
        path = Path(path)
        if not path.is_file():
            raise DataworthError(f"Config file {str(path)!r} does not exist; check the path.")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise DataworthError(f"{path} is not valid TOML ({error}); fix the file.") from None
        return cls.from_dict(data, base_dir=path.resolve().parent)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``600``, ``"90s"``, ``"10m"`` or ``"1h"``."""
    text = str(value).strip().lower()
    number, unit = text, "s"
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            number, unit = text[: -len(suffix)], suffix
            break
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise DataworthError(
            f"--budget {value!r} is not a duration; write e.g. 600, 90s, 10m or 1h."
        ) from None
    if not seconds > 0:
        raise DataworthError(f"--budget must be positive, got {value!r}; e.g. --budget 10m.")
    return seconds


def parse_points(value: str | int) -> int | str:
    """A number of random points (``10``) or ``"all"``."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise DataworthError(f"--points {value!r} must be a count such as 10, or all.") from None
    if number < 1:
        raise DataworthError(f"--points must be at least 1, got {number}.")
    return number


def parse_fractions(text: str) -> list[float]:
    """Comma-separated shares such as ``0.1,0.5,1``."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DataworthError(
            f"--fractions {text!r} must be numbers separated by commas, e.g. 0.1,0.5,1."
        ) from None


def parse_train_size(value: str | float | int) -> float | int:
    """A training size given as a count (``400``) or a fraction (``0.7``).

    Text such as ``"400"`` or ``"0.7"`` (from the command line) is accepted; a whole number of
    at least 1 is a count, a number strictly between 0 and 1 a fraction.
    """
    if isinstance(value, bool):
        raise DataworthError(f"train_size must be a count or a fraction, got {value!r}.")
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise DataworthError(
                f"--train-size {value!r} is not a number; give a count (400) or a fraction (0.7)."
            ) from None
    else:
        number = float(value)
    if 0.0 < number < 1.0:
        return number
    if number >= 1.0 and number.is_integer():
        return int(number)
    raise DataworthError(
        f"train_size {value!r} must be a fraction in (0, 1) or a whole count of rows >= 1."
    )


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    escaped = []
    for ch in text:
        if ch == "\\":
            escaped.append("\\\\")
        elif ch == '"':
            escaped.append('\\"')
        elif ch == "\n":
            escaped.append("\\n")
        elif ch == "\t":
            escaped.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            escaped.append(f"\\u{ord(ch):04x}")
        else:
            escaped.append(ch)
    return '"' + "".join(escaped) + '"'


def _toml_value(value: Any) -> str:
    # bool before int: bool is a subclass of int in Python.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # repr round-trips exactly and always has a '.' or an exponent
    if isinstance(value, str | Path):
        return _toml_string(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise DataworthError(f"Cannot write a {type(value).__name__} to TOML; use text or numbers.")


def dumps_toml(data: dict[str, Any]) -> str:
    """TOML text for a dict of scalars, lists of scalars, and dicts of those (one table level).

    Parameters
    ----------
    data : dict
        Top-level scalars first, then one ``[table]`` per nested dict. ``None`` values are
        skipped, since TOML has no null.

    Returns
    -------
    str
    """
    lines: list[str] = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for key, value in data.items():
        if value is not None and not isinstance(value, dict):
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for name, table in tables.items():
        if lines:
            lines.append("")
        lines.append(f"[{_toml_key(name)}]")
        for key, value in table.items():
            if isinstance(value, dict):
                raise DataworthError("Only one level of TOML tables is supported.")
            if value is not None:
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
