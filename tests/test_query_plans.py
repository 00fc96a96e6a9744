"""Every read path uses an index: each query of the read model runs on a database filled
through the real listener, every statement it executes is captured and explained, and a full
scan of a table that grows with traffic fails the test. The one scan allowed is a newest-first
page with no filter (``FROM t ORDER BY id DESC LIMIT n``), which stops after its n rows.

The plans are SQLite's own, without ANALYZE statistics, as in a real postwatch database (it
never runs ANALYZE)."""

from __future__ import annotations

import inspect
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from store import db, events, totals
from store.read import queries
from store.read.filters import ALL, DELIVERY_SHOWS, INBOUND_SHOWS, ListFilter
from store.schema import STORED
from tests.helpers import Listener
from tui import sources

GROWING = frozenset(
    {
        "clicks",
        "inbound",
        "conversions",
        "conversion_events",
        "decisions",
        "deliveries",
        "sink_records",
        *STORED.values(),
    }
)
# A view's plan names the table it reads: the stored table -> the view's name in the SQL.
VIEW_OF = {stored: view for view, stored in STORED.items()}
NOT_ALIASES = frozenset({"where", "order", "join", "on", "group", "limit", "left", "inner"})

Read = Callable[[sqlite3.Connection], Any]


def aliases(sql: str) -> dict[str, str]:
    """Names a plan may give a table (itself or its alias) -> the table."""
    names: dict[str, str] = {}
    for table, alias in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?", sql, re.I):
        names[table.lower()] = table.lower()
        if alias and alias.lower() not in NOT_ALIASES:
            names[alias.lower()] = table.lower()
    return names


def newest_first_page(sql: str, table: str) -> bool:
    """A page that reads the newest rows of ``table`` by id, with no filter: its scan stops
    after LIMIT rows."""
    pattern = rf"\bFROM\s+{table}(?:\s+\w+)?\s+ORDER BY\s+(?:\w+\.)?id DESC\s+LIMIT\b"
    return re.search(pattern, sql, re.I) is not None


def full_scans(conn: sqlite3.Connection, sql: str) -> list[str]:
    """The plan lines of ``sql`` that scan a growing table from end to end."""
    names = aliases(sql)
    found = []
    for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"):
        detail = str(row[3])
        match = re.match(r"SCAN (\w+)", detail)
        if match is None:
            continue
        table = names.get(match.group(1).lower(), match.group(1).lower())
        if table in GROWING and not newest_first_page(sql, VIEW_OF.get(table, table)):
            found.append(detail)
    return found


