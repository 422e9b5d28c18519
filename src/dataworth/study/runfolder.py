"""Run folders: where a study writes its results, all or nothing.

A run lives in ``runs/<name>/`` (``<name>`` = data source and a timestamp) or in the folder the
user names with ``--out``. Files are written into a hidden temporary sibling
(``.<name>.partial-<random>``) that is renamed to the final name only when every step has
finished; on any error it is deleted. A rename within one directory is atomic, so a reader never
sees a half-written run folder.

A run stopped by the user (Ctrl-C) or by a time limit (SIGTERM) is the exception: its temporary
folder is kept as ``<name>.partial/`` (see :meth:`RunFolder.keep_partial`), with ``study.log``
and the files of the steps that finished. It is never mistaken for a finished run (no
``manifest.json``, and the name says so); a later stop of the same target replaces it, and the
finished run removes it.

Policy for an existing target: a folder named with ``--out`` that already exists is refused
(before any work is done) unless ``overwrite=True``, which replaces it as a whole at the end.
A default, timestamped name that already exists (two runs in the same second) gets a ``-2``,
``-3``... suffix instead, since the user did not choose that name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataworth.errors import DataworthError

DEFAULT_ROOT = Path("runs")


def default_run_path(
    label: str, root: str | Path = DEFAULT_ROOT, now: datetime | None = None
) -> Path:
    """A new, unused ``root/<label>-<YYYYmmdd-HHMMSS>`` path (a suffix is added on collision)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label) or "run"
    base = Path(root) / f"{safe}-{stamp}"
    candidate, k = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}-{k}")
        k += 1
    return candidate


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types for numpy values, paths, data frames and dataclasses.

    NaN and infinities become ``null``: JSON has no such numbers and many readers reject them.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.reset_index().to_dict(orient="records"))
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    return obj


class RunFolder:
    """A run folder being written; it appears under its final name only on :meth:`commit`.

    Use it as a context manager: leaving the block normally commits, an exception discards.

    Parameters
    ----------
    target : str or Path
        The final folder.
    overwrite : bool, default=False
        Replace an existing ``target`` at commit instead of refusing up front.

    Examples
    --------
    >>> with RunFolder("runs/demo", overwrite=True) as run:  # doctest: +SKIP
    ...     run.write_json("results.json", {"accuracy": 0.95})
    """

    def __init__(self, target: str | Path, *, overwrite: bool = False) -> None:
        self.target = Path(target)
        self.overwrite = overwrite
        if self.target.exists() and not self.target.is_dir():
            raise DataworthError(f"{self.target} exists and is not a folder; choose another --out.")
        if self.target.exists() and not overwrite:
            raise DataworthError(
                f"Run folder {self.target} already exists; "
                "choose another --out or pass --overwrite."
            )
        # Parents made here (e.g. runs/) are removed again on discard if still empty.
        self._made_parents = [p for p in reversed(self.target.parents) if not p.exists()]
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.path = self.target.parent / f".{self.target.name}.partial-{uuid.uuid4().hex[:8]}"
            self.path.mkdir()
        except OSError as error:
            raise DataworthError(
                f"Cannot create a run folder next to {self.target} ({error.strerror}); "
                "choose a writable --out."
            ) from None
        self.files: list[Path] = []
        self._done = False

    def file(self, relative: str | Path) -> Path:
        """Where to write ``relative`` now (inside the temporary folder); parents are created."""
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(Path(relative))
        return path

    def folder(self, relative: str | Path) -> Path:
        """A sub-folder (created) inside the temporary folder, e.g. ``figures``."""
        path = self.path / relative
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_json(self, relative: str | Path, obj: Any) -> Path:
        """Write ``obj`` as indented JSON (see :func:`to_jsonable` for what it accepts)."""
        path = self.file(relative)
        path.write_text(json.dumps(to_jsonable(obj), indent=2) + "\n", encoding="utf-8")
        return path

    def write_csv(self, relative: str | Path, frame: pd.DataFrame, index: bool = True) -> Path:
        """Write a data frame as CSV."""
        path = self.file(relative)
        frame.to_csv(path, index=index)
        return path

    def write_text(self, relative: str | Path, text: str) -> Path:
        """Write a text file (Markdown, TOML...)."""
        path = self.file(relative)
        path.write_text(text, encoding="utf-8")
        return path

    def final_path(self, written: Path) -> Path:
        """Where a file written now will be once the folder is committed."""
        return self.target / Path(written).relative_to(self.path)

    def commit(self) -> Path:
        """Rename the temporary folder to the target; returns the target."""
        if self._done:
            return self.target
        old: Path | None = None
        if self.target.exists():
            if not self.overwrite:
                self.discard()
                raise DataworthError(
                    f"Run folder {self.target} appeared while this run was writing; "
                    "rerun with another --out or --overwrite."
                )
            # Move the old folder aside first so the target name is never half old, half new.
            old = self.target.parent / f".{self.target.name}.old-{uuid.uuid4().hex[:8]}"
            self.target.rename(old)
        self.path.rename(self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.partial_path, ignore_errors=True)  # a stopped attempt, now superseded
        self._done = True
        return self.target

    @property
    def partial_path(self) -> Path:
        """Where :meth:`keep_partial` puts a stopped run: ``<target>.partial``."""
        return self.target.with_name(self.target.name + ".partial")

    def keep_partial(self) -> Path:
        """Keep what a stopped run wrote as ``<target>.partial`` (replacing an older one)."""
        if self._done:
            return self.partial_path
        shutil.rmtree(self.partial_path, ignore_errors=True)
        self.path.rename(self.partial_path)
        self._done = True
        return self.partial_path

    def discard(self) -> None:
        """Delete the temporary folder and everything written into it."""
        if not self._done:
            shutil.rmtree(self.path, ignore_errors=True)
            for parent in reversed(self._made_parents):
                try:
                    parent.rmdir()
                except OSError:  # not empty: another run lives there now
                    break
            self._done = True

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
