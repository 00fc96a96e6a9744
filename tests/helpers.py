"""What the tests share: a real listener on a loopback port over a real SQLite file, a
traffic-source stand-in, and small waits. The fixtures that hand them out are in conftest."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from aiohttp import web

from listener.app import start
from listener.delivery import Outbox
from listener.keys import OUTBOX
from store import workspace
from store.config import parse
from store.db import Store
from store.records import Settings, Workspace
from store.totals import Totals

if TYPE_CHECKING:  # the dashboard's own types: listener tests do not load Textual
    from textual.pilot import Pilot

    from tui.app import PostwatchApp
    from tui.context import Dash
    from tui.widgets.rows import RowTable

T = TypeVar("T")

BASE_CONFIG = """
conversion_types = ["Lead", "Deposit"]

[delivery]
timeout = 2
retry_schedule = [0.2, 0.2]

[[offer_sources]]
name = "AffNet"
default_status = "pending"
duplicates = "update"
status_aliases = { "1" = "approved", "2" = "pending", "3" = "declined", hold = "pending" }

[[traffic_sources]]
name = "Propeller"
click_id_param = "ref_id"
postback_url = "http://127.0.0.1:PORT/sink/propeller?visitor_id={external_id}&payout={payout}"

[[campaigns]]
key = "casino-fr"
name = "Casino FR"
traffic_source = "Propeller"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "all events"

[[campaigns.postbacks]]
name = "paid deposits"
conditional = true
types = ["Deposit"]
statuses = ["approved"]
"""


class Listener:
    """A running postwatch listener and the helpers tests drive it with."""

    def __init__(self, store: Store, runner: web.AppRunner, session: aiohttp.ClientSession):
        self.store = store
        self.runner = runner
        self.session = session
        self.port: int = runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{self.port}"

    async def configure(self, toml: str) -> None:
        """Import a config; the text's PORT stands for this listener's port."""
        loaded = parse(toml.replace("PORT", str(self.port)))
        await self.store.write(lambda conn: workspace.apply_workspace(conn, loaded))

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        async with self.session.get(self.base + path, params=params, allow_redirects=False) as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, body

    async def post(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.post(self.base + path, allow_redirects=False, **kwargs) as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, body

    async def click(self, campaign: str = "casino-fr", **params: Any) -> str:
        status, body = await self.get(f"/click/{campaign}", **params)
        assert status == 200, body
        return str(body["clickid"])

    async def postback(self, **params: Any) -> tuple[int, Any]:
        return await self.get("/postback", **params)

    async def trace(self, any_id: str) -> Any:
        status, body = await self.get(f"/api/trace/{any_id}")
        assert status == 200
        return body

    async def settle(self, check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
        """Wait until ``check`` holds (deliveries happen after the answer)."""
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the condition")
            await asyncio.sleep(0.02)

    async def outcomes(self, any_id: str) -> list[list[str]]:
        """Every decision's attempt outcomes, in order, for the click of ``any_id``."""
        trace = await self.trace(any_id)
        return [
            [attempt["outcome"] for attempt in decision["deliveries"]]
            for conversion in trace["conversions"]
            for decision in conversion["decisions"]
            if decision["deliveries"]
        ]

    async def delivered(self, any_id: str) -> None:
        """Wait until no attempt of this click is pending or retrying."""

        async def done() -> bool:
            return all(
                outcome in ("delivered", "failed")
                for outcomes in await self.outcomes(any_id)
                for outcome in outcomes[-1:]
            )

        await self.settle(done)


async def start_listener(db: Path, settings: Settings | None = None) -> Listener:
    store = await Store(db).open()
    runner = await start(store, settings or Settings(), "127.0.0.1", 0)
    return Listener(
        store, runner, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
    )


async def stop_listener(listener: Listener) -> None:
    await listener.session.close()
    await listener.runner.cleanup()
    await listener.store.close()


