"""The command line as a package: every command registered once, in order, and documented."""

from __future__ import annotations

import dataworth.cli as cli
from dataworth.cli.shared import DataOptions, ModelOptions, shares_options


def test_every_registered_command_is_listed_in_the_docstring() -> None:
    registered = [command.name for command in cli.app.registered_commands]
    assert registered == [name for name, _ in cli.COMMANDS]
    assert len(set(registered)) == len(registered) == 15
    missing = [name for name in registered if f"``{name}``" not in (cli.__doc__ or "")]
    assert missing == []


def test_the_commands_share_one_declaration_of_each_option() -> None:
    import inspect
    from pathlib import Path

    from dataworth.cli import clean_command, data_commands, method_commands, options, study_commands
    from dataworth.cli.shared import GROUPS

    # The groups take their option types from the options module, not copies.
    assert GROUPS[DataOptions]["dataset"] is options.DatasetOpt
    assert GROUPS[DataOptions]["seed"] is options.SeedOpt
    # The command modules name the data options only through the group: declared once.
    for module in (data_commands, method_commands, study_commands, clean_command):
        source = Path(module.__file__).read_text()
        assert "DatasetOpt" not in source and "TrainSizeOpt" not in source
    # Every command that reads data lists the same options, in the same order, from the group.
    data = list(GROUPS[DataOptions])
    for name, command in cli.COMMANDS:
        parameters = inspect.signature(command).parameters
        if "dataset" not in parameters:
            assert name in ("datasets", "report")
            continue
        names = list(parameters)
        start = names.index("dataset")
        assert names[start : start + len(data)] == data, name
        assert parameters["seed"].annotation is options.SeedOpt
        expected = options.FlipOpt if name != "evaluate" else parameters["flip"].annotation
        assert parameters["flip"].annotation is expected


def test_a_group_is_packed_into_one_object() -> None:
    @shares_options()
    def command(data: DataOptions, primary: ModelOptions, extra: int = 1) -> tuple:
        return data, primary, extra

    data, primary, extra = command(dataset="iris", seed=3, model="knn", extra=2)
    assert data == DataOptions(dataset="iris", seed=3) and primary == ModelOptions(model="knn")
    assert extra == 2
