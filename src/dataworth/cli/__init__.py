"""The ``dataworth`` command line: a thin layer over :mod:`dataworth.study`.

Commands, in the order ``dataworth --help`` lists them:

- ``datasets``: the built-in datasets;
- ``baseline``: fit the baseline models, show their metrics and the primary metric;
- ``plan``: time the fits and estimate what each valuation method would cost;
- ``study``: every step of a study, written to one run folder with its report;
- ``loo``, ``groups``, ``tmc``, ``ame``: exact leave-one-out, exact leave-group-out,
  TMC-Shapley and AME, each on its own;
- ``knn-shapley``, ``beta-shapley``, ``data-oob``, ``influence``: the other methods;
- ``evaluate``: run the methods on labels flipped on purpose and rank them;
- ``clean``: flag the rows that hurt, act on them when the held-out gain is verified;
- ``report``: rebuild the report of a run folder without fitting anything.

Its modules: :mod:`~dataworth.cli.options` (every option, declared once),
:mod:`~dataworth.cli.shared` (the data, model and engine options grouped once for every command),
:mod:`~dataworth.cli.app` (the application, one-line errors, progress, running steps),
:mod:`~dataworth.cli.render` (the tables the commands print), and one module per family of
commands (:mod:`~dataworth.cli.data_commands`, :mod:`~dataworth.cli.method_commands`,
:mod:`~dataworth.cli.study_commands`, :mod:`~dataworth.cli.clean_command`). Bad input anywhere
raises :class:`~dataworth.errors.DataworthError`; the CLI prints its one-line message after a red
``error:`` and exits with code 2, never with a traceback.
"""

import inspect

from dataworth.cli import clean_command, data_commands, method_commands, study_commands
from dataworth.cli.app import app, main, print_error
from dataworth.cli.options import build_config
from dataworth.methods import registry
from dataworth.study.runner import study_outline

# Registered here, in one list, so the order of `dataworth --help` is the order below.
COMMANDS = [
    ("datasets", data_commands.datasets),
    ("baseline", data_commands.baseline),
    ("plan", data_commands.plan),
    ("study", study_commands.study),
    ("loo", method_commands.loo),
    ("groups", method_commands.groups),
    ("tmc", method_commands.tmc),
    ("ame", method_commands.ame),
    ("knn-shapley", method_commands.knn_shapley_command),
    ("beta-shapley", method_commands.beta_shapley_command),
    ("data-oob", method_commands.data_oob_command),
    ("influence", method_commands.influence_command),
    ("evaluate", study_commands.evaluate),
    ("clean", clean_command.clean),
    ("report", study_commands.report),
]


def command_help(name: str, command) -> str:
    """A command's help: for a method's command, the registry's one-line summary before the
    command's own notes; for ``study``, what a study runs, from the registry; else the
    docstring. Each paragraph is one line, so the terminal's width wraps it."""
    # One line per paragraph: the help is rewrapped to the terminal's width.
    doc = inspect.getdoc(command) or ""
    notes = "\n\n".join(" ".join(part.split()) for part in doc.split("\n\n") if part.strip())
    if name == "study":
        return f"Run the whole study ({study_outline()}); write a run folder.\n\n{notes}"
    spec = registry.by_command(name)
    if spec is None:
        return notes
    return f"{spec.summary}\n\n{notes}" if notes else spec.summary


for _name, _command in COMMANDS:
    app.command(_name, help=command_help(_name, _command))(_command)

__all__ = ["COMMANDS", "app", "build_config", "command_help", "main", "print_error"]