def config_for(receiver_port: int, url: str, extra: str = "") -> str:
    return f"""
conversion_types = ["Lead", "Deposit"]
[delivery]
timeout = 1
retry_schedule = [0.2, 0.2]
[[offer_sources]]
name = "AffNet"
status_aliases = {{}}
[[traffic_sources]]
name = "Receiver"
postback_url = "http://127.0.0.1:{receiver_port}{url}"
{extra}
[[campaigns]]
key = "casino-fr"
traffic_source = "Receiver"
offer_source = "AffNet"
[[campaigns.postbacks]]
name = "all events"
"""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Target:
    """A traffic-source stand-in: records every request and its body, and answers with the
    next of ``answers`` (status, text) while there are any, then with ``handler`` (200 "OK"
    unless a test sets another). Served by the ``target`` fixture (pytest-aiohttp)."""

    def __init__(self) -> None:
        self.received: list[web.Request] = []
        self.bodies: list[str] = []
        self.answers: list[tuple[int, str]] = []
        self.handler: Handler = self.ok
        self.port = 0

    @staticmethod
    async def ok(request: web.Request) -> web.StreamResponse:
        return web.Response(text="OK")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(request)
        self.bodies.append(await request.text())
        if self.answers:
            status, text = self.answers.pop(0)
            return web.Response(status=status, text=text)
        return await self.handler(request)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


def hold_answers(target: Target) -> asyncio.Event:
    """Make ``target`` hold every answer until the returned event is set."""
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(text="OK")

    target.handler = held
    return release


REQUEST_TIMEOUT = 30.0  # seconds a test's request to the listener may take


def free_port() -> int:
    """A port nothing listens on now (for a server to take, or to be refused at)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_process(db: Path, *args: str, **popen: Any) -> tuple[subprocess.Popen[str], int]:
    """`postwatch serve --db db` (and ``args``) as a process of its own, on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "tui", "serve", "--db", str(db), "--port", str(port), *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )
    return process, port


async def until_up(port: int) -> None:
    """Wait until the listener on ``port`` answers its health check."""
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/api/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise AssertionError("the listener did not come up")


async def until(check: Callable[[], Awaitable[T] | T], timeout: float = 10.0) -> T:
    """Wait until ``check`` returns something truthy (awaited when it is a coroutine); return
    it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the condition")
        await asyncio.sleep(0.02)


def outbox(listener: Listener) -> Outbox:
    return listener.runner.app[OUTBOX]


@dataclass
class Driver:
    """A running dashboard and an HTTP client for its listener."""

    app: PostwatchApp
    pilot: Pilot[None]
    session: aiohttp.ClientSession

    @property
    def dash(self) -> Dash:
        assert self.app.dash is not None
        return self.app.dash

    @property
    def base(self) -> str:
        return self.dash.base_url

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        async with self.session.get(self.base + path, params=params) as response:
            return response.status, await response.json(content_type=None)

    async def click(self, **params: Any) -> str:
        status, body = await self.get("/click/casino-fr", **params)
        assert status == 200, body
        return str(body["clickid"])

    async def postback(self, **params: Any) -> Any:
        _, body = await self.get("/postback", **params)
        return body

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)
        await self.pilot.pause()

    async def show(self, name: str) -> None:
        await self.press({"live": "1", "campaigns": "2", "deliveries": "3", "inbound": "4"}[name])
        await until(lambda: self.app.current_mode == name)
        await self.app.wait_ready()

    def table(self) -> RowTable:
        from tui.widgets.rows import RowTable

        return self.app.screen.query_one(RowTable)

    def detail(self) -> str:
        from tui.widgets.detail import DetailPane

        return self.app.screen.query_one(DetailPane).plain

    def drawn_detail(self) -> str:
        """The detail pane's text as drawn (after any markup would have been applied)."""
        from tui.widgets.detail import DetailPane

        return "\n".join(self.app.screen.query_one(DetailPane).drawn())

    def screen_lines(self) -> list[str]:
        """What the table draws, line by line (header first)."""
        table = self.table()
        return [table.render_line(y).text for y in range(table.size.height)]

    def drawn_lines(self) -> list[str]:
        """The table's lines as last drawn (only the lines it asked to redraw are new)."""
        table = self.table()
        return [strip.text for strip in table.render_lines(table.size.region)]


