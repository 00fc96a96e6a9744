"""The running dashboard's surroundings: its database, the listener it runs (or the one it is
attached to), and the actions that change data."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from listener import delivery
from listener.serve import api_token, prepare
from store import workspace
from store.db import Store
from store.records import PostbackConfig, Settings


@dataclass
class DashOptions:
    """How the dashboard was started (the command line)."""

    db: Path
    attached: bool = False
    host: str | None = None
    port: int | None = None
    config: Path | None = None
    token: str = ""
    listener_url: str | None = None  # attached: where the serving listener takes requests
    theme: str | None = None
    poll_interval: float = 0.1
    clock: Callable[[], float] = field(default=time.time)


@dataclass
class Dash:
    """An open workspace the screens read from and write to."""

    options: DashOptions
    store: Store
    settings: Settings
    base_url: str  # the listener's URL, for curl lines and demo traffic
    runner: web.AppRunner | None = None
    token: str = ""

    @property
    def attached(self) -> bool:
        return self.runner is None

    @property
    def address(self) -> str:
        return self.base_url.removeprefix("http://")

    async def resend(self, delivery_id: int) -> int | None:
        """Queue a new attempt of a delivery; return its id (None: no such delivery).

        In-process, through the listener's own API, whose outbox sends it at once. Attached,
        the attempt is written as pending for the serving listener's outbox to pick up."""
        if self.runner is not None:
            return await self._resend_over_api(delivery_id)

        def job(conn: sqlite3.Connection) -> int | None:
            if delivery.resend(conn, delivery_id) is None:
                return None
            row = conn.execute(
                "SELECT max(id) FROM deliveries WHERE resend_of = ?", (delivery_id,)
            ).fetchone()
            return None if row[0] is None else int(row[0])

        return await self.store.write(job)

    async def _resend_over_api(self, delivery_id: int) -> int | None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = f"{self.base_url}/api/deliveries/{delivery_id}/resend"
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.post(url, headers=headers) as response,
        ):
            if response.status == 404:
                return None
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise RuntimeError(str(body.get("error", body)))
            return int(body["id"])

    async def save_rule(self, config: PostbackConfig) -> None:
        """Save a postback config's rule; the next conversion is decided by it."""
        await self.store.write(lambda conn: workspace.update_rule(conn, config))

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        await self.store.close()


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


async def open_dash(options: DashOptions) -> Dash:
    """Open the database; start the listener in this event loop unless attached.

    Raises ``FileNotFoundError`` when attaching to a database that does not exist, and
    ``OSError`` when the listener cannot listen."""
    from listener.app import start

    if options.attached and not options.db.exists():
        raise FileNotFoundError(
            f"no database at {options.db}: start `postwatch serve --db {options.db}` first"
        )
    store = await Store(options.db).open()
    try:
        if options.attached:
            settings = await store.read(workspace.load_settings)
            base_url = options.listener_url or _url(settings.host, settings.port)
            return Dash(options, store, settings, base_url.rstrip("/"))
        settings = await prepare(store, options.config, options.port)
        host = options.host or settings.host
        port = options.port if options.port is not None else settings.port
        token, _ = await api_token(store, settings, host, options.token)
        runner = await start(store, settings, host, port, token=token)
        bound = runner.addresses[0][1] if runner.addresses else port
        return Dash(options, store, settings, _url(host, bound), runner, token)
    except BaseException:
        await store.close()
        raise
