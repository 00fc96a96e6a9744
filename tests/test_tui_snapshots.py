"""How each screen looks at 80x24 and 120x40, with fixed data and a fixed clock.

The database is filled through the listener's own writer jobs (clicks, postbacks, delivery
results) with fixed times and click ids, so every figure on screen is the same on every run.
The dashboard attaches to it (no listener, so nothing changes while the picture is taken).
Update the pictures with ``pytest --snapshot-update tests/test_tui_snapshots.py`` and look at
them before committing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from listener.delivery import Result, complete
from listener.pipeline import record_click, record_postback
from store import events, workspace
from store.config import parse
from store.db import connect
from store.records import InboundRequest
from store.schema import migrate
from tui.app import PostwatchApp
from tui.context import DashOptions
from tui.screens.base import DashScreen
from tui.screens.campaigns import CampaignsScreen
from tui.widgets.detail import DetailPane
from tui.widgets.rows import RowTable

START = 1767225600.0  # 2026-01-01 00:00:00 UTC
RETRY_AT = START + 3600

CONFIG = """
conversion_types = ["Lead", "Deposit"]

[delivery]
retry_schedule = [60, 300]

[[offer_sources]]
name = "AffNet"
default_status = "pending"
status_aliases = { "1" = "approved", "2" = "pending", "3" = "declined" }

[[traffic_sources]]
name = "Propeller"
postback_url = "http://127.0.0.1:8080/sink/propeller?visitor_id={external_id}&payout={payout}"

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

[[campaigns.postbacks]]
name = "big payouts"
enabled = false
conditional = true
min_payout = 100
"""

CLICKS = [(f"c0ffee{n:018d}", f"ext-{100 + n}") for n in range(1, 6)]

# (minutes after START, click number, parameters, HTTP status the sink answers)
POSTBACKS: list[tuple[int, int, dict[str, str], int]] = [
    (1, 1, {"type": "Lead", "status": "approved", "sum": "0"}, 200),
    (2, 2, {"type": "Deposit", "status": "2", "sum": "50", "txid": "T-2001"}, 200),
    (3, 2, {"type": "Deposit", "status": "1", "txid": "T-2001"}, 200),
    (4, 3, {"type": "Deposit", "status": "3", "sum": "25"}, 500),
    (5, 4, {"type": "deposit", "status": "1", "sum": "100"}, 200),
    (6, 5, {"type": "Deposit", "status": "1", "sum": "150", "sub": "[b]vip[/]"}, 200),
]
REJECTED = [
    (7, {"clickid": "nope-1", "type": "Lead"}),
    (8, {"clickid": "{clickid}", "type": "Lead"}),
    (9, {"clickid": CLICKS[0][0], "sum": "abc"}),
]


def _request(at: float, path: str, params: dict[str, str]) -> InboundRequest:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return InboundRequest(at, path.split("/")[1], "GET", path, query, "", "127.0.0.1", {})


def _fill(conn: sqlite3.Connection) -> None:
    workspace.apply_workspace(conn, parse(CONFIG))
    for number, (click_id, external_id) in enumerate(CLICKS, start=1):
        params = {"ref_id": external_id, "sub1": "fr"}
        request = _request(START + number, "/click/casino-fr", params)
        answer = record_click(conn, request, params, False, key="casino-fr")
        made = answer.body["clickid"]
        conn.execute("UPDATE clicks SET id = ? WHERE id = ?", (click_id, made))
        conn.execute("UPDATE inbound SET click_id = ? WHERE click_id = ?", (click_id, made))
    for minute, number, values, status in POSTBACKS:
        at = START + 60 * minute
        params = {"clickid": CLICKS[number - 1][0], **values}
        answer = record_postback(conn, _request(at, "/postback", params), params, False)
        for delivery_id, _ in answer.attempts:
            attempt = events.load_attempt(conn, delivery_id)
            assert attempt is not None
            body = "OK" if status == 200 else "error: unknown visitor"
            error = None if status == 200 else "HTTP 500: only a 2xx answer counts as delivered"
            result = Result(at + 0.25, 12.5, status, body, error)
            complete(conn, attempt, result, [60, 300])
    for minute, params in REJECTED:
        at = START + 60 * minute
        record_postback(conn, _request(at, "/postback", params), params, False)
    conn.execute("UPDATE deliveries SET due_at = ? WHERE outcome = 'pending'", (RETRY_AT,))


@pytest.fixture(scope="module")
def fixed_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snapshots") / "postwatch.db"
    conn = connect(path)
    migrate(conn)
    conn.execute("BEGIN")
    _fill(conn)
    conn.execute("COMMIT")
    conn.close()
    return path


def _app(db: Path) -> PostwatchApp:
    options = DashOptions(
        db=db,
        attached=True,
        listener_url="http://127.0.0.1:8080",
        poll_interval=0.05,
        clock=lambda: START + 3600,
    )
    return PostwatchApp(options)


async def _until(check: Callable[[], Any], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("the screen did not settle")
        await asyncio.sleep(0.02)


def _detail_shown(app: PostwatchApp) -> bool:
    screen = app.screen
    if not isinstance(screen, DashScreen):
        return False
    table = screen.query_one(RowTable)
    return table.cursor_key is not None and screen.query_one(DetailPane).key == table.cursor_key


def _open(
    key: str, ready: Callable[[PostwatchApp], bool]
) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, PostwatchApp)
        await _until(lambda: app.current_mode == "live")
        await app.wait_ready()
        if key:
            await pilot.press(key)
            await _until(lambda: app.current_mode != "live")
            await app.wait_ready()
        await _until(lambda: ready(app))
        await pilot.pause()

    return run_before


def _what_if_shown(app: PostwatchApp) -> bool:
    screen = app.screen
    return isinstance(screen, CampaignsScreen) and screen.what_if is not None


async def _trace(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, PostwatchApp)
    await _open("5", lambda app: True)(pilot)
    await pilot.press(*"T-2001", "enter")
    await _until(lambda: app.screen.query_one(DetailPane).key == ("trace", "T-2001"))
    await pilot.pause()


SCREENS: dict[str, Callable[[Pilot[None]], Awaitable[None]]] = {
    "live": _open("", _detail_shown),
    "campaigns": _open("2", _what_if_shown),
    "deliveries": _open("3", _detail_shown),
    "inbound": _open("4", _detail_shown),
    "trace": _trace,
}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare: Any, fixed_db: Path, screen: str, size: tuple[int, int]) -> None:
    assert snap_compare(_app(fixed_db), terminal_size=size, run_before=SCREENS[screen])


def test_empty_database_shows_how_to_start(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the screen names the database file: keep it short and fixed
    path = Path("postwatch.db")
    conn = connect(path)
    migrate(conn)
    conn.execute("BEGIN")
    workspace.apply_workspace(conn, parse(CONFIG))
    conn.execute("COMMIT")
    conn.close()

    def ready(app: PostwatchApp) -> bool:
        return "No conversions yet" in app.screen.query_one(DetailPane).plain

    assert snap_compare(_app(path), terminal_size=(80, 24), run_before=_open("", ready))
