"""Every read path uses an index: each query of the read model runs on a database filled
through the real listener, every statement it executes is captured and explained, and a full
scan of a table that grows with traffic fails the test. The one scan allowed is a newest-first
page with no filter (``FROM t ORDER BY id DESC LIMIT n``), which stops after its n rows, and
in a statement marked ``WALK`` (a list filtered by the rows its rows belong to, checked on each
row of a newest-first walk by primary key, see store/read/filters.py) the walk of that list's
own table, and only without a sort: it stops after LIMIT matches.

The plans are SQLite's own, without ANALYZE statistics, as in a real postwatch database (it
never runs ANALYZE)."""

from __future__ import annotations

import inspect
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from listener import reevaluate
from listener.reevaluate import MOST_VALUES, Selection
from store import db, events, totals, workspace
from store.config import parse
from store.read import queries
from store.read.filters import (
    ALL,
    DELIVERY_SHOWS,
    INBOUND_SHOWS,
    ListFilter,
    id_page,
)
from store.records import Click
from tests.helpers import ATTACH_CONFIG, BASE_CONFIG, Listener
from tests.plans import Read, executed, full_scans
from tui.screens.live import Conversions
from tui.sources import COUNT_CAP


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
    await pw.configure(ATTACH_CONFIG)
    for status in ("pending", "approved"):  # attached, then found among the attached clicks
        await pw.postback(clickid="net-1", type="Deposit", status=status, txid="tx-2")
    await pw.postback(clickid="net-1", type="Deposit", sum="oops")  # refused, names it
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


def clicked(conn: sqlite3.Connection, click_id: str) -> Click:
    click = events.get_click(conn, click_id)
    assert click is not None
    return click


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
        "trace by attached click id": lambda c: queries.trace(c, "net-1"),
        "trace by attached click's txid": lambda c: queries.trace(c, "tx-2"),
        "find click id": lambda c: queries.find_click_id(c, "nobody"),
        "conversions": lambda c: queries.conversions(c, page),
        "conversions before": lambda c: queries.conversions(c, page.page(before=conversion + 1)),
        "inbound": lambda c: queries.inbound(c, page),
        "inbound before": lambda c: queries.inbound(c, page.page(before=3)),
        "inbound by id": lambda c: queries.inbound_by_id(c, [1, 2]),
        "replays of requests": lambda c: queries.replays_of(c, [1, 2]),
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
        "click params": lambda c: queries.click_params(c, 1),
        "campaign key": lambda c: queries.campaign_key(c, "sample"),
        "first campaign key": queries.first_campaign_key,
        "latest event id": queries.latest_event_id,
        "conversions updated": lambda c: queries.conversions_updated(c, 0, [conversion]),
        "find conversion by txid": lambda c: events.find_conversion(
            c, clicked(c, click), txid="tx-1", type_=None
        ),
        "find conversion by type": lambda c: events.find_conversion(
            c, clicked(c, click), txid=None, type_="Deposit"
        ),
        "last fired at": lambda c: events.last_fired_at(c, conversion, 1),
        "get click": lambda c: events.get_click(c, click),
        "get attached click": lambda c: events.get_click(c, "net-1"),
        "clicks by id": lambda c: events.clicks_by_id(c, [click, "net-1"]),
        "outbox": lambda c: events.pending_attempts(c),
        "outbox page": lambda c: events.due_attempts(c, until=1e12, after=(0.0, 0)),
        "attempt outcome": lambda c: events.attempt_outcome(c, delivery),
        "load attempt": lambda c: events.load_attempt(c, delivery),
        "live: conversions touched": lambda c: touched(c, conversion),
        "postback names": queries.postback_names,
        "changes page": lambda c: queries.change_rows(
            c, queries.page_ids(c, "conversion_events", page)
        ),
        "changes touched": lambda c: queries.changes_touched(c, 0, [1, 2]),
        "delivery alerts": lambda c: queries.delivery_alerts(c, 0),
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
    for table in LISTS:
        paths[f"{table}: the oldest page"] = lambda c, t=table: queries.page_ids(
            c, t, replace(ALL, oldest=True)
        )
        paths[f"{table}: counted"] = lambda c, t=table: queries.count_up_to(
            c, t, ALL, COUNT_CAP + 1
        )
        paths[f"{table}: newest id"] = lambda c, t=table: queries.newest_id(c, t)
    for name, chosen in FILTERS.items():
        for table in lists_of(chosen):
            paths[f"{table} filtered: {name}"] = lambda c, t=table, f=chosen: queries.page_ids(
                c, t, f
            )
            paths[f"{table} filtered: {name}, before"] = lambda c, t=table, f=chosen: (
                queries.page_ids(c, t, f.page(before=5))
            )
            paths[f"new {table} filtered: {name}"] = lambda c, t=table, f=chosen: (
                queries.count_newer(c, t, 1, f)
            )
            paths[f"{table} filtered: {name}, oldest"] = lambda c, t=table, f=chosen: (
                queries.page_ids(c, t, replace(f, oldest=True))
            )
            paths[f"{table} filtered: {name}, counted"] = lambda c, t=table, f=chosen: (
                queries.count_up_to(c, t, f, COUNT_CAP + 1)
            )
            paths[f"{table} filtered: {name}, new counted"] = lambda c, t=table, f=chosen: (
                queries.count_up_to(c, t, f.page(after=1), COUNT_CAP + 1)
            )
    paths["api deliveries filtered"] = lambda c: queries.attempt_row_page(
        c, ListFilter(campaign="casino-fr", outcome="delivered")
    )
    paths["resolve campaign and traffic source"] = lambda c: queries.resolve(
        c, ListFilter(campaign="Casino FR", traffic_source="Propeller")
    )
    paths["click matches by txid"] = lambda c: queries.click_matches(c, "tx-1")
    paths["conversion values"] = lambda c: queries.conversion_values(c, [conversion])
    paths["decisions of conversions"] = lambda c: queries.decision_rows(
        c, [conversion], ListFilter(verdict="fired", postback="all events")
    )
    return paths


