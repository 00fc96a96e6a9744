"""The command line is one click group: ``listener.cli`` declares it and the headless
commands, ``tui.cli`` gives it the dashboard (the default command) and ``dash``."""

from __future__ import annotations

import re

import click
from click.testing import CliRunner

from listener import cli as headless
from tui import cli as entry

COMMANDS = ("config", "dash", "demo", "serve", "token", "trace")


def test_the_entry_point_runs_the_one_group_of_the_listener() -> None:
    assert entry.cli is headless.cli
    assert isinstance(entry.cli, headless.DefaultGroup)
    assert entry.cli.default_command is entry.dashboard
    assert set(COMMANDS) <= set(entry.cli.commands)


def test_help_lists_every_command_on_one_line_and_what_no_command_does() -> None:
    result = CliRunner().invoke(entry.cli, ["--help"])
    assert result.exit_code == 0, result.output
    assert "With no command: the dashboard, with the listener running inside it." in result.output
    listed = result.output.split("Commands:\n", 1)[1].splitlines()
    names = [line.split()[0] for line in listed if line.strip()]
    assert names == sorted(entry.cli.commands)
    for line in listed:
        assert not line.rstrip().endswith("..."), f"help cut short: {line.strip()}"


def test_the_dashboard_options_are_the_groups_and_named_once() -> None:
    names = [param.name for param in entry.cli.params]
    assert len(names) == len(set(names))
    for param in entry.dashboard.params:
        assert param.name in names


def test_a_command_declared_on_the_group_is_a_postwatch_command() -> None:
    @headless.cli.command("probe-one-group")
    @headless.db_option
    def probe(db: object) -> None:
        click.echo(f"probe ran with {db}")

    try:
        result = CliRunner().invoke(entry.cli, ["probe-one-group", "--db", "x.db"])
    finally:
        headless.cli.commands.pop("probe-one-group")
    assert result.exit_code == 0, result.output
    assert result.output == "probe ran with x.db\n"


def test_a_group_without_a_default_command_shows_its_help() -> None:
    @click.group(cls=headless.DefaultGroup)
    def bare() -> None:
        """A group with nothing to run by default."""

    result = CliRunner().invoke(bare, [])
    assert result.exit_code == 0
    assert re.search(r"Usage: .* \[COMMAND\]", result.output)
    assert "With no command" not in result.output


def test_the_groups_own_callback_runs_before_the_default_and_before_a_command() -> None:
    ran: list[str] = []

    @click.group(cls=headless.DefaultGroup)
    def group() -> None:
        ran.append("group")

    @group.command()
    def other() -> None:
        ran.append("other")

    @click.command()
    @click.option("--flag", is_flag=True)
    def default(flag: bool) -> None:
        ran.append(f"default flag={flag}")

    group.set_default(default)
    runner = CliRunner()
    assert runner.invoke(group, ["--flag"]).exit_code == 0
    assert runner.invoke(group, ["other"]).exit_code == 0
    refused = runner.invoke(group, ["--flag", "other"])
    assert ran == ["group", "default flag=True", "group", "other"]
    assert refused.exit_code == 2
    assert "--flag before 'other'" in refused.output
    assert "put it after the command (postwatch other --flag …)" in refused.output
