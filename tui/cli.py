"""The ``postwatch`` entry point: the one command group of ``listener.cli`` (serve, trace,
config, token, demo…), given here what needs the dashboard: with no command, the dashboard
with the listener inside it, and ``postwatch dash --db FILE``, the dashboard attached to a
database another process serves."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from listener.cli import cli, config_option, db_option, host_option, port_option, token_option
from listener.serve import raise_open_files_limit, tune_garbage_collector
from store.config import ConfigError, parse
from tui.keys import binding_ids

theme_option = click.option(
    "--theme",
    envvar="POSTWATCH_THEME",
    help="Colour theme: ansi-dark (16 colours, the terminal's own palette), textual-dark, "
    "nord, … (the command palette lists them all).",
)
no_mouse_option = click.option(
    "--no-mouse",
    is_flag=True,
    help="Leave the mouse to the terminal (text selection works as usual).",
)

local_time_option = click.option(
    "--local-time",
    is_flag=True,
    envvar="POSTWATCH_LOCAL_TIME",
    help="Show times in the local time zone rather than UTC (z switches on screen).",
)


def _check_config(config: Path) -> None:
    """Refuse a bad config file with the line ``serve`` gives for it, or one whose ``[keys]``
    names a binding the dashboard does not have, before the terminal is taken over."""
    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{config}: cannot be read: {error}") from None
    try:
        parse(text, binding_ids=binding_ids())
    except ConfigError as error:
        raise click.ClickException(f"{config}: {error}") from None


def _run(options: object, mouse: bool) -> None:
    from textual.theme import BUILTIN_THEMES

    from tui.app import THEME_ALIASES
    from tui.context import DashOptions

    assert isinstance(options, DashOptions)
    # Refuse what can be refused before the terminal is taken over.
    theme = THEME_ALIASES.get(options.theme or "", options.theme)
    if theme and theme not in BUILTIN_THEMES:
        known = ", ".join(sorted(BUILTIN_THEMES))
        raise click.BadParameter(
            f"no theme is named {theme!r} (known: {known})", param_hint="--theme"
        )
    if options.config is not None:
        _check_config(options.config)
    raise_open_files_limit()
    return_code = asyncio.run(_dashboard(options, mouse))
    if return_code:
        sys.exit(return_code)


async def _dashboard(options: object, mouse: bool) -> int:
    """Open the workspace (and start the listener) before the terminal is taken over, so that
    a database or a port that cannot be had is one line on the terminal; then run the app in
    the same event loop."""
    from tui.app import PostwatchApp
    from tui.context import DashOptions, open_dash, start_failure

    assert isinstance(options, DashOptions)
    try:
        dash = await open_dash(options)
    except Exception as error:
        line = start_failure(options, error)
        if line is None:
            raise
        raise click.ClickException(line) from None
    try:
        app = PostwatchApp(options, dash)
        tune_garbage_collector()
        await app.run_async(mouse=mouse)
    finally:
        await dash.close()
    return app.return_code or 0


@click.command("dashboard")
@db_option
@config_option
@host_option
@port_option
@token_option
@theme_option
@no_mouse_option
@local_time_option
def dashboard(
    db: Path,
    config: Path | None,
    host: str | None,
    port: int | None,
    token: str,
    theme: str | None,
    no_mouse: bool,
    local_time: bool,
) -> None:
    """The dashboard, with the listener running inside it."""
    from tui.context import DashOptions

    _run(
        DashOptions(
            db=db,
            host=host,
            port=port,
            config=config,
            token=token,
            theme=theme,
            local_time=local_time,
        ),
        mouse=not no_mouse,
    )


# `postwatch` alone; its options are the group's (`postwatch --config x.toml`).
cli.set_default(dashboard)
# `config import` refuses a [keys] entry that names no binding: the ids live here. (A caller
# that passes its own ``obj``, as tests do, decides for itself.)
cli.context_settings["obj"] = {"binding_ids": binding_ids}


@cli.command(short_help="The dashboard, attached to a database another process serves.")
@db_option
@click.option(
    "--listener",
    "listener_url",
    help="The serving listener's URL, for curl lines and demo traffic "
    "(default: the address in the database's settings).",
)
@theme_option
@no_mouse_option
@local_time_option
def dash(
    db: Path, listener_url: str | None, theme: str | None, no_mouse: bool, local_time: bool
) -> None:
    """The dashboard, attached to a database that `postwatch serve` writes."""
    from tui.context import DashOptions

    _run(
        DashOptions(
            db=db, attached=True, listener_url=listener_url, theme=theme, local_time=local_time
        ),
        mouse=not no_mouse,
    )


def main() -> None:
    cli()
