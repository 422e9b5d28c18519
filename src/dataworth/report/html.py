"""Render a :class:`~dataworth.report.model.Report` as one self-contained HTML file.

Self-contained means readable offline and printable: the CSS is inline, every figure is inlined
as a base64 ``data:`` URI (the PNG, else the SVG as an image, which keeps the SVGs' internal ids
from clashing with each other), and nothing refers to the network. The page layout lives in the
Jinja2 template ``templates/report.html.j2``; this module only prepares plain values for it.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from dataworth.report.model import (
    Block,
    Bullets,
    Code,
    Figure,
    FigureRow,
    Heading,
    Paragraph,
    Report,
    Table,
    fmt,
)

_CODE_SPAN = re.compile(r"`([^`]+)`")
_MIME = {".png": "image/png", ".svg": "image/svg+xml"}


def inline(text: str) -> Markup:
    """Escape ``text`` for HTML and turn its ``code`` spans into ``<code>`` elements."""
    escaped = str(escape(text))
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", escaped))


def data_uri(path: Path) -> str:
    """The file as a base64 ``data:`` URI."""
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{_MIME[path.suffix]};base64,{encoded}"


def _raw(value: Any) -> str:
    """The stored value in full precision, for the cell's ``data-value`` attribute.

    Readers (and the tests) can check every number shown against the stored results.
    """
    if hasattr(value, "item"):
        value = value.item()
    return repr(value) if isinstance(value, float) else str(value)


def _table(table: Table) -> dict[str, Any]:
    frame = table.frame
    numeric = [
        frame[c].dtype.kind in "iuf" for c in frame.columns
    ]  # right-align numbers so digits line up
    return {
        "kind": "table",
        "id": f"table-{table.key}",
        "caption": inline(table.caption),
        "source": table.source,
        "headers": [
            {"text": table.header(c), "name": str(c), "numeric": num}
            for c, num in zip(frame.columns, numeric, strict=True)
        ],
        "rows": [
            [
                {"text": fmt(v), "raw": _raw(v), "numeric": num}
                for v, num in zip(row, numeric, strict=True)
            ]
            for row in frame.itertuples(index=False)
        ],
    }


def _figure(figure: Figure, figures: dict[str, Path]) -> dict[str, Any]:
    path = figures.get(figure.stem)
    return {
        "stem": figure.stem,
        "caption": inline(figure.caption),
        "src": data_uri(path) if path is not None else None,
    }


def _block(block: Block, figures: dict[str, Path]) -> dict[str, Any]:
    if isinstance(block, Paragraph):
        return {"kind": "paragraph", "html": inline(block.text)}
    if isinstance(block, Bullets):
        return {"kind": "bullets", "items": [inline(i) for i in block.items]}
    if isinstance(block, Heading):
        return {"kind": "heading", "html": inline(block.text)}
    if isinstance(block, Code):
        return {"kind": "code", "text": block.text, "language": block.language}
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return {"kind": "figures", "figures": [_figure(block, figures)], "row": False}
    if isinstance(block, FigureRow):
        return {
            "kind": "figures",
            "figures": [_figure(f, figures) for f in block.figures],
            "row": True,
        }
    raise TypeError(f"Unknown report block {type(block).__name__}")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("dataworth.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name in the template fails loudly
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(report: Report, figures: dict[str, Path]) -> str:
    """The whole report as one HTML document.

    Parameters
    ----------
    report : Report
    figures : dict of str to Path
        Figure stem -> the image file to inline; a stem missing here is shown as a note.

    Returns
    -------
    str
    """
    sections = []
    previous_part = None
    for n, s in enumerate(report.sections, start=1):
        sections.append(
            {
                "key": s.key,
                "number": n,
                "title": s.title,
                "part": s.part,
                # Printed, each part of the assignment (and each section outside them) starts
                # a page; the short sections of part 1 run on together.
                "new_page": not s.part or s.part != previous_part,
                "blocks": [_block(b, figures) for b in s.blocks],
            }
        )
        previous_part = s.part
    template = _environment().get_template("report.html.j2")
    return template.render(title=report.title, subtitle=inline(report.subtitle), sections=sections)
