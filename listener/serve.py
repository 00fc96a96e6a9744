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


def api_token(host: str, given: str) -> str:
    """The JSON API's token: none on loopback unless given, a fresh one elsewhere."""
    if given or is_loopback(host):
        return given
    return secrets.token_urlsafe(18)


async def serve(
    db: Path, config: Path | None, host: str | None, port: int | None, token: str
) -> None:
    """Run the listener until SIGINT or SIGTERM."""
    async with Store(db) as store:
        settings = await prepare(store, config, port)
        host = host or settings.host
        port = port if port is not None else settings.port
        token = api_token(host, token)
        runner: web.AppRunner = await start(store, settings, host, port, token=token)
        print(f"postwatch listening on http://{host}:{port}  (database {db})", flush=True)
        tune_garbage_collector()
        if token and not is_loopback(host):
            print(f"JSON API token: {token}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
