"""What a data check reports: :class:`Finding` records, and :func:`emit` to warn (or raise).

The checks themselves are in :mod:`dataworth.data.checks` and the modules it gathers.
"""

from __future__ import annotations

import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dataworth.errors import DataworthError


class DataCheckWarning(UserWarning):
    """A data check found a problem that may make the values wrong (see :class:`Finding`)."""


@dataclass(frozen=True)
class Finding:
    """One problem found by a data check.

    Attributes
    ----------
    check : str
        Which check fired (``label_leakage``, ``identifier``...).
    severity : {"warning", "info"}
        A warning may make the values wrong; a note only helps reading them.
    columns : tuple of str
        The columns concerned (empty for row checks).
    message : str
        One line naming the column(s) and the fix.
    meaning : str
        What the problem means for the values.
    rows : tuple
        Ids of the rows concerned (duplicate groups), when the check is about rows.
    """

    check: str
    severity: str
    columns: tuple[str, ...]
    message: str
    meaning: str
    rows: tuple = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict."""
        return {
            "check": self.check,
            "severity": self.severity,
            "columns": list(self.columns),
            "message": self.message,
            "meaning": self.meaning,
            "rows": [_plain(r) for r in self.rows],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        """The inverse of :meth:`to_dict`."""
        return cls(
            check=data["check"],
            severity=data["severity"],
            columns=tuple(data.get("columns", ())),
            message=data["message"],
            meaning=data.get("meaning", ""),
            rows=tuple(data.get("rows", ())),
        )


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _arg(text: str) -> str:
    """``text`` as one shell word, quoted only when it needs it (``'Unnamed: 0'``)."""
    return shlex.quote(str(text))


def _names(columns: Sequence[str]) -> str:
    return ", ".join(repr(str(c)) for c in columns)


def emit(findings: Sequence[Finding], *, strict: bool = False) -> None:
    """Warn once per warning finding; with ``strict``, raise instead.

    Parameters
    ----------
    findings : sequence of Finding
    strict : bool
        Turn the warnings into one :class:`~dataworth.errors.DataworthError`.

    Raises
    ------
    DataworthError
        With ``strict`` and at least one warning; the message gives the first and counts the
        rest.
    """
    alarms = [f for f in findings if f.severity == "warning"]
    if strict and alarms:
        first = "the first: " if len(alarms) > 1 else ""
        raise DataworthError(
            f"Strict mode: the data checks found {len(alarms)} problem(s); {first}"
            f"{alarms[0].message}"
        )
    for finding in alarms:
        warnings.warn(finding.message, DataCheckWarning, stacklevel=3)
