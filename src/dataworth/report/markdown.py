"""Render a :class:`~dataworth.report.model.Report` as Markdown (GitHub-flavoured tables).

Figures are linked, not embedded: ``report.md`` sits in the run folder beside ``figures/``, so
the relative links work wherever the folder is copied.
"""

from __future__ import annotations

import re

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


def _cell(value: object) -> str:
    # A pipe would end the cell and a newline the row.
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table) -> str:
    """A pipe table with its caption above and its source file below."""
    frame = table.frame
    header = "| " + " | ".join(_cell(table.header(c)) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    lines = [f"*{table.caption}*", "", header, rule, *rows]
    if table.source:
        lines += ["", f"Source: `{table.source}`"]
    return "\n".join(lines)


def _figure(figure: Figure) -> str:
    return f"![{figure.caption}](figures/{figure.stem}.png)\n\n*{figure.caption}*"


def block_markdown(block: Block) -> str:
    """One block as Markdown."""
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Heading):
        return f"### {block.text}"
    if isinstance(block, Code):
        return f"```{block.language}\n{block.text}\n```"
    if isinstance(block, Table):
        return table_markdown(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, FigureRow):
        return "\n\n".join(_figure(f) for f in block.figures)
    raise TypeError(f"Unknown report block {type(block).__name__}")


def _anchor(title: str) -> str:
    """The anchor GitHub and most Markdown viewers give a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def render_markdown(report: Report) -> str:
    """The whole report as one Markdown document."""
    parts = [f"# {report.title}", report.subtitle, "## Contents"]
    parts.append(
        "\n".join(
            f"{n}. [{s.title}](#{_anchor(f'{n}. {s.title}')})"
            for n, s in enumerate(report.sections, start=1)
        )
    )
    for n, section in enumerate(report.sections, start=1):
        parts.append(f"## {n}. {section.title}")
        if section.part:
            parts.append(f"*Assignment {section.part.lower()}.*")
        parts.extend(block_markdown(b) for b in section.blocks)
    return "\n\n".join(parts) + "\n"
