"""The ``postwatch`` command line (README, "Command line"): the headless commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from click.core import ParameterSource
from platformdirs import user_data_dir

from listener import log
from listener.log import FORMATS, LEVELS
from store import reads, retention, workspace
from store.config import MASK, ConfigError, dump, parse
from store.db import DatabaseError, NoDatabase, Store, connect, require
from store.read import queries
from store.read.export import FORMATS as EXPORT_FORMATS
from store.read.export import KINDS as EXPORT_KINDS
from store.records import Workspace
from store.schema import migrate


def default_db() -> Path:
    return Path(os.environ.get("POSTWATCH_DB") or Path(user_data_dir("postwatch")) / "postwatch.db")


db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=default_db,
    show_default="postwatch.db in the user data directory",
    help="The SQLite database file.",
)
config_option = click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TOML config file to import before listening.",
)
host_option = click.option("--host", help="Address to listen on (default 127.0.0.1).")
port_option = click.option("--port", type=click.IntRange(0, 65535), help="Port (default 8080).")
token_option = click.option(
    "--token",
    envvar="POSTWATCH_TOKEN",
    default="",
    help="Token for the JSON API (made up and printed when binding beyond loopback).",
)


def _open(db: Path) -> sqlite3.Connection:
    try:
        require(db)
    except NoDatabase as error:
        raise click.ClickException(str(error)) from None
    conn = connect(db)
    migrate(conn)
    return conn


class DefaultGroup(click.Group):
    """A group that runs a default command when no command is named (``postwatch`` alone is
    the dashboard, which ``tui.cli`` sets: this layer cannot import it).

    The default command's options are the group's own too, so that ``postwatch --config
    x.toml`` works and ``postwatch --help`` lists them; given before another command they are
    refused with where to put them, since they would apply to nothing."""

    def __init__(self, name: str | None = None, **attrs: Any) -> None:
        attrs.setdefault("invoke_without_command", True)
        super().__init__(name, **attrs)
        self.default_command: click.Command | None = None
        self._own = self.callback
        self.callback = click.pass_context(self._root)

    def set_default(self, command: click.Command) -> click.Command:
        """Run ``command`` when no command is named; its options become the group's."""
        self.default_command = command
        taken = {param.name for param in self.params}
        self.params.extend(param for param in command.params if param.name not in taken)
        return command

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help_text(ctx, formatter)
        if self.default_command is not None:
            with formatter.indentation():
                formatter.write_paragraph()
                what = self.default_command.get_short_help_str(limit=200)
                formatter.write_text(f"With no command: {what[:1].lower()}{what[1:]}")

    def _default_options(self) -> list[str]:
        if self.default_command is None:
            return []
        return [param.name for param in self.default_command.params if param.name]

    def _root(self, ctx: click.Context, **options: Any) -> None:
        """The group's callback: its own (the decorated function), then the default command
        when no command is named."""
        if ctx.invoked_subcommand is not None:
            _refuse_misplaced(ctx, self._default_options())
        if self._own is not None:
            ctx.invoke(self._own)
        if ctx.invoked_subcommand is not None:
            return
        if self.default_command is None:
            click.echo(ctx.get_help())
            ctx.exit()
        ctx.invoke(self.default_command, **options)


def _refuse_misplaced(ctx: click.Context, names: list[str]) -> None:
    """A default command's option written before another command applies to nothing: say
    where it goes rather than ignore it."""
    given = [
        name for name in names if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise click.UsageError(
            f"{flags} before '{ctx.invoked_subcommand}' applies to the dashboard only: "
            f"put it after the command (postwatch {ctx.invoked_subcommand} {flags} …)"
        )


@click.group(cls=DefaultGroup)
@click.version_option(package_name="postwatch")
def cli() -> None:
    """postwatch: capture conversion postbacks, apply conditional postback rules, deliver
    them, and show every step."""


@cli.command()
@db_option
@config_option
@host_option
@port_option
@token_option
@click.option(
    "--log-level",
    type=click.Choice(LEVELS),
    default="info",
    show_default=True,
    help="info: a line per request and per failed delivery; warning: failures only.",
)
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="json: one JSON object per line, for log collectors.",
)
def serve(
    db: Path,
    config: Path | None,
    host: str | None,
    port: int | None,
    token: str,
    log_level: str,
    log_format: str,
) -> None:
    """Run the listener alone (headless), logging to stderr."""
    from listener.serve import ListenError, raise_open_files_limit
    from listener.serve import serve as run

    log.configure(log_level, log_format)
    raise_open_files_limit()
    try:
        asyncio.run(run(db, config, host, port, token))
    except ConfigError as error:
        raise click.ClickException(f"{config}: {error}" if config else str(error)) from None
    except (DatabaseError, ListenError) as error:
        raise click.ClickException(str(error)) from None


