"""Finding rows on the table screens: the filter bar, "row N of M", times and "Export this
view", driven through Pilot with the dashboard's real listener and database."""

from __future__ import annotations

import csv
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Driver, dashboard, until
from tui import format as fmt
from tui.screens.base import TableScreen
from tui.widgets.filter_bar import FilterBar, split_terms
from tui.widgets.live_table import LiveTable
from tui.widgets.text_line import TextLine

# (type, status) of each conversion sent, one click each
SENT = [
    ("Lead", "approved"),
    ("Deposit", "2"),
    ("Deposit", "1"),
    ("Lead", "3"),
    ("Deposit", "1"),
    ("Lead", "1"),
]


async def send(pw: Driver) -> None:
    for number, (kind, status) in enumerate(SENT):
        clickid = await pw.click(ref_id=f"ext-{number}")
        await pw.postback(clickid=clickid, type=kind, status=status, sum="10", txid=f"t-{number}")
    await until(lambda: len(pw.table().rows) == len(SENT))


def ids(pw: Driver, sql: str, *values: object) -> list[int]:
    """Ids the database has for a query (newest first, as the tables show them)."""
    conn = sqlite3.connect(pw.dash.store.path)
    try:
        return [int(row[0]) for row in conn.execute(sql, values)]
    finally:
        conn.close()


def screen(pw: Driver) -> TableScreen:
    shown = pw.app.screen
    assert isinstance(shown, TableScreen)
    return shown


def live(pw: Driver) -> LiveTable:
    return screen(pw).live


def said(pw: Driver) -> str:
    """What the filter bar's second line says."""
    return str(screen(pw).query_one(FilterBar).query_one(".filter-said", TextLine).text)


async def find(pw: Driver, text: str) -> None:
    """Open the filter bar, type ``text`` in place of what it holds, press Enter."""
    await pw.press("slash")
    bar = screen(pw).query_one(FilterBar)
    assert bar.is_open
    bar.input.value = ""
    await pw.pilot.press(*text)
    await pw.press("enter")


async def rows_become(pw: Driver, expected: list[int]) -> None:
    await until(lambda: live(pw).loaded and pw.table().keys == expected)


def test_what_is_typed_becomes_the_api_parameters() -> None:
    assert split_terms("campaign=summer status=approved since=1h deposit-77") == {
        "campaign": "summer",
        "status": "approved",
        "since": "1h",
        "q": "deposit-77",
    }
    # quoted words stay together; a name the filters do not have is text to find
    assert split_terms("postback='all events' visitor_id=abc q=x") == {
        "postback": "all events",
        "q": "visitor_id=abc x",
    }


