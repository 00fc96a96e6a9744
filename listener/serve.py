"""Opening a workspace and running the listener headless."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import resource
import secrets
import signal
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from listener.access import is_loopback
from listener.app import bind, start
from listener.clock import SYSTEM, Clock
from listener.platforms.common import Missing, resolve
from store import workspace
from store.config import ConfigError, parse
from store.db import Store
from store.records import Settings
from store.sample import follow_port, sample_workspace


async def prepare(store: Store, config: Path | None) -> Settings:
    """Import the config file, checked against what the database holds; return the settings
    in force, the key and token read from the environment where they are written
    ``env:NAME``. A bad config file raises ``ConfigError`` and changes nothing."""
    if config is not None:
        text = config.read_text(encoding="utf-8")

        def load(conn: sqlite3.Connection) -> None:
            workspace.apply_workspace(conn, parse(text, known=workspace.load_workspace(conn)))

        await store.write(load)
    settings = await store.read(workspace.load_settings)
    try:
        settings.key = resolve(settings.key, "the [listener] key")
        settings.token = resolve(settings.token, "the [listener] token")
    except Missing as error:
        raise ConfigError(None, f"{error}: set it, or write the value itself") from None
    return settings


ALL_IPV4 = ("0.0.0.0", "")
ALL_IPV6 = ("::",)


def listening_on(host: str, port: int) -> str:
    """Where a listener is bound, as a person reads it: "0.0.0.0:8080 (all addresses)"."""
    if host in ALL_IPV4:
        return f"0.0.0.0:{port} (all addresses)"
    if host in ALL_IPV6:
        return f"[::]:{port} (all addresses)"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ListenError(Exception):
    """The listener cannot listen on its address: the message says so and what to do."""

    def __init__(self, host: str, port: int, db: Path, cause: OSError) -> None:
        if cause.errno == errno.EADDRINUSE:
            reason = os.strerror(cause.errno).lower()
        else:
            reason = cause.strerror or str(cause)
        super().__init__(
            f"cannot listen on {listening_on(host, port)}: {reason}; choose another port with "
            f"--port (--port 0 takes any free one), or, if a postwatch serve on this database "
            f"listens there, attach to it with `postwatch dash --db {db}`"
        )


@dataclass
class Listening:
    """A started listener and what a person is told about it."""

    runner: web.AppRunner
    settings: Settings
    host: str
    port: int  # the bound port (--port 0 takes any free one)
    token: str
    token_note: str  # where the token is; the token itself only when just made up
    warnings: list[str]


async def listen(
    store: Store,
    config: Path | None,
    host: str | None,
    port: int | None,
    token: str,
    clock: Clock = SYSTEM,
) -> Listening:
    """Import the config, choose the API token, and start listening in this event loop (the
    headless listener and the dashboard alike). A new, empty database then gets the sample
    workspace, whose traffic source posts to this very listener's sink (and follows it to
    another port at a later start, while its URL is the sample's). Raises ``ConfigError``
    for a bad config file and ``ListenError`` when the address cannot be had."""
    settings = await prepare(store, config)
    host = host or settings.host
    port = port if port is not None else settings.port
    token, token_note = await api_token(store, settings, host, token)
    try:
        sock = bind(host, port)
    except OSError as error:
        raise ListenError(host, port, store.path, error) from error
    bound = int(sock.getsockname()[1])
    if await store.read(workspace.is_empty):  # before the first request can come
        sample = sample_workspace(bound)
        await store.write(lambda conn: workspace.apply_workspace(conn, sample))
    else:  # the sample's deliveries reach this listener's sink on whatever port it has now
        await store.write(lambda conn: follow_port(conn, bound))
    runner = await start(store, settings, host, bound, token=token, sock=sock, clock=clock)
    warnings = exposure_warnings(host, settings)
    return Listening(runner, settings, host, bound, token, token_note, warnings)


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard one (often 1 024 of 524 288), so that a
    crowd of slow or idle connections cannot make the listener refuse real postbacks with
    "Too many open files". Returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (OSError, ValueError):
            pass  # keep the soft limit: the listener still works, with fewer connections
    return soft


def exposure_warnings(host: str, settings: Settings) -> list[str]:
    """What to say when the listener is reachable beyond this machine without protection."""
    if is_loopback(host):
        return []
    warnings = []
    if not settings.key:
        warnings.append(
            f"warning: listening on {host} without an inbound key: anyone who reaches this "
            "address can send clicks and postbacks; set [listener] key (and allow_ips)"
        )
    return warnings


def tune_garbage_collector() -> None:
    """For a long-running process: what start-up made is kept for good (``gc.freeze``), so
    collections do not walk it again, and the youngest generation is collected every 10 000
    allocations instead of 700 (nearly everything a request makes is freed by reference counting
    long before). Worth about 2% of a postback's cost."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


async def api_token(store: Store, settings: Settings, host: str, given: str) -> tuple[str, str]:
    """The JSON API's token, and a line saying where it comes from ("" when there is none).

    The one given (``--token`` or ``POSTWATCH_TOKEN``) wins, then the one in the settings (the
    config's ``[listener] token``, or one made up earlier). With none, loopback needs none;
    any other address gets one made up and stored, so that it stays the same across restarts:
    it is shown once, when it is made, and ``postwatch token`` shows it again."""
    if given:
        return given, "JSON API token: the one given with --token or POSTWATCH_TOKEN"
    if settings.token:
        return settings.token, (
            f"JSON API token: stored in the database (postwatch token --db {store.path} shows it)"
        )
    if is_loopback(host):
        return "", ""
    token = secrets.token_urlsafe(18)
    await store.write(lambda conn: workspace.save_setting(conn, "token", token))
    settings.token = token
    return token, (
        f"JSON API token (made up now and stored; postwatch token --db {store.path} shows it "
        f"again): {token}"
    )


async def serve(
    db: Path, config: Path | None, host: str | None, port: int | None, token: str
) -> None:
    """Run the listener until SIGINT or SIGTERM."""
    async with Store(db) as store:
        listening = await listen(store, config, host, port, token)
        where = listening_on(listening.host, listening.port)
        print(f"postwatch listening on http://{where}  (database {db})", flush=True)
        tune_garbage_collector()
        for line in [listening.token_note, *listening.warnings]:
            if line:
                print(line, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await listening.runner.cleanup()