@cli.command(short_help="The story of a click id, external id or transaction id.")
@click.argument("id")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON of /api/trace/{id}.")
@click.option(
    "--markdown",
    "as_markdown",
    is_flag=True,
    help="Print the trace as a Markdown ticket for a network or a traffic source (secrets masked).",
)
@db_option
def trace(id: str, as_json: bool, as_markdown: bool, db: Path) -> None:
    """The whole story of a click id, external id or transaction id."""
    if as_json and as_markdown:
        raise click.UsageError("--json and --markdown print the trace two ways: give one of them")
    conn = _open(db)
    found = queries.trace(conn, id)
    if as_json:
        click.echo(json.dumps(reads.as_json(found), indent=2))
        return
    from listener.story import markdown, story

    if as_markdown:
        click.echo(markdown(found, id), nl=False)
    else:
        for line in story(found, focused=True):
            click.echo(line)
    if found.empty:
        sys.exit(1)


def _filter_options(command: Any) -> Any:
    """The list filters (docs/support.md) as options (their values are checked as the API's)."""
    for name, help_text in reversed(
        [
            ("campaign", "A campaign's key or name."),
            ("type", "A conversion type (case-sensitive)."),
            ("status", "approved, pending, declined or other."),
            ("verdict", "A decision's verdict: fired, filtered or skipped."),
            ("outcome", "An attempt's outcome, or an inbound request's: accepted, rejected."),
            ("postback", "A postback config's name."),
            ("traffic-source", "A traffic source's name."),
            ("endpoint", "Inbound only: click or postback."),
            ("q", "Free text: an id, or part of an id or parameter of recent rows."),
            ("since", "From this time on: ISO 8601 (UTC unless it says) or Unix seconds."),
            ("until", "Up to this time: ISO 8601 or Unix seconds."),
            ("limit", "At most this many rows (default: all)."),
            ("before", "Only rows with a smaller id."),
        ]
    ):
        command = click.option(f"--{name}", help=help_text)(command)
    return command


@cli.command("export", short_help="Export rows of a list as CSV or JSON Lines.")
@click.argument("kind", type=click.Choice(EXPORT_KINDS))
@click.option(
    "--format",
    "shape",
    type=click.Choice(EXPORT_FORMATS),
    default="csv",
    show_default=True,
    help="csv: fixed columns, nested values as JSON text; jsonl: one JSON object per line.",
)
@_filter_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@db_option
def export_rows(
    kind: str, shape: str, output: Path | None, db: Path, **filters: str | None
) -> None:
    """Export conversions, decisions, deliveries or inbound requests, newest first, with
    the list filters, written a page at a time."""
    from store.read.export import chunks, export_request
    from store.read.filters import FilterError

    given = {name: value for name, value in filters.items() if value is not None}
    given["format"] = shape
    conn = _open(db)
    try:
        wanted = export_request(kind, given)
        pieces = chunks(conn, wanted)
        first = next(pieces) + next(pieces)  # a campaign no one has fails before any output
    except FilterError as error:
        raise click.UsageError(str(error)) from None
    with (
        open(output, "w", encoding="utf-8", newline="")
        if output is not None
        else contextlib.nullcontext(sys.stdout)
    ) as out:
        try:
            out.write(first)
            for piece in pieces:
                out.write(piece)
        except BrokenPipeError:  # piped into head: the reader has what it wanted
            sys.stderr.close()