# The lists: the API's, and the conversion events of Live's recent changes.
LISTS = ("conversions", "inbound", "deliveries", "conversion_events")


def lists_of(chosen: ListFilter) -> list[str]:
    """The lists that take the filter (an endpoint is an inbound request's; a conversion
    event has no outcome)."""
    return [
        table
        for table in LISTS
        if (chosen.endpoint is None or table == "inbound")
        and (chosen.outcome is None or table != "conversion_events")
    ]


# One filter of each field, and combinations, as the API and the dashboard pass them.
FILTERS: dict[str, ListFilter] = {
    "campaign": ListFilter(campaign="casino-fr"),
    "campaign by name": ListFilter(campaign="Casino FR"),
    "traffic source": ListFilter(traffic_source="Propeller"),
    "two campaigns (a traffic source's)": ListFilter(campaign_ids=(1, 2)),
    "two campaigns and a type": ListFilter(campaign_ids=(1, 2), type="Lead"),
    "type": ListFilter(type="Deposit"),
    "status": ListFilter(status="approved"),
    "verdict": ListFilter(verdict="filtered"),
    "postback": ListFilter(postback="paid deposits"),
    "postback and verdict": ListFilter(postback="paid deposits", verdict="fired"),
    "outcome": ListFilter(outcome="delivered"),
    "outcome failed": ListFilter(outcome="failed"),
    "since": ListFilter(since=0),
    "until": ListFilter(until=2e9),
    "since and until": ListFilter(since=0, until=2e9),
    "q id": ListFilter(q="1"),
    "q text": ListFilter(q="ext-1"),
    "type, status and campaign": ListFilter(
        type="Deposit", status="approved", campaign="casino-fr"
    ),
    "verdict and type": ListFilter(verdict="fired", type="Deposit", since=0),
    "everything": ListFilter(
        campaign="casino-fr",
        traffic_source="Propeller",
        type="Deposit",
        status="approved",
        verdict="fired",
        postback="all events",
        q="tx-1",
        since=0,
        until=2e9,
    ),
}


