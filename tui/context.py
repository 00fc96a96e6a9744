"""The running dashboard's surroundings: its database, the listener it runs (or the one it is
attached to), and the actions that change data."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from listener import delivery
from listener.keys import OUTBOX
from listener.serve import ALL_IPV4, ALL_IPV6, ListenError, listen, listening_on
from store import workspace
from store.config import ConfigError
from store.db import DatabaseError, NoDatabase, Store, require
from store.records import PostbackConfig, Settings

API_TIMEOUT = 30.0  # seconds an action through the listener's API may take


class ApiError(RuntimeError):
    """The listener's API refused an action, or no listener answers; the message says why."""


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
    local_time: bool = False  # times in the local time zone rather than UTC (--local-time)


@dataclass
class Dash:
    """An open workspace the screens read from and write to."""

    options: DashOptions
    store: Store
    settings: Settings
    base_url: str  # the listener's URL, for curl lines and demo traffic
    runner: web.AppRunner | None = None
    token: str = ""
    listening: str = ""  # where the listener is bound, as the header shows it
    token_note: str = ""  # where the API token comes from ("" when there is none)
    new_token: str = ""  # the token, when it was made up at this start (shown once)
    warnings: list[str] = field(default_factory=list)  # what the start has to warn about

    @property
    def attached(self) -> bool:
        return self.runner is None

    @property
    def outbox_elsewhere(self) -> str:
        """The sentence saying that another process sends this database's postbacks, when
        the listener inside the dashboard leaves its outbox to it ("" otherwise)."""
        return "" if self.runner is None else self.runner.app[OUTBOX].other_holder

    @property
    def token_where(self) -> str:
        """Where the JSON API's token can be found ("" when the API needs none). Never the
        token itself: that is shown once, when it is made up (``new_token``)."""
        if not self.token:
            return ""
        if self.options.token:
            return "the one given with --token or POSTWATCH_TOKEN"
        return "`postwatch token` shows it"

    @property
    def token_hint(self) -> str:
        """The header's words about the token ("" when the API needs none)."""
        where = self.token_where
        return f"API token: {where}" if where else ""

    @property
    def address(self) -> str:
        """Where the listener is bound (attached: the URL the curl lines use)."""
        return self.listening or self.base_url.removeprefix("http://")

    async def resend(self, delivery_id: int) -> int | None:
        """Queue a new attempt of a delivery; return its id (None: no such delivery).

        In-process, through the listener's own API, whose outbox sends it at once. Attached,
        the attempt is written as pending for the serving listener's outbox to pick up."""
        if self.runner is not None:
            return await self._resend_over_api(delivery_id)

        def job(conn: sqlite3.Connection) -> int | None:
            queued = delivery.resend(conn, delivery_id, self.options.clock())
            return None if queued is None else queued.id

        return await self.store.write(job)

    async def _resend_over_api(self, delivery_id: int) -> int | None:
        status, body = await self.api("POST", f"/api/deliveries/{delivery_id}/resend")
        if status == 404:
            return None
        return int(body["id"])

    async def api(
        self, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        """Call the listener's JSON API (this dashboard's own, or attached, the serving
        listener's at ``base_url``) with the API token; the status and the JSON answer.
        An answer of 400 or more other than 404 raises ``ApiError`` with the API's sentence;
        a listener that cannot be reached raises ``ApiError`` saying so."""
        token = self.token or self.settings.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT)) as session,
                session.request(
                    method, self.base_url + path, json=payload, headers=headers
                ) as answer,
            ):
                body = await answer.json(content_type=None)
                status = answer.status
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise ApiError(
                f"no listener answers at {self.base_url} ({error or type(error).__name__}): "
                "start postwatch serve for this database"
            ) from None
        if status >= 400 and status != 404:
            error_text = body.get("error", body) if isinstance(body, dict) else body
            raise ApiError(str(error_text))
        return status, body

    async def save_rule(self, config: PostbackConfig) -> None:
        """Save a postback config's rule; the next conversion is decided by it."""
        await self.store.write(lambda conn: workspace.update_rule(conn, config))

    async def save_url(self, config: PostbackConfig, traffic_source: str | None, url: str) -> None:
        """Save a URL template: the traffic source's postback URL when ``traffic_source`` is
        named, else the config's own; the next conversion's delivery goes there."""
        assert config.id is not None
        config_id = config.id
        if traffic_source is None:
            await self.store.write(lambda conn: workspace.update_url(conn, config_id, url))
        else:
            await self.store.write(
                lambda conn: workspace.update_postback_url(conn, traffic_source, url)
            )

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        await self.store.close()


def _url(host: str, port: int) -> str:
    """The URL that reaches a listener bound to ``host``: an all-addresses bind is reached on
    loopback (IPv6 sockets are bound IPv6-only, so "::" is reached on ::1)."""
    shown = "127.0.0.1" if host in ALL_IPV4 else "::1" if host in ALL_IPV6 else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def start_failure(options: DashOptions, error: BaseException) -> str | None:
    """The one line that explains why the dashboard could not start (None: not a failure
    of the start, a bug to show in full)."""
    if isinstance(error, ConfigError):
        return f"{options.config}: {error}"
    if isinstance(error, DatabaseError | ListenError | NoDatabase):
        return str(error)
    return None


async def open_dash(options: DashOptions) -> Dash:
    """Open the database; start the listener in this event loop unless attached.

    Raises ``NoDatabase`` when attaching to a database that does not exist,
    ``DatabaseError`` when the database cannot be opened or written, ``ConfigError`` for a
    bad config file, and ``ListenError`` when the listener cannot listen (``start_failure``
    gives the line to show for each)."""
    if options.attached:
        require(options.db)
    store = await Store(options.db).open()
    try:
        try:
            if options.attached:
                return await _attach(options, store)
            return await _listen(options, store)
        except sqlite3.Error as error:  # say, the first write to a read-only database
            raise DatabaseError(store.path, str(error)) from error
    except BaseException:
        await store.close()
        raise


async def _attach(options: DashOptions, store: Store) -> Dash:
    settings = await store.read(workspace.load_settings)
    base_url = options.listener_url or _url(settings.host, settings.port)
    return Dash(options, store, settings, base_url.rstrip("/"))


async def _listen(options: DashOptions, store: Store) -> Dash:
    listening = await listen(
        store, options.config, options.host, options.port, options.token, clock=options.clock
    )
    token, note = listening.token, listening.token_note
    # api_token puts the token itself in its note only when it made it up just now.
    new_token = token if token and token in note else ""
    return Dash(
        options,
        store,
        listening.settings,
        _url(listening.host, listening.port),
        listening.runner,
        token,
        listening=listening_on(listening.host, listening.port),
        token_note=note,
        new_token=new_token,
        warnings=listening.warnings,
    )
