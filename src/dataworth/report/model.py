"""The content of a report, independent of its format.

Section builders (:mod:`dataworth.report.sections.outline`) produce :class:`Section` objects made of
a few block types; the HTML and Markdown renderers turn the same blocks into their format. Text may
hold ``code`` spans in backticks and nothing else, so both renderers agree on what it says.

Numbers are formatted in one place, :func:`fmt`, so a value reads the same in a table, in a
sentence and in both formats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


def fmt(value: Any, digits: int = 4) -> str:
    """A value as report text: ``digits`` significant digits, integers whole, NaN as a dash.

    Parameters
    ----------
    value : object
        A number, a boolean, a string or a missing value.
    digits : int, default=4
        Significant digits of a float; four keep tables narrow and still show the differences
        between LOO values that matter.

    Returns
    -------
    str
    """
    if value is None:
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return "–"
        if value == 0:
            return "0"  # "-0" would suggest a sign the value does not have
        return f"{float(value):.{digits}g}"
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "–"
    return str(value)


def pct(share: float, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage with ``digits`` decimals."""
    return f"{100 * float(share):.{digits}f}%"


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of text (``code`` spans allowed)."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """An unordered list of short sentences."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    text: str


@dataclass(frozen=True)
class Code:
    """A block of literal text: a command, a configuration file."""

    text: str
    language: str = ""


@dataclass(frozen=True, eq=False)
class Table:
    """A table of stored values.

    Attributes
    ----------
    key : str
        A short name, unique in the report (the HTML table's id is ``table-<key>``).
    frame : DataFrame
        The values as stored; the renderers format them with :func:`fmt`.
    caption : str
        What the table shows.
    source : str or None
        The run-folder file the values come from, so a reader can load them into pandas.
    headers : dict
        Column name -> header text, for columns whose stored name reads poorly.
    """

    key: str
    frame: pd.DataFrame
    caption: str
    source: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, column: Any) -> str:
        """The header text of ``column``."""
        return self.headers.get(str(column), str(column).replace("_", " "))


@dataclass(frozen=True)
class Figure:
    """A figure saved by the study (``figures/<stem>.png`` and ``.svg``)."""

    stem: str
    caption: str


@dataclass(frozen=True)
class FigureRow:
    """Figures shown side by side where the page is wide enough."""

    figures: tuple[Figure, ...]


Block = Paragraph | Bullets | Heading | Code | Table | Figure | FigureRow


@dataclass
class Section:
    """One numbered section of the report.

    Attributes
    ----------
    key : str
        Anchor and HTML id (``dataset``, ``loo``...).
    title : str
        The heading, without its number.
    part : str
        Which part of the course assignment it answers ("" when none).
    blocks : list of Block
    """

    key: str
    title: str
    part: str = ""
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Section:
        """Append blocks; returns the section so builders can chain."""
        self.blocks.extend(blocks)
        return self


@dataclass
class Report:
    """A whole report: its title, a one-line subtitle and the sections in order."""

    title: str
    subtitle: str
    sections: list[Section]

    def figure_stems(self) -> list[str]:
        """Every figure the report shows, in order."""
        stems = []
        for section in self.sections:
            for block in section.blocks:
                if isinstance(block, Figure):
                    stems.append(block.stem)
                elif isinstance(block, FigureRow):
                    stems.extend(f.stem for f in block.figures)
        return stems
