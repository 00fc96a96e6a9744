"""How each screen looks at 80x24 and 120x40, with fixed data and a fixed clock.

The database is filled through the real listener over HTTP (clicks whose ids are then fixed,
postbacks, deliveries to its built-in sink), then every time, duration and port in it is
pinned, so each picture is the same on every run. The dashboard attaches to that database
(no listener, so nothing changes while the picture is taken). Update the pictures with
``pytest --snapshot-update tests/test_tui_snapshots.py`` and look at them before committing.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from store.db import connect
from store.read.model import ChangeRow
from tests.helpers import start_listener, stop_listener
from tui.app import PostwatchApp
from tui.context import DashOptions
from tui.screens.base import DashScreen, TableScreen
from tui.screens.campaigns import CampaignsScreen
from tui.widgets.detail import DetailPane
from tui.widgets.filter_bar import FilterBar
from tui.widgets.rows import RowTable
from tui.widgets.text_line import TextLine

START = 1767225600.0  # 2026-01-01 00:00:00 UTC

CONFIG = """
conversion_types = ["Lead", "Deposit"]

[delivery]
retry_schedule = [60, 300]

[[sinks]]
name = "flaky"
status = 500
body = "error: unknown visitor"

[[offer_sources]]
name = "AffNet"
default_status = "pending"
status_aliases = { "1" = "approved", "2" = "pending", "3" = "declined" }

[[traffic_sources]]
name = "Propeller"
postback_url = "http://127.0.0.1:PORT/sink/propeller?visitor_id={external_id}&payout={payout}"

[[traffic_sources]]
name = "Flaky"
postback_url = "http://127.0.0.1:PORT/sink/flaky?visitor_id={external_id}"

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