async def test_a_filter_narrows_live_to_exactly_the_matching_conversions(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        await send(pw)
        everything = pw.table().keys
        await find(pw, "type=Deposit status=approved")
        wanted = ids(
            pw,
            "SELECT id FROM conversions WHERE type = 'Deposit' AND status = 'approved'"
            " ORDER BY id DESC",
        )
        assert len(wanted) == 2
        await rows_become(pw, wanted)
        assert not screen(pw).query_one(FilterBar).is_open
        title = live(pw)._status().plain
        assert "type=Deposit status=approved" in title and "row 1 of 2" in title
        # free text: an id finds its row
        await find(pw, "t-3")
        await rows_become(pw, ids(pw, "SELECT id FROM conversions WHERE txid = 't-3'"))
        # the clear key restores every row
        await pw.press("x")
        await rows_become(pw, everything)
        assert "t-3" not in live(pw)._status().plain
        # a filter that leaves nothing says so, with the key that clears it
        await find(pw, "no-such-id")
        await rows_become(pw, [])
        assert pw.table().placeholder == "No conversions match q=no-such-id (x clears)"
        assert "No conversions yet" not in pw.detail()  # not the getting-started text


async def test_a_bad_value_shows_its_sentence_and_keeps_the_bar_open(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        await send(pw)
        await find(pw, "status=paid")
        await until(lambda: "is not one of" in said(pw))
        assert said(pw) == "✗ status 'paid' is not one of: approved, pending, declined, other"
        assert screen(pw).query_one(FilterBar).is_open
        assert len(pw.table().rows) == len(SENT)  # nothing applied
        # a campaign no one has is named by the database's answer, with the known ones
        await find(pw, "campaign=summer")
        await until(lambda: "summer" in said(pw))
        assert "campaign 'summer' is no campaign's key or name; campaigns: casino-fr" in said(pw)
        assert screen(pw).query_one(FilterBar).is_open
        await pw.press("escape")
        assert not screen(pw).query_one(FilterBar).is_open
        assert len(pw.table().rows) == len(SENT)


async def test_the_bar_combines_with_the_outcome_filter_on_deliveries(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        await send(pw)
        await pw.show("deliveries")
        every = ids(pw, "SELECT id FROM deliveries ORDER BY id DESC")
        await until(lambda: pw.table().keys == every or None)
        await find(pw, "postback='paid deposits'")
        paid = ids(
            pw,
            "SELECT a.id FROM deliveries a JOIN decisions k ON k.id = a.decision_id"
            " WHERE k.postback = 'paid deposits' ORDER BY a.id DESC",
        )
        assert 0 < len(paid) < len(every)
        await rows_become(pw, paid)
        for _ in range(3):  # pending, retrying, delivered
            await pw.press("o")
        delivered = ids(
            pw,
            "SELECT a.id FROM deliveries a JOIN decisions k ON k.id = a.decision_id"
            " WHERE k.postback = 'paid deposits' AND a.outcome = 'delivered' ORDER BY a.id DESC",
        )
        await rows_become(pw, delivered)
        await pw.press("o")  # failed: none
        await rows_become(pw, [])
        placeholder = "No deliveries match outcome=failed postback='paid deposits'"
        assert pw.table().placeholder == f"{placeholder} (x clears, o: the next filter)"
        await until(lambda: any(placeholder in line for line in pw.screen_lines()))
        await pw.press("x")
        await rows_become(pw, ids(pw, "SELECT id FROM deliveries WHERE outcome = 'failed'"))
        assert pw.table().placeholder == "No deliveries match outcome=failed (o: the next filter)"


async def test_inbound_takes_the_endpoint_and_a_request_count(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        await send(pw)
        await pw.show("inbound")
        everything = ids(pw, "SELECT id FROM inbound ORDER BY id DESC")
        await rows_become(pw, everything)
        await until(lambda: live(pw).position() == f"row 1 of {len(everything)}")
        await pw.press("slash")
        assert " outcome= endpoint= postback= " in said(pw)
        await pw.press("escape")
        await find(pw, "endpoint=click")
        clicks = ids(pw, "SELECT id FROM inbound WHERE endpoint = 'click' ORDER BY id DESC")
        await rows_become(pw, clicks)
        await until(lambda: live(pw).position() == f"row 1 of {len(clicks)}")
        await pw.press("down", "down")
        assert live(pw).position() == f"row 3 of {len(clicks)}"
        # a new matching row above: counted, and the cursor's row is one further down
        await pw.click(ref_id="ext-new")
        await until(lambda: live(pw).new_count == 1)
        await until(lambda: live(pw).position() == f"row 4 of {len(clicks) + 1}")
        await pw.postback(clickid="nobody", type="Lead")  # (not a click: not counted)
        await until(lambda: len(ids(pw, "SELECT id FROM inbound")) == len(everything) + 2)
        await pw.press("up")
        assert live(pw).position() == f"row 3 of {len(clicks) + 1}"


async def test_recent_changes_take_the_filters_and_keep_them_apart_from_new_conversions(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        await send(pw)
        # the pending deposit t-1 is approved: an event of its own, on top of recent changes
        _, body = await pw.get("/api/trace/t-1")
        await pw.postback(clickid=body["click"]["id"], type="Deposit", status="1", txid="t-1")
        await pw.press("slash")
        assert " outcome= " in said(pw) and "endpoint=" not in said(pw)
        await pw.press("escape")
        await pw.press("v")
        events = ids(pw, "SELECT id FROM conversion_events ORDER BY id DESC")
        await rows_become(pw, events)
        await pw.press("slash")  # an event has no outcome: the bar does not offer it
        assert said(pw).startswith("campaign= type= status= verdict= postback= traffic_source=")
        await pw.press("escape")
        # the event's own status: the approval is approved, the deposit's first event pending
        await find(pw, "status=approved type=Deposit")
        approvals = ids(
            pw,
            "SELECT id FROM conversion_events WHERE status = 'approved' AND type = 'Deposit'"
            " ORDER BY id DESC",
        )
        assert len(approvals) == 3 and approvals[0] == events[0]
        await rows_become(pw, approvals)
        assert "status=approved type=Deposit" in live(pw)._status().plain
        await until(lambda: live(pw).position() == f"row 1 of {len(approvals)}")
        # a txid finds both events of its conversion; a decision's verdict, that event's
        await find(pw, "t-1")
        both = ids(
            pw,
            "SELECT e.id FROM conversion_events e JOIN conversions c ON c.id = e.conversion_id"
            " WHERE c.txid = 't-1' ORDER BY e.id DESC",
        )
        assert len(both) == 2
        await rows_become(pw, both)
        await find(pw, "t-1 verdict=filtered")
        await rows_become(pw, both[1:])  # pending: "paid deposits" filtered it
        # an attempt's outcome is not an event's: the bar says so and stays open
        await find(pw, "outcome=failed")
        await until(lambda: "not changes" in said(pw))
        assert screen(pw).query_one(FilterBar).is_open
        await pw.press("escape")
        await rows_become(pw, both[1:])
        # new conversions keep their own filters (none), and recent changes theirs
        await pw.press("v")
        await rows_become(pw, ids(pw, "SELECT id FROM conversions ORDER BY id DESC"))
        assert "t-1" not in live(pw)._status().plain
        await pw.press("v")
        await rows_become(pw, both[1:])
        assert "verdict=filtered q=t-1" in live(pw)._status().plain
        await find(pw, "no-such-id")
        await rows_become(pw, [])
        assert pw.table().placeholder == "No changes match q=no-such-id (x clears)"


async def test_a_row_from_yesterday_shows_its_date(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        await send(pw)
        (oldest,) = ids(pw, "SELECT min(id) FROM conversions")
        conn = sqlite3.connect(pw.dash.store.path)
        conn.execute(
            "UPDATE conversions SET created_at = created_at - 86400 WHERE id = ?", (oldest,)
        )
        conn.commit()
        (created,) = conn.execute(
            "SELECT created_at FROM conversions WHERE id = ?", (oldest,)
        ).fetchone()
        conn.close()
        await find(pw, "type=Lead")  # (the rows are read again)
        await until(lambda: oldest in pw.table().keys)
        moment, today = time.gmtime(created), time.gmtime(pw.dash.options.clock())
        shown = time.strftime(
            "%m-%d %H:%M" if moment.tm_year == today.tm_year else "%Y-%m-%d", moment
        )
        drawn = pw.screen_lines()
        assert "time UTC" in drawn[0]
        assert shown in drawn[1 + pw.table().keys.index(oldest)]
        # today's rows show the clock time only
        newest = pw.table().rows[0].data
        assert time.strftime("%H:%M:%S", time.gmtime(newest["created_at"])) in drawn[1]


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local time zone is Asia/Kolkata (UTC+5:30, no summer time)."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
    fmt.TIMES.local = False


@pytest.mark.usefixtures("kolkata")
async def test_local_time_is_an_option_and_z_switches_it(tmp_path: Path) -> None:
    async with dashboard(tmp_path, local_time=True) as pw:
        await send(pw)
        newest = pw.table().rows[0].data
        utc = time.strftime("%H:%M:%S", time.gmtime(newest["created_at"]))
        local = time.strftime("%H:%M:%S", time.localtime(newest["created_at"]))
        assert local != utc
        await until(lambda: "time IST" in pw.screen_lines()[0])
        assert local in pw.screen_lines()[1]
        await until(lambda: " IST (" in pw.detail())
        await pw.press("z")
        await until(lambda: "time UTC" in pw.screen_lines()[0])
        assert utc in pw.screen_lines()[1]
        await until(lambda: " UTC (" in pw.detail() and " IST (" not in pw.detail())
        # every table screen shows the same zone
        await pw.show("inbound")
        await until(lambda: "time UTC" in pw.screen_lines()[0])


async def test_export_writes_the_rows_the_filtered_view_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with dashboard(tmp_path, notifications=True) as pw:
        await send(pw)
        await find(pw, "type=Deposit")
        wanted = ids(pw, "SELECT id FROM conversions WHERE type = 'Deposit' ORDER BY id DESC")
        await rows_become(pw, wanted)
        await pw.press("E")
        (path,) = await until(lambda: list(tmp_path.glob("postwatch-conversions-*.csv")))
        await until(
            lambda: any(
                f"Exported 3 conversions to {path}" in str(toast.render())
                for toast in pw.app.screen.query("Toast")
            )
        )
        with path.open(encoding="utf-8", newline="") as file:
            rows = list(csv.DictReader(file))
        assert [int(row["id"]) for row in rows] == wanted == pw.table().keys
        assert {row["type"] for row in rows} == {"Deposit"}