@asynccontextmanager
async def dashboard(
    tmp_path: Path,
    size: tuple[int, int] = (120, 34),
    config: str = BASE_CONFIG,
    *,
    notifications: bool = False,
    local_time: bool = False,
) -> AsyncIterator[Driver]:
    """The dashboard with its listener on a free loopback port, started with ``--config``
    (PORT in the text standing for that port); ``notifications`` shows them on screen,
    ``local_time`` is ``--local-time``."""
    from tui.app import PostwatchApp
    from tui.context import DashOptions

    port = free_port()
    config_file = tmp_path / "postwatch.toml"
    config_file.write_text(config.replace("PORT", str(port)), encoding="utf-8")
    options = DashOptions(
        db=tmp_path / "postwatch.db",
        host="127.0.0.1",
        port=port,
        config=config_file,
        local_time=local_time,
    )
    options.poll_interval = 0.05
    app = PostwatchApp(options)
    async with (
        app.run_test(size=size, notifications=notifications) as pilot,
        # a request the listener never answers fails the test naming it, long before the
        # run's timeout (which only says the test hung)
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as session,
    ):
        await until(lambda: app.dash is not None and app.current_mode == "live")
        await app.wait_ready()
        yield Driver(app, pilot, session)


@asynccontextmanager
async def attached(db: Path, base: str, size: tuple[int, int] = (120, 34)) -> AsyncIterator[Driver]:
    """The dashboard attached to ``db``, which the listener at ``base`` serves (another
    process: the ``served`` fixture), once Live shows its rows."""
    from tui.app import PostwatchApp
    from tui.context import DashOptions

    options = DashOptions(db=db, attached=True, listener_url=base, poll_interval=0.05)
    app = PostwatchApp(options)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with (
        app.run_test(size=size) as pilot,
        aiohttp.ClientSession(timeout=timeout) as session,
    ):
        await until(lambda: app.current_mode == "live")
        await app.wait_ready()
        yield Driver(app, pilot, session)


def toasts(app: PostwatchApp) -> list[tuple[str, str]]:
    """The notifications on screen: (severity, text) each."""
    from textual.widgets._toast import Toast

    return [
        (toast._notification.severity, str(toast.render())) for toast in app.screen.query(Toast)
    ]


ATTACH_CONFIG = BASE_CONFIG.replace(
    "[delivery]", '[listener]\nunknown_clicks = "attach:casino-fr"\n\n[delivery]'
)  # postbacks of unknown click ids become conversions of casino-fr


async def send_conversions(driver: Driver, count: int, connections: int = 8) -> None:
    """``count`` postbacks of new click ids (a dashboard on ``ATTACH_CONFIG``), in order:
    each answered before the next is sent, over ``connections`` connections; then wait until
    Live shows the last."""
    numbers = iter(range(count))

    async def sender() -> None:
        for n in numbers:
            await driver.postback(clickid=f"c{n:03d}", type="Lead")

    await asyncio.gather(*(sender() for _ in range(connections)))
    await until(lambda: driver.table().top_key == count)


def live_row(driver: Driver, click_id: str) -> dict[str, Any] | None:
    """The data of the Live row of ``click_id``, or None while it is not shown."""
    for row in driver.table().rows:
        if row.data["click_id"] == click_id:
            return dict(row.data)
    return None


# -- config files and the CLI (tests of config import, export and secrets) ---------------------

SPEC_EXAMPLE = """
conversion_types = ["Lead", "Deposit"]

[listener]
host = "127.0.0.1"
port = 8080
unknown_clicks = "reject"        # or "attach:<campaign_key>"

[delivery]
timeout = 10                     # seconds per attempt
retry_schedule = [10, 60, 300, 1800, 7200, 21600]   # seconds before each retry

[[sinks]]
name = "propeller"
status = 200
body = "OK"
delay_ms = 0
fail_ratio = 0.0

[[offer_sources]]
name = "AffNet"
default_status = "pending"
duplicates = "update"            # update | new | ignore
status_aliases = { "1" = "approved", "2" = "pending", "3" = "declined", hold = "pending" }

[[traffic_sources]]
name = "PropellerAds"
click_id_param = "ref_id"
postback_url = "http://127.0.0.1:8080/sink/propeller?visitor_id={external_id}&payout={payout}"
failure_body = "error"           # optional regex

[[campaigns]]
key = "casino-fr"
name = "Casino FR"
traffic_source = "PropellerAds"
offer_source = "AffNet"
offer_url = "https://offer.example/?click={clickid}"

[[campaigns.postbacks]]
name = "paid deposits"
kind = "s2s"
url = ""
conditional = true
types = ["Deposit"]
statuses = ["approved"]
min_payout = 0
refire_on_update = false

[[campaigns.postbacks]]
name = "meta purchases"
kind = "facebook"
conditional = true
types = ["Deposit"]
event_names = { Deposit = "Purchase" }
pixel_id = "1234567890"
access_token = ""
base_url = "https://graph.facebook.com"
"""


