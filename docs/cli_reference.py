"""Write the command-line reference from the commands themselves (run by conf.py at each build).

Every command, its help and its options, grouped by the panels ``--help`` shows, come from the
typer application, so the reference cannot drift from the CLI.
"""

from __future__ import annotations

from pathlib import Path

import typer

from dataworth.cli import COMMANDS, app


def _cell(text: str) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _option_names(param) -> str:
    names = [*param.opts, *param.secondary_opts]
    label = " / ".join(f"`{n}`" for n in names)
    if getattr(param, "param_type_name", "") == "argument":
        label = f"`{param.name.upper()}`"
    return label


def command_reference() -> str:
    """The reference as Markdown: one section per command, in ``dataworth --help`` order."""
    group = typer.main.get_command(app)
    lines = [
        "# Command-line reference",
        "",
        "Generated from the commands themselves when these pages are built; "
        "`dataworth COMMAND --help` prints the same.",
        "",
        f"`dataworth`: {_cell(group.help)}",
        "",
    ]
    for name, _ in COMMANDS:
        command = group.commands[name]
        lines += [f"## `dataworth {name}`", ""]
        paragraphs = (command.help or "").strip().split("\n\n")
        lines += [" ".join(p.split()) + "\n" for p in paragraphs if p.strip()]
        panels: dict[str, list] = {}
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            panels.setdefault(getattr(param, "rich_help_panel", None) or "Options", []).append(
                param
            )
        for panel, params in panels.items():
            lines += [f"**{panel}**", "", "| option | what it does |", "|---|---|"]
            lines += [f"| {_option_names(p)} | {_cell(p.help)} |" for p in params]
            lines.append("")
    return "\n".join(lines) + "\n"


def write(path: Path) -> None:
    """Write the reference to ``path`` when its text changed (so Sphinx rebuilds only then)."""
    text = command_reference()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


if __name__ == "__main__":
    print(command_reference())