def executed(conn: sqlite3.Connection, read: Read) -> list[str]:
    """Every statement ``read`` runs, with its values bound."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        read(conn)
    finally:
        conn.set_trace_callback(None)
    return [
        sql
        for sql in statements
        if not sql.lstrip().upper().startswith(("PRAGMA", "BEGIN", "COMMIT", "--"))
    ]


@pytest.fixture
async def filled(pw: Listener) -> dict[str, Any]:
    """A database with every kind of row: clicks with and without external ids, accepted,
    updated and rejected postbacks, decisions, delivered attempts and sink records."""
    ids: dict[str, Any] = {"db": pw.store.path}
    click = await pw.click(ref_id="ext-1")
    await pw.postback(clickid=click, type="Deposit", status="pending", sum="10", txid="tx-1")
    await pw.postback(clickid=click, type="Deposit", status="approved", sum="10", txid="tx-1")
    await pw.postback(clickid="nobody", type="Deposit")
    await pw.postback(type="Deposit")
    await pw.click()
    await pw.delivered(click)
    trace = await pw.trace(click)
    ids["click"] = click
    ids["conversion"] = trace["conversions"][0]["id"]
    ids["delivery"] = trace["conversions"][0]["decisions"][0]["deliveries"][0]["id"]
    return ids


@pytest.fixture
def conn(filled: dict[str, Any]) -> Iterator[sqlite3.Connection]:
    connection = db.connect(filled["db"])
    yield connection
    connection.close()


def read_paths(ids: dict[str, Any]) -> dict[str, Read]:
    """Every query of the read model (store/read/queries.py), the header totals, the
    dashboard's sources and the writer's look-ups, with the arguments the product passes."""
    click, conversion, delivery = ids["click"], ids["conversion"], ids["delivery"]
    page = ListFilter(limit=50)
    paths: dict[str, Read] = {
        "trace by click id": lambda c: queries.trace(c, click),
        "trace by external id": lambda c: queries.trace(c, "ext-1"),
        "trace by txid": lambda c: queries.trace(c, "tx-1"),
        "trace by unknown id": lambda c: queries.trace(c, "nobody"),
        "find click id": lambda c: queries.find_click_id(c, "nobody"),
        "conversions": lambda c: queries.conversions(c, page),
        "conversions before": lambda c: queries.conversions(c, page.page(before=conversion + 1)),
        "inbound": lambda c: queries.inbound(c, page),
        "inbound before": lambda c: queries.inbound(c, page.page(before=3)),
        "inbound by id": lambda c: queries.inbound_by_id(c, [1, 2]),
        "sink records": lambda c: queries.sink_records(c, "propeller"),
        "header totals": totals.read,
        "conversions page": lambda c: queries.conversion_row_page(c, page),
        "conversions page before": lambda c: queries.conversion_row_page(
            c, ALL.page(before=conversion + 1)
        ),
        "conversions page after": lambda c: queries.conversion_row_page(c, ALL.page(after=0)),
        "conversions by id": lambda c: queries.conversion_rows(c, [conversion]),
        "conversion detail": lambda c: queries.conversion_detail(c, conversion),
        "deliveries page": lambda c: queries.attempt_row_page(c),
        "deliveries by id": lambda c: queries.attempt_rows(c, [delivery]),
        "page ids": lambda c: queries.page_ids(c, "deliveries"),
        "seen types": queries.seen_types,
        "recent conversions": lambda c: queries.recent_conversions(c, 1),
        "campaign key": lambda c: queries.campaign_key(c, "sample"),
        "first campaign key": queries.first_campaign_key,
        "latest event id": queries.latest_event_id,
        "conversions updated": lambda c: queries.conversions_updated(c, 0, [conversion]),
        "find conversion by txid": lambda c: events.find_conversion(
            c, click, txid="tx-1", type_=None
        ),
        "find conversion by type": lambda c: events.find_conversion(
            c, click, txid=None, type_="Deposit"
        ),
        "last fired at": lambda c: events.last_fired_at(c, conversion, 1),
        "get click": lambda c: events.get_click(c, click),
        "outbox": lambda c: events.pending_attempts(c),
        "outbox page": lambda c: events.due_attempts(c, until=1e12, after=(0.0, 0)),
        "attempt outcome": lambda c: events.attempt_outcome(c, delivery),
        "load attempt": lambda c: events.load_attempt(c, delivery),
        "live: conversions touched": lambda c: touched(c, conversion),
    }
    for show, chosen in INBOUND_SHOWS.items():
        paths[f"inbound page: {show}"] = lambda c, f=chosen: queries.inbound(c, f)
        paths[f"inbound page: {show}, before"] = lambda c, f=chosen: queries.inbound(
            c, f.page(before=4)
        )
        paths[f"inbound page: {show}, after"] = lambda c, f=chosen: queries.inbound(
            c, f.page(after=1)
        )
        paths[f"new inbound: {show}"] = lambda c, f=chosen: queries.count_newer(c, "inbound", 1, f)
    for show, chosen in DELIVERY_SHOWS.items():
        paths[f"deliveries page: {show}"] = lambda c, f=chosen: queries.attempt_row_page(c, f)
        paths[f"deliveries page: {show}, before"] = lambda c, f=chosen: queries.attempt_row_page(
            c, f.page(before=delivery + 1)
        )
        paths[f"new deliveries: {show}"] = lambda c, f=chosen: queries.count_newer(
            c, "deliveries", 0, f
        )
    paths["new conversions"] = lambda c: queries.count_newer(c, "conversions", 0)
    return paths


def touched(conn: sqlite3.Connection, conversion: int) -> set[int]:
    """The live table's check for conversions updated by a new event."""
    source = sources.Conversions()
    source.touched(conn, [conversion])
    source._last_event = 0  # as after one poll: events above it are new
    return source.touched(conn, [conversion])


PATH_NAMES = sorted(read_paths({"click": "", "conversion": 0, "delivery": 0}))


@pytest.mark.parametrize("name", PATH_NAMES)
async def test_read_path_uses_an_index(
    name: str, filled: dict[str, Any], conn: sqlite3.Connection
) -> None:
    statements = executed(conn, read_paths(filled)[name])
    assert statements, f"{name} ran no statement: the test no longer covers it"
    scans = {sql: full_scans(conn, sql) for sql in statements}
    assert not {sql: lines for sql, lines in scans.items() if lines}


def test_every_query_of_the_read_model_is_covered() -> None:
    """A query added to store/read/queries.py without a path here fails this test."""
    public = {
        name
        for name, value in vars(queries).items()
        if inspect.isfunction(value)
        and value.__module__ == queries.__name__
        and not name.startswith("_")
    }
    source = inspect.getsource(read_paths)
    assert {name for name in public if f"queries.{name}" not in source} == set()


def test_the_check_sees_a_full_scan(tmp_path: Path) -> None:
    """The checker itself: a filter with no index, and an aliased table, are caught; a
    newest-first page is not."""
    connection = db.connect(tmp_path / "check.db")
    from store.schema import migrate

    migrate(connection)
    assert full_scans(connection, "SELECT * FROM inbound WHERE body = 'x'")
    assert full_scans(connection, "SELECT * FROM deliveries d WHERE d.url = 'x'")
    assert full_scans(connection, "SELECT id FROM clicks WHERE external_id = 'x'")
    assert full_scans(connection, "SELECT * FROM decisions k WHERE k.kind = 'x'")  # a view
    assert not full_scans(connection, "SELECT * FROM inbound ORDER BY id DESC LIMIT 5")
    connection.close()
