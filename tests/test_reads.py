"""The read model: typed records with Unix times, ISO 8601 only in the JSON, rows read in
batches (the number of statements does not grow with the rows), and one filter object for
every list."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store import db, reads
from store.read import queries
from store.read.filters import ALL, INBOUND_SHOWS, ListFilter
from store.read.model import AttemptRow, ConversionRow, DeliveryAlerts, Trace
from tests.helpers import BASE_CONFIG, Listener

PLATFORM = (
    BASE_CONFIG
    + """
[[campaigns.postbacks]]
name = "meta"
kind = "facebook"
pixel_id = "123"
access_token = ""
"""
)


def statements(conn: sqlite3.Connection, read: Callable[[sqlite3.Connection], Any]) -> int:
    """How many statements ``read`` runs."""
    ran: list[str] = []
    conn.set_trace_callback(ran.append)
    try:
        read(conn)
    finally:
        conn.set_trace_callback(None)
    return len(ran)


@pytest.fixture
def conn(pw: Listener) -> Iterator[sqlite3.Connection]:
    connection = db.connect(pw.store.path)
    yield connection
    connection.close()


async def conversions(pw: Listener, clickid: str, count: int, first: int = 0) -> None:
    for n in range(first, first + count):
        await pw.postback(clickid=clickid, type="Deposit", status="2", sum="5", txid=f"T{n}")


async def test_lists_and_traces_read_in_batches_not_a_query_per_row(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    clickid = await pw.click(ref_id="ext-1")
    await conversions(pw, clickid, 1)
    await pw.delivered(clickid)
    reads_of: dict[str, Callable[[sqlite3.Connection], Any]] = {
        "conversions": lambda c: queries.conversions(c, ALL),
        "live rows": lambda c: queries.conversion_row_page(c, ALL),
        "deliveries rows": lambda c: queries.attempt_row_page(c, ALL),
        "inbound": lambda c: queries.inbound(c, ALL),
        "trace": lambda c: queries.trace(c, clickid),
    }
    few = {name: statements(conn, read) for name, read in reads_of.items()}
    await conversions(pw, clickid, 6, first=1)
    await pw.delivered(clickid)
    assert len(queries.trace(conn, clickid).conversions) == 7
    many = {name: statements(conn, read) for name, read in reads_of.items()}
    assert many == few


async def test_records_hold_unix_times_and_the_json_iso_times(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    clickid = await pw.click(ref_id="ext-1")
    await conversions(pw, clickid, 1)
    await pw.delivered(clickid)
    found = queries.trace(conn, clickid)
    assert found.click is not None and isinstance(found.click.created_at, float)
    conversion = found.conversions[0]
    attempt = conversion.decisions[0].deliveries[0]
    assert conversion.history is not None and isinstance(conversion.history[0].at, float)
    assert isinstance(attempt.sent_at, float)
    shown = reads.as_json(found)
    assert shown["click"]["created_at"] == reads.iso(found.click.created_at)
    assert shown["click"]["created_at"].endswith("Z")
    assert shown == await pw.trace(clickid)


async def test_a_trace_read_back_from_its_json_is_the_same_trace(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    await pw.configure(PLATFORM)
    clickid = await pw.click(ref_id="ext-1", fbclid="fb.1")
    await conversions(pw, clickid, 2)
    await pw.delivered(clickid)
    found = queries.trace(conn, clickid)
    meta = [d for c in found.conversions for d in c.decisions if d.postback == "meta"]
    assert meta and meta[0].request is not None  # built, not sent: no access token
    data = reads.as_json(found)
    again = reads.trace_from_json(data)
    assert isinstance(again, Trace)
    assert reads.as_json(again) == data


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_iso_times_read_back_to_the_same_millisecond(ms: int) -> None:
    at = ms / 1000
    assert reads.iso(at) == reads.iso(reads.unix(reads.iso(at)))


def test_a_list_filter_combines_its_fields_and_pages() -> None:
    chosen = ListFilter(outcome="rejected", endpoint="postback", limit=20)
    assert chosen.clauses("inbound") == (["outcome = ?", "endpoint = ?"], ["rejected", "postback"])
    moved = chosen.page(before=40)
    assert (moved.outcome, moved.endpoint, moved.limit, moved.before) == (
        "rejected",
        "postback",
        20,
        40,
    )
    with pytest.raises(ValueError, match="the endpoint filter applies to inbound, not deliveries"):
        ListFilter(endpoint="click").clauses("deliveries")
    with pytest.raises(ValueError, match="no list is read from the table 'clicks'"):
        ALL.clauses("clicks")


async def test_the_inbound_filters_choose_their_rows(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Lead")
    await pw.postback(clickid="nobody", type="Lead")
    shown = {
        show: [(r.endpoint, r.outcome) for r in queries.inbound(conn, chosen)]
        for show, chosen in INBOUND_SHOWS.items()
    }
    assert shown == {
        "all": [("postback", "rejected"), ("postback", "accepted"), ("click", "accepted")],
        "rejected": [("postback", "rejected")],
        "accepted": [("postback", "accepted"), ("click", "accepted")],
        "postbacks": [("postback", "rejected"), ("postback", "accepted")],
        "clicks": [("click", "accepted")],
    }
    newest = queries.inbound(conn, ListFilter(limit=1))[0].id
    assert queries.count_newer(conn, "inbound", newest - 2, INBOUND_SHOWS["rejected"]) == 1
    assert [r.id for r in queries.inbound(conn, ListFilter(before=newest, limit=5))] == [
        newest - 1,
        newest - 2,
    ]


async def test_table_rows_read_as_mappings_of_their_fields(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    clickid = await pw.click(ref_id="ext-1")
    await conversions(pw, clickid, 1)
    await pw.delivered(clickid)
    (row,) = queries.conversion_row_page(conn)
    assert isinstance(row, ConversionRow)
    assert row["click_id"] == row.click_id == clickid
    assert dict(row)["marks"][0]["mark"] == "delivered"
    assert row.settled
    with pytest.raises(KeyError):
        row["nothing"]
    attempt = queries.attempt_row_page(conn)[0]
    assert isinstance(attempt, AttemptRow)
    assert (attempt.postback, attempt.outcome, attempt.click_id) == (
        "all events",
        "delivered",
        clickid,
    )


async def test_the_delivery_alerts_count_failures_whole_or_from_the_last_one_seen(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    await pw.configure(BASE_CONFIG + '\n[[sinks]]\nname = "propeller"\nstatus = 500\n')
    clickid = await pw.click(ref_id="ext-1")
    assert queries.delivery_alerts(conn, 0) == DeliveryAlerts()
    await pw.postback(clickid=clickid, type="Lead", status="approved", txid="T1")

    async def failed() -> bool:
        return queries.delivery_alerts(conn, 0).failed == 1

    await pw.settle(failed)
    first = queries.delivery_alerts(conn, 0)
    assert (first.retrying, first.new_failures) == (0, 1)
    assert first.newest is not None and first.newest.id == first.last_failed_id
    assert (first.newest.postback, first.newest.answer) == ("all events", "HTTP 500")
    # a second conversion fails too: counted from the last failure seen, as in a whole count
    await pw.postback(clickid=clickid, type="Deposit", status="pending", txid="T2")

    async def two() -> bool:
        return queries.delivery_alerts(conn, 0).failed == 2

    await pw.settle(two)
    since = queries.delivery_alerts(conn, first.last_failed_id, first.failed)
    assert since == queries.delivery_alerts(conn, first.last_failed_id)
    assert (since.failed, since.new_failures) == (2, 1)
    assert since.newest is not None and since.newest.id > first.last_failed_id
    assert queries.delivery_alerts(conn, since.last_failed_id).new_failures == 0


async def test_the_delivery_alerts_count_deliveries_waiting_for_a_retry(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    config = BASE_CONFIG.replace("retry_schedule = [0.2, 0.2]", "retry_schedule = [600]")
    await pw.configure(config + '\n[[sinks]]\nname = "propeller"\nstatus = 500\n')
    clickid = await pw.click(ref_id="ext-1")
    await pw.postback(clickid=clickid, type="Lead", status="approved")

    async def retrying() -> bool:
        return queries.delivery_alerts(conn, 0).retrying == 1

    await pw.settle(retrying)  # attempt 2 waits ten minutes
    assert queries.delivery_alerts(conn, 0).failed == 0
