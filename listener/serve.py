"""Opening a workspace and running the listener headless."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import secrets
import signal
from pathlib import Path

from aiohttp import web

from listener.app import start
from store import workspace
from store.config import parse
from store.db import Store
from store.records import Settings
from store.sample import sample_workspace


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def prepare(store: Store, config: Path | None, port: int | None) -> Settings:
    """Import the config file, or give a new, empty database the sample workspace; return
    the settings in force. A bad config file raises ``ConfigError`` and changes nothing."""
    if config is not None:
        loaded = parse(config.read_text(encoding="utf-8"))
        await store.write(lambda conn: workspace.apply_workspace(conn, loaded))
    elif await store.read(workspace.is_empty):
        sample = sample_workspace(port or Settings().port)
        await store.write(lambda conn: workspace.apply_workspace(conn, sample))
    return await store.read(workspace.load_settings)


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
        settings = await prepare(store, config, port)
        host = host or settings.host
        port = port if port is not None else settings.port
        token, token_note = await api_token(store, settings, host, token)
        runner: web.AppRunner = await start(store, settings, host, port, token=token)
        print(f"postwatch listening on http://{host}:{port}  (database {db})", flush=True)
        tune_garbage_collector()
        if token_note:
            print(token_note, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