[[campaigns]]
key = "slots-de"
name = "Slots DE"
traffic_source = "Flaky"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "all events"
"""

# (campaign, fixed click id, external id)
CLICKS = [
    ("casino-fr", "c0ffee000000000000000001", "ext-101"),
    ("casino-fr", "c0ffee000000000000000002", "ext-102"),
    ("slots-de", "c0ffee000000000000000003", "ext-103"),
    ("casino-fr", "c0ffee000000000000000004", "ext-104"),
    ("casino-fr", "c0ffee000000000000000005", "ext-105"),
]
POSTBACKS: list[dict[str, str]] = [
    {"clickid": CLICKS[0][1], "type": "Lead", "status": "approved", "sum": "0"},
    {"clickid": CLICKS[1][1], "type": "Deposit", "status": "2", "sum": "50", "txid": "T-2001"},
    {"clickid": CLICKS[1][1], "type": "Deposit", "status": "1", "txid": "T-2001"},
    {"clickid": CLICKS[2][1], "type": "Deposit", "status": "3", "sum": "25"},
    {"clickid": CLICKS[3][1], "type": "deposit", "status": "1", "sum": "100"},
    {"clickid": CLICKS[4][1], "type": "Deposit", "status": "1", "sum": "150", "sub": "[b]vip[/]"},
    {"clickid": "nope-1", "type": "Lead"},
    {"clickid": "{clickid}", "type": "Lead"},
    {"clickid": CLICKS[0][1], "sum": "abc"},
]
HEADERS = {"User-Agent": "network/1.0"}


async def _send(db: Path) -> int:
    """Send the clicks and postbacks to a real listener; return its port."""
    pw = await start_listener(db)
    try:
        await pw.configure(CONFIG)
        for campaign, click_id, external_id in CLICKS:
            params = {"ref_id": external_id, "sub1": "fr"}
            async with pw.session.get(
                f"{pw.base}/click/{campaign}", params=params, headers=HEADERS
            ) as response:
                made = (await response.json())["clickid"]

            def rename(conn: sqlite3.Connection, made: str = made, fixed: str = click_id) -> None:
                conn.execute("UPDATE clicks SET id = ? WHERE id = ?", (fixed, made))
                conn.execute("UPDATE inbound SET click_id = ? WHERE click_id = ?", (fixed, made))

            await pw.store.write(rename)
        for params in POSTBACKS:
            async with pw.session.get(f"{pw.base}/postback", params=params, headers=HEADERS):
                pass

        def first_attempts_done(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT count(*) FROM deliveries WHERE outcome = 'pending' AND attempt = 1"
            ).fetchone()
            return bool(row[0] == 0)

        deadline = time.monotonic() + 10
        while not await pw.store.read(first_attempts_done):
            assert time.monotonic() < deadline, "deliveries did not finish"
            await asyncio.sleep(0.02)
        return pw.port
    finally:
        await stop_listener(pw)


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def _pin(conn: sqlite3.Connection, port: int) -> None:
    """Every time from the request order, every duration and port fixed."""
    conn.executescript(
        f"""
        UPDATE inbound SET received_at = {START} + 30 * id;
        UPDATE clicks SET created_at =
            (SELECT received_at FROM inbound WHERE inbound.id = clicks.inbound_id);
        UPDATE conversion_events SET at =
            (SELECT received_at FROM inbound WHERE inbound.id = conversion_events.inbound_id);
        UPDATE conversions SET
            created_at = (SELECT min(at) FROM conversion_events e
                          WHERE e.conversion_id = conversions.id),
            updated_at = (SELECT max(at) FROM conversion_events e
                          WHERE e.conversion_id = conversions.id);
        UPDATE decisions SET at =
            (SELECT at FROM conversion_events e WHERE e.id = decisions.event_id);
        UPDATE deliveries SET
            due_at = (SELECT at FROM decisions d WHERE d.id = deliveries.decision_id)
                + CASE WHEN attempt = 1 THEN 0 ELSE 60 END,
            sent_at = CASE WHEN sent_at IS NULL THEN NULL
                ELSE (SELECT at FROM decisions d WHERE d.id = deliveries.decision_id) + 0.25 END,
            duration_ms = CASE WHEN duration_ms IS NULL THEN NULL ELSE 12.5 END,
            url = replace(url, '127.0.0.1:{port}/', '127.0.0.1:8080/');
        UPDATE traffic_sources SET
            postback_url = replace(postback_url, '127.0.0.1:{port}/', '127.0.0.1:8080/');
        """
    )
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
    for decision in conn.execute("SELECT * FROM decisions").fetchall():
        reasons = json.loads(decision["reasons"])
        if not any(stamp.search(reason) for reason in reasons):
            continue
        (fired_at,) = conn.execute(
            "SELECT max(at) FROM decisions WHERE conversion_id = ? AND postback_config_id = ?"
            " AND verdict = 'fired' AND id < ?",
            (decision["conversion_id"], decision["postback_config_id"], decision["id"]),
        ).fetchone()
        pinned = [stamp.sub(_utc(fired_at), reason) for reason in reasons]
        conn.execute(
            "UPDATE decisions SET reasons = ? WHERE id = ?", (json.dumps(pinned), decision["id"])
        )


def fill(path: Path) -> None:
    """A database with fixed data, made by the real listener."""
    port = asyncio.run(_send(path))
    conn = connect(path)  # autocommit: the pinning runs statement by statement
    _pin(conn, port)
    conn.close()


@pytest.fixture(scope="module")
def fixed_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("snapshots") / "postwatch.db"
    fill(path)
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


def _tracing(any_id: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Trace ``any_id`` as a user does: 5, i, the id, Enter."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, PostwatchApp)
        await _open("5", lambda app: True)(pilot)
        await pilot.press("i", *any_id, "enter")
        await _until(lambda: app.screen.query_one(DetailPane).key == ("trace", any_id, None))
        await pilot.pause()

    return run_before


_trace = _tracing("T-2001")


async def _live_changes(pilot: Pilot[None]) -> None:
    """Live's recent changes: every conversion event, newest first."""
    app = pilot.app
    assert isinstance(app, PostwatchApp)
    await _open("", _detail_shown)(pilot)
    await pilot.press("v")

    def shown(app: PostwatchApp) -> bool:
        rows = app.screen.query_one(RowTable).rows
        return bool(rows) and isinstance(rows[0].data, ChangeRow) and _detail_shown(app)

    await _until(lambda: shown(app))
    await app.wait_ready()
    await pilot.pause()


SCREENS: dict[str, Callable[[Pilot[None]], Awaitable[None]]] = {
    "live": _open("", _detail_shown),
    "live-changes": _live_changes,
    "campaigns": _open("2", _what_if_shown),
    "deliveries": _open("3", _detail_shown),
    "inbound": _open("4", _detail_shown),
    "trace": _trace,
}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare: Any, fixed_db: Path, screen: str, size: tuple[int, int]) -> None:
    assert snap_compare(_app(fixed_db), terminal_size=size, run_before=SCREENS[screen])


def _filter(
    typed: str, ready: Callable[[PostwatchApp], bool]
) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Deliveries with ``typed`` entered on the filter bar."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, PostwatchApp)
        await _open("3", _detail_shown)(pilot)
        await pilot.press("slash", *typed, "enter")
        await _until(lambda: ready(app))
        await pilot.pause()

    return run_before


def _refused(app: PostwatchApp) -> bool:
    bar = app.screen.query_one(FilterBar)
    return bar.is_open and "✗" in str(bar.query_one(".filter-said", TextLine).text)


def _filtered(app: PostwatchApp) -> bool:
    screen = app.screen
    return (
        isinstance(screen, TableScreen)
        and bool(screen.live.source.found_text)
        and screen.live.loaded
        and _detail_shown(app)
    )