FULL = """
conversion_types = ["Lead", "Deposit"]
currency = "GBP"

[keys]
"live.follow" = "F"

[listener]
host = "127.0.0.1"
port = 8181
unknown_clicks = "attach:casino-fr"
max_body = 2048
key = "inbound-key-123"
allow_ips = ["10.0.0.0/8"]
trusted_proxies = ["127.0.0.1"]
token = "api-token-456"

[delivery]
timeout = 7
retry_schedule = [1, 2, 3]

[[sinks]]
name = "propeller"
status = 202
body = "accepted"
delay_ms = 1
fail_ratio = 0.25
mimic = "facebook"
error = true
fault = "close"
retry_after = 30

[[offer_sources]]
name = "AffNet"
default_status = "approved"
duplicates = "ignore"
status_aliases = { "1" = "approved", "2" = "pending", "3" = "declined", hold = "pending" }

[[traffic_sources]]
name = "PropellerAds"
click_id_param = "visitor"
postback_url = "http://127.0.0.1:8080/sink/propeller?visitor_id={external_id}&payout={payout}"
success_body = "ok"
failure_body = "error"

[[campaigns]]
key = "casino-fr"
name = "Casino FR"
traffic_source = "PropellerAds"
offer_source = "AffNet"
offer_url = "https://offer.example/?click={clickid}"

[[campaigns.postbacks]]
name = "paid deposits"
kind = "s2s"
url = "http://127.0.0.1:8080/sink/own?c={clickid}"
method = "POST"
body = "c={clickid}"
enabled = false
conditional = true
types = ["Deposit"]
statuses = ["approved"]
min_payout = 5
refire_on_update = true

[[campaigns.postbacks]]
name = "meta purchases"
kind = "facebook"
conditional = true
types = ["Deposit"]
event_names = { Deposit = "Purchase" }
pixel_id = "1234567890"
access_token = "EAAB-secret-token"
base_url = "https://graph.facebook.com"
"""

# Names every table of FULL by its name (or key) and changes one key of each.


def run(*args: str, obj: Any = None) -> tuple[int, str]:
    """``postwatch ARGS`` through click's runner: the exit code and the output."""
    # Imported here: most tests never run the CLI, and conftest imports this module.
    from click.testing import CliRunner

    from listener.cli import cli

    result = CliRunner().invoke(cli, list(args), obj=obj)
    return result.exit_code, result.output


async def postwatch(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``postwatch ARGS`` in a process of its own, as a user runs a command beside a running
    listener (it calls that listener's API): the exit code, the output and the errors."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from listener.cli import cli; cli(prog_name='postwatch')",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=None if env is None else os.environ | env,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


def count_rows(db: Path, table: str) -> int:
    """How many rows ``table`` of the database at ``db`` holds now."""
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def import_text(tmp_path: Path, db: Path, text: str, name: str = "file.toml") -> tuple[int, str]:
    """``config import`` of ``text``, written to a file ``name`` in ``tmp_path``."""
    config = tmp_path / name
    config.write_text(text, encoding="utf-8")
    return run("config", "import", str(config), "--db", str(db))


def stored(db: Path) -> Workspace:
    """The workspace the database at ``db`` holds."""
    import sqlite3

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    return workspace.load_workspace(conn)


# -- header totals ----------------------------------------------------------------------------


def totals_counted(conn: sqlite3.Connection) -> Totals:
    """The totals counted from scratch, as the header counted them before."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM clicks), (SELECT count(*) FROM conversions),"
        " (SELECT count(*) FROM inbound),"
        " (SELECT count(*) FROM inbound WHERE outcome = 'rejected'),"
        " (SELECT count(*) FROM inbound WHERE endpoint = 'postback')"
    ).fetchone()
    return Totals(*row)


def totals_stored(conn: sqlite3.Connection) -> Totals:
    """The counters as the writer left them (without what ``read`` adds above the marks)."""
    row = conn.execute(
        "SELECT clicks, conversions, inbound, rejected, postbacks FROM totals"
    ).fetchone()
    return Totals(*row)