def touched(conn: sqlite3.Connection, conversion: int) -> set[int]:
    """The live table's check for conversions updated by a new event."""
    source = Conversions()
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


REEVALUATIONS = {
    "a campaign": Selection(campaign="casino-fr"),
    "ids": Selection(ids=(1, 2)),
    "since": Selection(since=0),
    "a time range": Selection(since=0, until=2e9),
}


@pytest.mark.parametrize("most_values", [MOST_VALUES, 0], ids=["verdicts first", "every one"])
@pytest.mark.parametrize("name", sorted(REEVALUATIONS))
async def test_a_reevaluation_reads_on_indexes(
    name: str, most_values: int, filled: dict[str, Any], conn: sqlite3.Connection
) -> None:
    """A re-evaluation's reads, with the verdicts worked out first (its pages join their
    temporary table) or reading every conversion, under rules that flip decisions both ways
    (so that it reads the clicks, deliveries and reasons of what flips too)."""
    rules = BASE_CONFIG.replace('statuses = ["approved"]', 'statuses = ["declined"]')
    rules += '[[campaigns.postbacks]]\nname = "added"\n'
    workspace.apply_workspace(conn, parse(rules.replace("PORT", "9")))
    chosen = REEVALUATIONS[name]

    def planned(c: sqlite3.Connection) -> Any:
        return reevaluate.plan(c, chosen, time.time(), fire=True, most_values=most_values)

    statements = executed(conn, planned)
    assert planned(conn)[1], "no decision flips: the test no longer reads what flips"
    reads = [sql for sql in statements if sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert any("expected_verdicts" in sql for sql in reads) == (most_values > 0)
    with events.expected_verdicts(conn, ()):  # the temporary table the pages joined
        scans = {sql: full_scans(conn, sql) for sql in reads}
    assert not {sql: lines for sql, lines in scans.items() if lines}


# Filters whose page is a bounded or materialized set of ids, sorted: q (exact ids and the
# Q_SCAN newest rows) and, on conversions, an attempt outcome (see store/read/filters.py).
SORTED = {("conversions", "outcome failed")}
WALKED_IN_ORDER = [
    (table, name)
    for name, chosen in sorted(FILTERS.items())
    for table in lists_of(chosen)
    if chosen.q is None and (table, name) not in SORTED
]


@pytest.mark.parametrize(("table", "name"), WALKED_IN_ORDER)
async def test_a_filtered_page_is_walked_in_id_order_not_sorted(
    table: str, name: str, conn: sqlite3.Connection
) -> None:
    """Every filtered page reads its rows newest first (or, the oldest page, oldest first)
    from an index (or the table) and stops at its limit: no sort of every matching row."""
    for chosen in (FILTERS[name], replace(FILTERS[name], oldest=True)):
        sql, values = id_page(table, queries.resolve(conn, chosen))
        plan = [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", values)]
        assert not [line for line in plan if "FOR ORDER BY" in line], plan


# A database as schema step 11 left it: the filter indexes of steps 6 and 9 (frozen history)
# instead of step 12's, requests indexed by click id, clicks keyed by their id (not their
# sequence number), and no index of replays.
SINCE_STEP_11 = (  # the indexes steps 12, 13, 15 and 16 made
    "conversions_approved",
    "conversions_pending",
    "conversions_declined",
    "conversions_other",
    "decisions_filtered",
    "decisions_skipped",
    "inbound_clicks",
    "inbound_postbacks",
    "inbound_rejected",
    "inbound_unlinked",
    "conversions_click_seq",
    "inbound_replays",
)
STEP_11_SHAPE = """
    DROP TRIGGER conversions_click_seq;
    DROP INDEX conversions_click_seq;
    ALTER TABLE conversions DROP COLUMN click_seq;
    CREATE INDEX conversions_click ON conversions(click_id);
    CREATE TABLE clicks_by_id (
        id          TEXT PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        external_id TEXT NOT NULL DEFAULT '',
        params      TEXT NOT NULL DEFAULT '{}',
        created_at  REAL NOT NULL,
        inbound_id  INTEGER
    );
    INSERT INTO clicks_by_id SELECT id, campaign_id, external_id, params, created_at, inbound_id
        FROM clicks ORDER BY seq;
    DROP TABLE clicks;
    ALTER TABLE clicks_by_id RENAME TO clicks;
    CREATE INDEX clicks_external_id ON clicks(external_id) WHERE external_id != '';
    UPDATE inbound_rows SET click_id = (SELECT click_id FROM conversions WHERE id = conversion_id)
        WHERE click_id IS NULL AND conversion_id IS NOT NULL;
    CREATE INDEX inbound_click ON inbound_rows(click_id);
    CREATE INDEX inbound_outcome ON inbound_rows(outcome, id);
    CREATE INDEX inbound_endpoint ON inbound_rows(endpoint, id);
    CREATE INDEX conversions_status ON conversions(status, id);
    CREATE INDEX conversions_created ON conversions(created_at);
    CREATE INDEX decisions_verdict ON decision_rows(verdict, conversion_id);
    CREATE INDEX inbound_received ON inbound_rows(received_at);
"""


def pages(conn: sqlite3.Connection) -> dict[tuple[str, str], list[int]]:
    """Every filtered page's ids, of each list."""
    return {
        (table, name): queries.page_ids(conn, table, chosen)
        for name, chosen in FILTERS.items()
        for table in lists_of(chosen)
    }


async def test_a_database_migrated_from_step_11_keeps_every_read_on_an_index(
    filled: dict[str, Any], tmp_path: Path
) -> None:
    """A database of step 11's shape, filled and then migrated: the same rows in every
    filtered page, and every read path on an index, as on a database made by this version."""
    from store.schema import migrate

    old = db.connect(tmp_path / "step-11.db")
    source = db.connect(filled["db"])
    source.backup(old)
    before = pages(source)  # as this version reads them
    source.close()
    old.executescript(
        "BEGIN;"
        + "".join(f"DROP INDEX {name};" for name in SINCE_STEP_11 if "seq" not in name)
        + STEP_11_SHAPE
        + "PRAGMA user_version = 11; COMMIT;"
    )
    assert any(before.values())
    assert migrate(old) == 11
    names = {row[0] for row in old.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert set(SINCE_STEP_11) <= names
    assert not names & {
        "conversions_created",
        "inbound_received",
        "decisions_verdict",
        "inbound_click",
        "conversions_click",
    }
    assert pages(old) == before
    for name, read in read_paths({**filled, "db": tmp_path / "step-11.db"}).items():
        statements = executed(old, read)
        assert statements, name
        scans = {sql: full_scans(old, sql) for sql in statements}
        assert not {sql: lines for sql, lines in scans.items() if lines}, name
    old.close()


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


def test_the_check_takes_a_partial_index_for_its_rows_only(tmp_path: Path) -> None:
    """Reading a partial index from end to end reads the filter's rows only (schema step
    12); reading the table for the other rows is still a full scan."""
    connection = db.connect(tmp_path / "check.db")
    from store.schema import migrate

    migrate(connection)
    approved = "SELECT id FROM conversions WHERE status = 'approved' ORDER BY id DESC LIMIT 5"
    plan = [str(row[3]) for row in connection.execute(f"EXPLAIN QUERY PLAN {approved}")]
    assert len(plan) == 1 and plan[0].endswith("INDEX conversions_approved"), plan
    assert not full_scans(connection, approved)
    assert full_scans(connection, "SELECT id FROM conversions WHERE status != 'approved'")
    connection.close()
