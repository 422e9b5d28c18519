"""The command line as a package: every command registered once, in order, and documented."""

from __future__ import annotations

import dataworth.cli as cli


def test_every_registered_command_is_listed_in_the_docstring() -> None:
    registered = [command.name for command in cli.app.registered_commands]
    assert registered == [name for name, _ in cli.COMMANDS]
    assert len(set(registered)) == len(registered) == 14
    missing = [name for name in registered if f"``{name}``" not in (cli.__doc__ or "")]
    assert missing == []


def test_the_commands_share_one_declaration_of_each_option() -> None:
    from dataworth.cli import data_commands, method_commands, options, study_commands

    # The command modules take their option types from the options module, not copies.
    for module in (data_commands, method_commands, study_commands):
        assert module.DatasetOpt is options.DatasetOpt
        assert module.SeedOpt is options.SeedOpt