FILTERED: dict[str, Callable[[Pilot[None]], Awaitable[None]]] = {
    "refused": _filter("outcome=sent", _refused),
    "applied": _filter("campaign=slots-de", _filtered),
}


@pytest.mark.parametrize("view", list(FILTERED))
def test_the_filter_bar(snap_compare: Any, fixed_db: Path, view: str) -> None:
    assert snap_compare(_app(fixed_db), terminal_size=(80, 24), run_before=FILTERED[view])


async def _url_editor(pilot: Pilot[None]) -> None:
    """The Campaigns screen with the URL template of the first config open in the editor."""
    app = pilot.app
    assert isinstance(app, PostwatchApp)
    await _open("2", _what_if_shown)(pilot)
    await pilot.press("l")
    screen = app.screen
    assert isinstance(screen, CampaignsScreen)
    await _until(lambda: "{sub1}" in screen.bar.help_shown.plain)  # the clicks' parameters
    screen.bar.line.cursor_blink = False  # a blinking cursor would be drawn either way
    await pilot.pause()


def test_url_editor(snap_compare: Any, fixed_db: Path) -> None:
    assert snap_compare(_app(fixed_db), terminal_size=(80, 24), run_before=_url_editor)


def test_empty_database_shows_how_to_start(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the screen names the database file: keep it short and fixed
    path = Path("postwatch.db")

    async def configure() -> None:
        pw = await start_listener(path)
        await pw.configure(CONFIG)
        await stop_listener(pw)

    asyncio.run(configure())

    def ready(app: PostwatchApp) -> bool:
        return "No conversions yet" in app.screen.query_one(DetailPane).plain

    assert snap_compare(_app(path), terminal_size=(80, 24), run_before=_open("", ready))


def _form(screen_key: str, key: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Open a screen (by its number key, "" for Live), then the form of ``key`` over it."""

    async def run_before(pilot: Pilot[None]) -> None:
        from tui.widgets.forms import FormScreen

        app = pilot.app
        assert isinstance(app, PostwatchApp)
        await _open(screen_key, _detail_shown)(pilot)
        await pilot.press(key)
        await _until(lambda: isinstance(app.screen, FormScreen))
        for field in app.screen.query("Input, TextArea"):
            field.cursor_blink = False  # type: ignore[attr-defined]  # a blink is no look
        await pilot.pause()

    return run_before


FORMS = {
    "manual": _form("", "m"),  # Live: a conversion by hand for the selected row's click
    "recover": _form("3", "R"),  # Deliveries: recover failed deliveries
    "replay": _form("4", "e"),  # Inbound: edit the request, then replay it
}


@pytest.mark.parametrize("form", list(FORMS))
def test_form(snap_compare: Any, fixed_db: Path, form: str) -> None:
    assert snap_compare(_app(fixed_db), terminal_size=(80, 24), run_before=FORMS[form])


@pytest.fixture(scope="module")
def shared_external_id_db(fixed_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixed data with a second click of external id ext-101, an hour after the first
    (as a traffic source sends when it reuses its ids)."""
    path = tmp_path_factory.mktemp("matches") / "postwatch.db"
    source = sqlite3.connect(fixed_db)
    conn = connect(path)
    source.backup(conn)  # the whole database, its write-ahead log included
    source.close()
    conn.execute(
        "INSERT INTO clicks (id, campaign_id, external_id, params, created_at, inbound_id)"
        " SELECT 'c0ffee000000000000000099', campaign_id, external_id, params,"
        " created_at + 3600, NULL FROM clicks WHERE id = ?",
        (CLICKS[0][1],),
    )
    conn.close()
    return path


def test_trace_lists_the_clicks_an_external_id_matches(
    snap_compare: Any, shared_external_id_db: Path
) -> None:
    assert snap_compare(
        _app(shared_external_id_db), terminal_size=(80, 24), run_before=_tracing("ext-101")
    )


def test_no_color_keeps_states_legible(
    snap_compare: Any, fixed_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Live with the detail of a conversion that has a filtered decision: its "⊘ FILTERED"
    # in a text style rather than a colour Textual would grey to near the background.
    monkeypatch.setenv("NO_COLOR", "1")

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, PostwatchApp)
        await _open("", _detail_shown)(pilot)
        for _ in range(len(CLICKS)):
            if "⊘ FILTERED" in app.screen.query_one(DetailPane).plain:
                break
            await pilot.press("down")
            await _until(lambda: _detail_shown(app))
        assert "⊘ FILTERED" in app.screen.query_one(DetailPane).plain
        await pilot.pause()

    assert snap_compare(_app(fixed_db), terminal_size=(80, 24), run_before=run_before)