@cli.command(short_help="Show the JSON API token stored in the database.")
@db_option
def token(db: Path) -> None:
    """Show the JSON API token stored in the database (set in the config, or made up when
    the listener first bound beyond loopback)."""
    stored = workspace.load_settings(_open(db)).token
    if not stored:
        raise click.ClickException(
            f"no API token is stored in {db}: set [listener] token in the config, or pass "
            "--token (or POSTWATCH_TOKEN) to postwatch serve"
        )
    click.echo(stored)


def _age(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return retention.parse_age(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@cli.command()
@click.option(
    "--older-than",
    "age",
    required=True,
    callback=_age,
    help="Delete what is older than this: 30d (days; a bare number is days), 12h or 90m.",
)
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; change nothing.")
@click.option(
    "--vacuum",
    is_flag=True,
    help="Then rewrite a database created without incremental vacuum (older postwatch) once, "
    "so that its space is given back; this holds the database for the whole rewrite: stop "
    "the listener first.",
)
@db_option
def prune(age: float, dry_run: bool, vacuum: bool, db: Path) -> None:
    """Delete old rows and give the space back.

    Decisions and deliveries go with their conversion, in small steps while the listener
    runs; deliveries still pending or retrying are kept, with what they need."""
    _open(db).close()  # says so when there is no database; brings the schema up to date
    try:
        pruned = asyncio.run(_prune(db, time.time() - age, dry_run))
    except DatabaseError as error:
        raise click.ClickException(str(error)) from None
    for line in retention.describe(pruned):
        click.echo(line)
    if vacuum:
        _vacuum(db, pruned)


def _vacuum(db: Path, pruned: retention.Pruned) -> None:
    """``prune --vacuum``: rewrite a database made without incremental vacuum, once."""
    if pruned.dry_run:
        click.echo("dry run: no VACUUM")
        return
    if pruned.incremental:
        click.echo("no VACUUM needed: this database gives space back at every prune")
        return
    before = retention.size_on_disk(db)
    conn = connect(db)  # sets auto_vacuum = INCREMENTAL, which VACUUM then applies
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as error:
        raise click.ClickException(
            f"cannot rewrite {db} with VACUUM ({error}): stop the listener that uses it and "
            "run postwatch prune --vacuum again"
        ) from None
    finally:
        conn.close()
    click.echo(
        f"rewrote the database with VACUUM: {retention.size_text(before)} ->"
        f" {retention.size_text(retention.size_on_disk(db))}; from now on every prune gives"
        " its space back"
    )


async def _prune(db: Path, cut: float, dry_run: bool) -> retention.Pruned:
    async with Store(db) as store:
        return await retention.prune(store, cut, dry_run=dry_run)


@cli.group()
def config() -> None:
    """Import or export the TOML config."""


@config.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
def config_import(file: Path, db: Path) -> None:
    """Load FILE into the database (all or nothing). The file may name only what it changes:
    keys it leaves out keep their stored values, and it may refer to stored sources and
    campaigns."""
    text = file.read_text(encoding="utf-8")
    binding_ids = _binding_ids()
    try:
        if not db.exists():
            # Refuse a bad file before a database is made for it.
            parse(text, known=Workspace(), binding_ids=binding_ids)
        db.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(db)
        migrate(conn)
        with conn:
            # One transaction: what the file is checked against is what it is written over.
            conn.execute("BEGIN IMMEDIATE")
            loaded = parse(text, known=workspace.load_workspace(conn), binding_ids=binding_ids)
            workspace.apply_workspace(conn, loaded)
    except ConfigError as error:
        raise click.ClickException(f"{file}: {error}; nothing was imported") from None
    click.echo(
        f"imported {file}: {len(loaded.campaigns)} campaigns, "
        f"{sum(len(c.postbacks) for c in loaded.campaigns)} postback configs"
    )


def _binding_ids() -> list[str] | None:
    """The dashboard's binding ids, when the root command put a ``binding_ids`` callable in
    its context object (the dashboard's CLI does); None: ``[keys]`` ids are not checked."""
    root = click.get_current_context().find_root().obj
    if isinstance(root, dict) and callable(root.get("binding_ids")):
        return list(root["binding_ids"]())
    return None


@config.command("export")
@db_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option(
    "--include-secrets",
    is_flag=True,
    help=f"Write the listener key, the API token and platform tokens as they are "
    f"(by default each is written as {MASK}, which importing reads as: keep the stored one).",
)
def config_export(db: Path, output: Path | None, include_secrets: bool) -> None:
    """Write the current configuration as TOML, secrets masked unless --include-secrets."""
    conn = _open(db)
    text = dump(workspace.load_workspace(conn), include_secrets=include_secrets)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@cli.command()
@click.option(
    "--url", default="http://127.0.0.1:8080", show_default=True, help="The listener to send to."
)
@click.option("--campaign", default="sample", show_default=True, help="Campaign key.")
@click.option("--rate", type=float, default=2.0, show_default=True, help="Requests per second.")
@click.option("--count", type=int, help="Clicks to send (default: until Ctrl-C).")
def demo(url: str, campaign: str, rate: float, count: int | None) -> None:
    """Send synthetic clicks and postbacks to a running listener."""
    from listener.demo import run_demo

    try:
        stats = asyncio.run(run_demo(url, campaign=campaign, rate=rate, count=count))
    except KeyboardInterrupt:
        return
    if stats.reached == 0:
        raise click.ClickException(
            f"the demo reached nothing: {stats.problem} (start `postwatch` or `postwatch serve`,"
            " or give the listener's address with --url)"
        )
    click.echo(
        f"sent {stats.clicks} clicks and {stats.postbacks} postbacks ({stats.errors} errors)"
    )


# -- the support actions (docs/support.md), through the API of a running listener -------------
#
# They go through the listener rather than the database: the listener that stores a replayed
# request or a conversion entered by hand is the one whose outbox sends its deliveries (once,
# when it holds the outbox lease), and a test postback waits for the target's answer.

url_option = click.option(
    "--url",
    default="http://127.0.0.1:8080",
    show_default=True,
    envvar="POSTWATCH_URL",
    help="The running listener.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")


def _api_token(token: str, db: Path) -> str:
    """The token given, else the one stored in the database (when there is one)."""
    if token or not db.exists():
        return token
    return workspace.load_settings(_open(db)).token


def call_api(url: str, path: str, payload: dict[str, Any], token: str) -> tuple[int, Any]:
    """POST ``payload`` as JSON to the listener at ``url``; the status and the JSON answer.
    A listener that cannot be reached is a ``ClickException`` saying so."""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url.rstrip("/") + path, data=json.dumps(payload).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            return int(error.code), json.loads(text)
        except ValueError:
            return int(error.code), {"error": text or str(error)}
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise click.ClickException(
            f"no listener answers at {url} ({reason}): start postwatch serve, or give --url"
        ) from None


def _answered(status: int, body: Any, as_json: bool) -> Any:
    """The API's answer, printed as JSON when asked; an error answer ends the command."""
    if as_json:
        click.echo(json.dumps(body, indent=2))
    if status >= 400:
        message = body.get("error") if isinstance(body, dict) else body
        raise click.ClickException(str(message))
    return body


def _decision_lines(decisions: list[dict[str, Any]]) -> list[str]:
    return [
        f"  {d['verdict'].upper()} postback '{d['postback']}'"
        + (": " + "; ".join(d["reasons"]) if d.get("reasons") else "")
        for d in decisions
    ]


EDIT_HELP = (
    "# Replay of inbound #{id} ({method} {path}). Edit the query string and the body, save\n"
    "# and quit. Lines starting with # are left out; quit without saving to cancel.\n"
)


def edit_request(inbound_id: int, db: Path, query: str | None, body: str | None) -> tuple[str, str]:
    """The query and body of a stored request, edited in $EDITOR (``--edit``)."""
    from listener.actions import edit_text, parse_edited

    found = queries.inbound_by_id(_open(db), [inbound_id])
    if not found:
        raise click.ClickException(f"no inbound request has id {inbound_id} in {db}")
    row = found[0]
    text = EDIT_HELP.format(id=row.id, method=row.method, path=row.path)
    text += edit_text(row.query if query is None else query, row.body if body is None else body)
    edited = click.edit(text, extension=".txt")
    if edited is None:
        raise click.ClickException("the editor was closed without saving: nothing was replayed")
    return parse_edited(edited)


@cli.command(short_help="Replay a stored inbound request, optionally edited.")
@click.argument("inbound_id", type=int)
@click.option("--query", help="Replace the query string (without the '?').")
@click.option("--body", help="Replace the body.")
@click.option("--edit", is_flag=True, help="Edit the query and the body in $EDITOR first.")
@url_option
@token_option
@json_option
@db_option
def replay(
    inbound_id: int,
    query: str | None,
    body: str | None,
    edit: bool,
    url: str,
    token: str,
    as_json: bool,
    db: Path,
) -> None:
    """Send a stored inbound request through the running listener again, optionally edited."""
    if edit:
        query, body = edit_request(inbound_id, db, query, body)
    payload = {
        name: value for name, value in (("query", query), ("body", body)) if value is not None
    }
    status, answer = call_api(
        url, f"/api/inbound/{inbound_id}/replay", payload, _api_token(token, db)
    )
    found = _answered(status, answer, as_json)
    if as_json:
        return
    row = found["inbound"]
    reason = f" ({row['reason']})" if row["reason"] else ""
    click.echo(
        f"inbound #{row['id']} (replay of #{found['replay_of']}) {row['method']} {row['path']}: "
        f"{row['outcome']}{reason}"
    )
    for line in _decision_lines(found["answer"]["body"].get("decisions", [])):
        click.echo(line)


@cli.group(short_help="Enter a conversion by hand (conversion add).")
def conversion() -> None:
    """Conversions entered by hand."""


@conversion.command("add")
@click.argument("click_id")
@click.option("--type", "type_", help="Conversion type (Lead, Deposit…).")
@click.option("--status", help="approved, pending, declined or other (or an offer source alias).")
@click.option("--payout", help="Payout, a plain decimal.")
@click.option("--txid", help="Transaction id (an existing one of the click updates it).")
@click.option("--currency", help="Currency (default: the settings' currency).")
@click.option(
    "--fire/--no-fire",
    default=True,
    show_default=True,
    help="Decide and send its postbacks, or only record it.",
)
@url_option
@token_option
@json_option
@db_option
def conversion_add(
    click_id: str,
    type_: str | None,
    status: str | None,
    payout: str | None,
    txid: str | None,
    currency: str | None,
    fire: bool,
    url: str,
    token: str,
    as_json: bool,
    db: Path,
) -> None:
    """Enter a conversion by hand for a known click, marked manual."""
    given = {"type": type_, "status": status, "payout": payout, "txid": txid, "currency": currency}
    payload: dict[str, Any] = {"click_id": click_id, "fire": fire}
    payload |= {name: value for name, value in given.items() if value is not None}
    code, answer = call_api(url, "/api/conversions", payload, _api_token(token, db))
    found = _answered(code, answer, as_json)
    if as_json:
        return
    if "ignored" in found:
        click.echo(f"not recorded: {found['ignored']}")
        return
    how = "" if fire else ", not fired"
    click.echo(
        f"conversion #{found['conversion_id']} {found['change']} (manual{how}): "
        f"status {found['status']}"
    )
    for line in _decision_lines(found.get("decisions", [])):
        click.echo(line)


def _values(ctx: click.Context, param: click.Parameter, given: tuple[str, ...]) -> dict[str, str]:
    from listener.outbound import named_values

    try:
        return named_values(given)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@cli.command("test-postback", short_help="Send one test postback of a postback config.")
@click.argument("config")
@click.option("--campaign", help="Campaign key, when configs of several campaigns have the name.")
@click.option(
    "--value",
    "values",
    multiple=True,
    callback=_values,
    help="A macro value, NAME=VALUE (payout=5, external_id=abc, sub1=fr); repeatable.",
)
@url_option
@token_option
@json_option
@db_option
def test_postback(
    config: str,
    campaign: str | None,
    values: dict[str, str],
    url: str,
    token: str,
    as_json: bool,
    db: Path,
) -> None:
    """Send one test postback of a postback config (name or id) to its real target."""
    payload: dict[str, Any] = {"values": values}
    if campaign:
        payload["campaign"] = campaign
    path = f"/api/postbacks/{quote(config, safe='')}/test"
    code, answer = call_api(url, path, payload, _api_token(token, db))
    found = _answered(code, answer, as_json)
    if not as_json:
        status = found["http_status"] if found["http_status"] is not None else "no answer"
        click.echo(
            f"test postback '{found['postback']}' ({found['campaign']}): {found['method']} "
            f"{found['url']} -> {status} in {found['duration_ms']:g} ms: {found['outcome']}"
        )
        if found["error"]:
            click.echo(f"  why: {found['error']}")
        if found["response"]:
            click.echo(f"  answer: {found['response']}")
    if found["outcome"] != "delivered":
        sys.exit(1)


# -- recover and re-evaluate (docs/support.md) ------------------------------------------------


def _moment(name: str) -> Any:
    """A click callback reading a time option: ISO 8601, Unix seconds or an age (2h)."""
    from listener.recover import TimeError, parse_time

    def read(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
        if value is None:
            return None
        try:
            return parse_time(value, time.time(), name)
        except TimeError as error:
            raise click.BadParameter(str(error)) from None

    return read


async def _write(db: Path, job: Any) -> Any:
    """Run one job through the database's writer (another process may be listening: SQLite
    takes turns), and return its result."""
    async with Store(db) as store:
        return await store.write(job)


@cli.command(short_help="Resend every failed delivery since a time, once each.")
@click.option(
    "--since",
    required=True,
    callback=_moment("since"),
    help="Failed since this time: an age (2h, 30m, 7d), ISO 8601 or Unix seconds.",
)
@click.option("--traffic-source", help="Only deliveries to this traffic source (name).")
@click.option("--postback", help="Only deliveries of this postback config (name or id).")
@click.option("--campaign", help="Only deliveries of this campaign (key or name).")
@click.option("--dry-run", is_flag=True, help="Say what would be resent; queue nothing.")
@db_option
def recover(
    since: float,
    traffic_source: str | None,
    postback: str | None,
    campaign: str | None,
    dry_run: bool,
    db: Path,
) -> None:
    """Resend every failed delivery since a time, once each; the delivering listener sends
    what was queued."""
    from listener import recover as recovery
    from store.read.filters import FilterError

    chosen = recovery.RecoverFilter(since, traffic_source, postback, campaign)
    conn = _open(db)
    try:
        if dry_run:
            found = recovery.recover(conn, chosen, now=time.time(), dry_run=True)
        else:
            now = time.time()
            found = asyncio.run(_write(db, lambda c: recovery.recover(c, chosen, now=now)))
    except (DatabaseError, FilterError) as error:  # FilterError: a name no one has
        raise click.ClickException(str(error)) from None
    finally:
        conn.close()
    for line in recovery.describe(found):
        click.echo(line)


@cli.command(short_help="Run conversions through the current rules again.")
@click.option("--campaign", help="Conversions of this campaign (key).")
@click.option("--since", callback=_moment("since"), help="Created at or after: 2h, ISO, Unix.")
@click.option("--until", callback=_moment("until"), help="Created before: 2h, ISO, Unix.")
@click.option("--id", "ids", type=int, multiple=True, help="A conversion id (repeatable).")
@click.option(
    "--dry-run", is_flag=True, help="List the decisions that would change; change nothing."
)
@click.option("--fire", is_flag=True, help="Send the decisions that newly fire.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON of POST /api/reevaluate.")
@db_option
def reevaluate(
    campaign: str | None,
    since: float | None,
    until: float | None,
    ids: tuple[int, ...],
    dry_run: bool,
    fire: bool,
    as_json: bool,
    db: Path,
) -> None:
    """Run conversions through the current rules: list the decisions that flip (fired <->
    filtered) and why, and record them as a re-evaluation beside the originals."""
    from listener import reevaluate as reevaluation

    chosen = reevaluation.Selection(campaign, since, until, ids)
    now = time.time()

    def job(conn: sqlite3.Connection) -> reevaluation.Reevaluated:
        return reevaluation.reevaluate(conn, chosen, at=now, dry_run=dry_run, fire=fire)

    conn = _open(db)
    try:
        found = job(conn) if dry_run else asyncio.run(_write(db, job))
    except (reevaluation.SelectionError, DatabaseError) as error:
        raise click.ClickException(str(error)) from None
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(found.as_json(), indent=2))
        return
    for line in reevaluation.describe(found):
        click.echo(line)
