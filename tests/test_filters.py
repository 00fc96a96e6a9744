"""The list filters (docs/support.md) through the real listener and database: each filter of
``GET /api/conversions``, ``/api/deliveries`` and ``/api/inbound`` chooses exactly the rows
that a plain reading of every row says it should, filters combine with AND, and a bad value
is a 400 that names the parameter, the value and what is accepted."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from store import db
from store.read import queries
from store.read.filters import FilterError, ListFilter, from_parameters, parameters, parse_time
from tests.helpers import BASE_CONFIG, Listener, Target, config_for

SECOND_CAMPAIGN = (
    BASE_CONFIG
    + """
[[traffic_sources]]
name = "Taboola"
click_id_param = "tblci"
postback_url = "http://127.0.0.1:PORT/sink/taboola?c={external_id}&s={status}"

[[campaigns]]
key = "sports-de"
name = "Sports DE"
traffic_source = "Taboola"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "approved only"
conditional = true
statuses = ["approved"]
"""
)


@pytest.fixture
async def traffic(pw: Listener) -> dict[str, Any]:
    """Two campaigns on two traffic sources: conversions of several types and statuses,
    an update, fired and filtered decisions, delivered attempts and a rejected postback."""
    await pw.configure(SECOND_CAMPAIGN)
    casino = await pw.click(ref_id="ext-casino", sub1="banner-7")
    sports = await pw.click("sports-de", tblci="ext-sports")
    await pw.postback(clickid=casino, type="Deposit", status="pending", sum="10", txid="TX-A1")
    await pw.postback(clickid=casino, type="Deposit", status="approved", sum="10", txid="TX-A1")
    await pw.postback(clickid=casino, type="Lead", status="pending", txid="TX-A2")
    await pw.postback(clickid=sports, type="Deposit", status="pending", sum="5", txid="TX-B1")
    await pw.postback(clickid=sports, type="Lead", status="approved", txid="TX-B2")
    status, _ = await pw.postback(clickid="nobody-known", type="Lead")
    assert status == 404
    await pw.delivered(casino)
    await pw.delivered(sports)
    return {"casino": casino, "sports": sports}


@pytest.fixture
def conn(pw: Listener, traffic: dict[str, Any]) -> Iterator[sqlite3.Connection]:
    connection = db.connect(pw.store.path)
    yield connection
    connection.close()


# -- a plain reading of every row: what each filter should choose ------------------------------


def every(conn: sqlite3.Connection, sql: str, *values: Any) -> list[sqlite3.Row]:
    return conn.execute(sql, values).fetchall()


def conversion_facts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every conversion with what the filters look at, read row by row."""
    facts = []
    for row in every(
        conn,
        "SELECT c.*, k.key, k.name, t.name AS source, l.external_id, l.params FROM conversions c"
        " JOIN campaigns k ON k.id = c.campaign_id JOIN traffic_sources t"
        " ON t.id = k.traffic_source_id JOIN clicks l ON l.id = c.click_id ORDER BY c.id DESC",
    ):
        decisions = every(conn, "SELECT * FROM decisions WHERE conversion_id = ?", row["id"])
        outcomes = {
            attempt["outcome"]
            for decision in decisions
            for attempt in every(
                conn, "SELECT outcome FROM deliveries WHERE decision_id = ?", decision["id"]
            )
        }
        facts.append(
            {
                "id": row["id"],
                "campaign": {row["key"], row["name"]},
                "traffic_source": row["source"],
                "type": row["type"],
                "status": row["status"],
                "decisions": {(d["postback"], d["verdict"]) for d in decisions},
                "outcomes": outcomes,
                "ids": {row["click_id"], row["txid"], row["external_id"], str(row["id"])},
                "created_at": row["created_at"],
            }
        )
    return facts


def chosen_facts(facts: list[dict[str, Any]], wanted: dict[str, Any]) -> list[int]:
    """The ids of the facts the given filter values choose, in the facts' order."""
    chosen = []
    for fact in facts:
        checks = {
            "campaign": lambda v, f=fact: v in f["campaign"],
            "traffic_source": lambda v, f=fact: v == f["traffic_source"],
            "type": lambda v, f=fact: v == f["type"],
            "status": lambda v, f=fact: v == f["status"],
            "verdict": lambda v, f=fact: any(
                verdict == v and wanted.get("postback", postback) == postback
                for postback, verdict in f["decisions"]
            ),
            "postback": lambda v, f=fact: any(postback == v for postback, _ in f["decisions"]),
            "outcome": lambda v, f=fact: v in f["outcomes"],
            "q": lambda v, f=fact: v in f["ids"],
        }
        if all(checks[name](value) for name, value in wanted.items()):
            chosen.append(fact["id"])
    return chosen


def conversions_where(conn: sqlite3.Connection, **wanted: Any) -> list[int]:
    """The conversion ids, newest first, that the given filter values choose."""
    return chosen_facts(conversion_facts(conn), wanted)


async def listed(pw: Listener, path: str, **params: Any) -> list[dict[str, Any]]:
    status, body = await pw.get(path, limit="1000", **params)
    assert status == 200, body
    assert isinstance(body, list)
    return body


async def ids(pw: Listener, path: str, **params: Any) -> list[int]:
    return [int(row["id"]) for row in await listed(pw, path, **params)]


# -- conversions ----------------------------------------------------------------------------

CONVERSION_FILTERS: list[dict[str, str]] = [
    {"campaign": "casino-fr"},
    {"campaign": "Sports DE"},
    {"traffic_source": "Taboola"},
    {"type": "Lead"},
    {"status": "pending"},
    {"verdict": "filtered"},
    {"verdict": "fired", "postback": "paid deposits"},
    {"postback": "approved only"},
    {"outcome": "delivered"},
    {"q": "TX-A2"},
    {"q": "ext-sports"},
    {"campaign": "casino-fr", "status": "pending"},
    {"traffic_source": "Propeller", "type": "Deposit", "verdict": "fired"},
    {"campaign": "sports-de", "type": "Deposit", "status": "pending"},
]


@pytest.mark.parametrize("params", CONVERSION_FILTERS, ids=str)
async def test_each_conversion_filter_chooses_the_rows_it_names(
    pw: Listener, conn: sqlite3.Connection, params: dict[str, str]
) -> None:
    expected = conversions_where(conn, **params)
    assert expected  # every case chooses some rows, and not all
    assert len(expected) < len(conversion_facts(conn))
    assert await ids(pw, "/api/conversions", **params) == expected
    # the same through the read model
    chosen = ListFilter(limit=1000, **params)  # type: ignore[arg-type]
    assert queries.page_ids(conn, "conversions", chosen) == expected


async def test_the_filters_narrow_the_list_and_combine_with_and(
    pw: Listener, traffic: dict[str, Any]
) -> None:
    everything = await ids(pw, "/api/conversions")
    assert len(everything) == 4
    pending = set(await ids(pw, "/api/conversions", status="pending"))
    casino = set(await ids(pw, "/api/conversions", campaign="casino-fr"))
    both = set(await ids(pw, "/api/conversions", status="pending", campaign="casino-fr"))
    assert both == pending & casino and len(both) == 1
    assert await ids(pw, "/api/conversions", campaign="sports-de", traffic_source="Propeller") == []


async def test_a_free_text_match_finds_a_substring_of_a_parameter(
    pw: Listener, traffic: dict[str, Any]
) -> None:
    """Substrings are matched over the newest rows: part of a txid, of a click parameter,
    of a captured query."""
    (one,) = await ids(pw, "/api/conversions", q="TX-A1")
    assert await ids(pw, "/api/conversions", q="A1") == [one]
    casino = await ids(pw, "/api/conversions", campaign="casino-fr")
    assert len(casino) == 2
    assert await ids(pw, "/api/conversions", q="banner-7") == casino
    rejected = await listed(pw, "/api/inbound", q="nobody-kn")
    assert [row["outcome"] for row in rejected] == ["rejected"]


async def test_since_and_until_take_iso_times_and_unix_seconds(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    facts = sorted(conversion_facts(conn), key=lambda fact: fact["id"])
    middle = facts[2]["created_at"]
    newer = [fact["id"] for fact in reversed(facts) if fact["created_at"] >= middle]
    older = [fact["id"] for fact in reversed(facts) if fact["created_at"] <= middle]
    assert await ids(pw, "/api/conversions", since=repr(middle)) == newer
    assert await ids(pw, "/api/conversions", until=repr(middle)) == older
    assert await ids(pw, "/api/conversions", since=repr(middle), until=repr(middle)) == [
        facts[2]["id"]
    ]
    assert await ids(pw, "/api/conversions", since="2000-01-01") == [f["id"] for f in facts[::-1]]
    assert await ids(pw, "/api/conversions", since="2999-01-01T00:00:00Z") == []
    assert parse_time("since", "2026-01-31T12:00:00Z") == parse_time("since", "1769860800")
    assert parse_time("since", "2026-01-31T13:00:00+01:00") == 1769860800.0


async def test_a_page_of_a_filtered_list_continues_with_before(
    pw: Listener, traffic: dict[str, Any]
) -> None:
    pending = await ids(pw, "/api/conversions", status="pending")
    assert len(pending) == 2
    status, first = await pw.get("/api/conversions", status="pending", limit="1")
    assert status == 200 and [row["id"] for row in first] == pending[:1]
    rest = await ids(pw, "/api/conversions", status="pending", before=str(pending[0]))
    assert rest == pending[1:]


NAMES = {"casino-fr": "Casino FR", "sports-de": "Sports DE"}

# -- deliveries -----------------------------------------------------------------------------


async def test_deliveries_list_every_attempt_newest_first_in_the_trace_shape(
    pw: Listener, traffic: dict[str, Any]
) -> None:
    rows = await listed(pw, "/api/deliveries")
    trace = await pw.trace(traffic["casino"])
    attempts = {
        attempt["id"]: attempt
        for conversion in trace["conversions"]
        for decision in conversion["decisions"]
        for attempt in decision["deliveries"]
    }
    assert [row["id"] for row in rows] == sorted([row["id"] for row in rows], reverse=True) and set(
        attempts
    ) <= {row["id"] for row in rows}
    for row in rows:
        if row["id"] in attempts:
            assert {key: row[key] for key in attempts[row["id"]]} == attempts[row["id"]]
    assert {row["campaign"] for row in rows} == {"casino-fr", "sports-de"}


@pytest.mark.parametrize(
    "params",
    [
        {"campaign": "sports-de"},
        {"traffic_source": "Propeller"},
        {"postback": "paid deposits"},
        {"type": "Lead"},
        {"status": "approved"},
        {"outcome": "delivered"},
        {"verdict": "fired", "campaign": "Casino FR"},
        {"q": "TX-B2"},
    ],
    ids=str,
)
async def test_each_delivery_filter_chooses_the_attempts_it_names(
    pw: Listener, traffic: dict[str, Any], params: dict[str, str]
) -> None:
    everything = await listed(pw, "/api/deliveries")
    facts = {
        "campaign": lambda row, v: v in {row["campaign"], NAMES[row["campaign"]]},
        "traffic_source": lambda row, v: (
            v == {"casino-fr": "Propeller", "sports-de": "Taboola"}[row["campaign"]]
        ),
        "postback": lambda row, v: row["postback"] == v,
        "type": lambda row, v: row["type"] == v,
        "status": lambda row, v: row["status"] == v,
        "outcome": lambda row, v: row["outcome"] == v,
        "verdict": lambda row, v: row["verdict"] == v,
    }
    if "q" in params:  # a txid: the attempts of its conversion (no URL holds it)
        trace = await pw.trace(params["q"])
        named = {
            attempt["id"]
            for conversion in trace["conversions"]
            if conversion["id"] == trace["focus"]
            for decision in conversion["decisions"]
            for attempt in decision["deliveries"]
        }
        expected = [row["id"] for row in everything if row["id"] in named]
    else:
        expected = [
            row["id"]
            for row in everything
            if all(facts[name](row, value) for name, value in params.items())
        ]
    assert expected
    assert await ids(pw, "/api/deliveries", **params) == expected


# -- inbound --------------------------------------------------------------------------------


async def test_the_inbound_list_takes_the_same_filters(
    pw: Listener, traffic: dict[str, Any]
) -> None:
    everything = await listed(pw, "/api/inbound")
    casino, sports = traffic["casino"], traffic["sports"]
    of_casino = [row["id"] for row in everything if row["click_id"] == casino]
    assert len(of_casino) == 4  # the click and three postbacks
    assert await ids(pw, "/api/inbound", campaign="casino-fr") == of_casino
    assert await ids(pw, "/api/inbound", traffic_source="Taboola") == [
        row["id"] for row in everything if row["click_id"] == sports
    ]
    leads = [
        row["id"]
        for row in everything
        if "type=Lead" in row["query"] and row["outcome"] == "accepted"
    ]
    assert await ids(pw, "/api/inbound", type="Lead") == leads
    rejected = [row["id"] for row in everything if row["outcome"] == "rejected"]
    assert await ids(pw, "/api/inbound", outcome="rejected") == rejected
    assert await ids(pw, "/api/inbound", q=sports) == [
        row["id"] for row in everything if row["click_id"] == sports
    ]
    assert await ids(pw, "/api/inbound", q="TX-A2") == [
        row["id"] for row in everything if "TX-A2" in row["query"]
    ]
    assert await ids(pw, "/api/inbound", endpoint="click", campaign="Sports DE") == [
        row["id"] for row in everything if row["path"] == "/click/sports-de"
    ]
    filtered = await ids(pw, "/api/inbound", verdict="filtered", postback="paid deposits")
    assert filtered == [
        row["id"]
        for row in everything
        if row["click_id"] == casino and "status=pending" in row["query"]
    ]


def page_steps(conn: sqlite3.Connection, table: str, chosen: ListFilter) -> tuple[list[int], int]:
    """The ids of a page of ``table`` and how many SQLite instructions reading it ran."""
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(step, 1)
    try:
        return queries.page_ids(conn, table, chosen), steps
    finally:
        conn.set_progress_handler(None, 1)


async def test_a_filter_on_a_text_no_row_holds_reads_no_row_of_the_list(
    pw: Listener, traffic: dict[str, Any]
) -> None:
    """A type, status or postback name that no row holds is answered by one look-up, not a
    walk of every request, attempt or change (at a million requests that walk took 1.8 s); a
    filter whose texts are held but match no row together still walks, and finds none."""
    for n in range(40):
        await pw.postback(clickid=traffic["casino"], type="Deposit", sum="10", txid=f"TX-W{n}")
    held = ListFilter(type="Deposit", status="approved", postback="approved only")
    unheld = [
        ("inbound", ListFilter(type="Chargeback")),
        ("inbound", replace(held, status="declined")),
        ("inbound", replace(held, postback="no such postback")),
        ("conversion_events", ListFilter(type="Chargeback")),
        ("deliveries", ListFilter(postback="no such postback")),
    ]
    with db.connect(pw.store.path) as conn:
        walked: dict[str, int] = {}
        for table in ("inbound", "conversion_events", "deliveries"):
            rows, walked[table] = page_steps(conn, table, held)
            assert rows == [], table
        for table, chosen in unheld:
            rows, looked = page_steps(conn, table, chosen)
            assert (rows, queries.count_newer(conn, table, 0, chosen)) == ([], 0)
            assert looked * 10 < walked[table], f"{table} {chosen}: {looked} steps, a walk's"
        wanted = ListFilter(type="Deposit", postback="paid deposits")
        assert queries.page_ids(conn, "inbound", wanted), "a held text still finds its rows"


# -- bad values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "words"),
    [
        ("/api/conversions", {"status": "paid"}, ["status", "'paid'", "approved, pending"]),
        ("/api/conversions", {"since": "yesterday"}, ["since", "'yesterday'", "ISO 8601"]),
        ("/api/deliveries", {"until": "31/01/2026"}, ["until", "'31/01/2026'", "Unix seconds"]),
        ("/api/inbound", {"limit": "ten"}, ["limit", "'ten'", "whole number"]),
        ("/api/conversions", {"before": "-3"}, ["before", "'-3'", "whole number"]),
        ("/api/conversions", {"verdict": "sent"}, ["verdict", "'sent'", "fired, filtered"]),
        ("/api/deliveries", {"outcome": "ok"}, ["outcome", "'ok'", "delivered, failed"]),
        ("/api/inbound", {"outcome": "failed"}, ["outcome", "'failed'", "accepted, rejected"]),
        ("/api/conversions", {"campaign": "nope"}, ["campaign", "'nope'", "casino-fr"]),
        ("/api/deliveries", {"traffic_source": "X"}, ["traffic_source", "'X'", "Propeller"]),
        ("/api/deliveries", {"endpoint": "click"}, ["endpoint", "inbound"]),
    ],
    ids=str,
)
async def test_a_bad_filter_value_is_a_400_naming_it_and_what_is_accepted(
    pw: Listener, traffic: dict[str, Any], path: str, params: dict[str, str], words: list[str]
) -> None:
    status, body = await pw.get(path, **params)
    assert status == 400
    for word in words:
        assert word in body["error"]


async def test_the_outcome_of_a_conversions_attempts_filters_conversions(
    pw: Listener, target: Target
) -> None:
    """failed (few: read through the outcome index) and delivered (most: a walk) choose the
    conversions with such an attempt."""

    async def refuse(request: web.Request) -> web.StreamResponse:
        fails = request.path == "/fail" and "txid=F" in request.query_string
        return web.Response(status=500 if fails else 200, text="no" if fails else "OK")

    target.handler = refuse
    await pw.configure(config_for(target.port, "/fail?txid={txid}"))
    clickid = await pw.click()
    for txid in ("F1", "OK1", "F2"):
        status, _ = await pw.postback(clickid=clickid, type="Lead", txid=txid)
        assert status == 200
    await pw.delivered(clickid)
    everything = await listed(pw, "/api/conversions")
    by_txid = {row["txid"]: row["id"] for row in everything}
    assert await ids(pw, "/api/conversions", outcome="failed") == [by_txid["F2"], by_txid["F1"]]
    assert await ids(pw, "/api/conversions", outcome="delivered") == [by_txid["OK1"]]
    failed = await listed(pw, "/api/deliveries", outcome="failed")
    assert {row["conversion_id"] for row in failed} == {by_txid["F1"], by_txid["F2"]}


async def test_a_traffic_source_of_several_campaigns_lists_them_all_newest_first(
    pw: Listener, traffic: dict[str, Any], conn: sqlite3.Connection
) -> None:
    await pw.configure(
        SECOND_CAMPAIGN
        + """
[[campaigns]]
key = "poker-it"
name = "Poker IT"
traffic_source = "Propeller"
offer_source = "AffNet"
"""
    )
    poker = await pw.click("poker-it", ref_id="ext-poker")
    await pw.postback(clickid=poker, type="Lead", txid="TX-P1")
    await pw.postback(clickid=traffic["casino"], type="Lead", txid="TX-A3")
    expected = conversions_where(conn, traffic_source="Propeller")
    assert len(expected) == 4 and expected == sorted(expected, reverse=True)
    assert await ids(pw, "/api/conversions", traffic_source="Propeller") == expected
    chosen = ListFilter(traffic_source="Propeller", type="Lead", limit=1000)
    assert queries.page_ids(conn, "conversions", chosen) == conversions_where(
        conn, traffic_source="Propeller", type="Lead"
    )
    inbound = await listed(pw, "/api/inbound", traffic_source="Propeller")
    assert {row["click_id"] for row in inbound} == {traffic["casino"], poker}


# -- conversion events (the dashboard's recent changes) ----------------------------------------


def change_facts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every conversion event, newest first, with what the filters look at, read row by row:
    its own type and status, its conversion's campaign and ids, its own decisions."""
    conversions = {fact["id"]: fact for fact in conversion_facts(conn)}
    facts = []
    for event in every(conn, "SELECT * FROM conversion_events ORDER BY id DESC"):
        conversion = conversions[event["conversion_id"]]
        decisions = every(conn, "SELECT * FROM decisions WHERE event_id = ?", event["id"])
        facts.append(
            {
                **conversion,
                "id": event["id"],
                "type": event["type"],
                "status": event["status"],
                "decisions": {(d["postback"], d["verdict"]) for d in decisions},
                "at": event["at"],
            }
        )
    return facts


def changes_where(conn: sqlite3.Connection, **wanted: Any) -> list[int]:
    """The event ids, newest first, that the given filter values choose."""
    return chosen_facts(change_facts(conn), wanted)


CHANGE_FILTERS: list[dict[str, str]] = [
    {"campaign": "casino-fr"},
    {"traffic_source": "Taboola"},
    {"type": "Deposit"},
    {"status": "approved"},
    {"status": "pending"},
    {"verdict": "filtered"},
    {"verdict": "fired", "postback": "paid deposits"},
    {"postback": "approved only"},
    {"q": "TX-A1"},
    {"q": "ext-sports"},
    {"campaign": "casino-fr", "type": "Deposit", "status": "approved"},
]


@pytest.mark.parametrize("params", CHANGE_FILTERS, ids=str)
async def test_each_filter_of_recent_changes_chooses_the_events_it_names(
    conn: sqlite3.Connection, params: dict[str, str]
) -> None:
    """An event's type and status are those it set (the approval of a pending deposit is
    approved, its first event pending); its verdicts are its own decisions'."""
    expected = changes_where(conn, **params)
    assert expected and len(expected) < len(change_facts(conn))
    chosen = from_parameters("conversion_events", params, max_limit=1000)
    assert queries.page_ids(conn, "conversion_events", replace(chosen, limit=1000)) == expected
    oldest = queries.page_ids(conn, "conversion_events", replace(chosen, limit=1, oldest=True))
    assert oldest == [min(expected)]
    assert queries.count_up_to(conn, "conversion_events", chosen, 1000) == len(expected)
    above = chosen.page(after=min(expected))
    assert queries.count_up_to(conn, "conversion_events", above, 1000) == len(expected) - 1


async def test_recent_changes_take_a_time_range_and_refuse_an_outcome(
    conn: sqlite3.Connection,
) -> None:
    facts = sorted(change_facts(conn), key=lambda fact: fact["id"])
    middle = facts[2]["at"]
    newer = [fact["id"] for fact in reversed(facts) if fact["at"] >= middle]
    older = [fact["id"] for fact in reversed(facts) if fact["at"] <= middle]
    for given, expected in (({"since": repr(middle)}, newer), ({"until": repr(middle)}, older)):
        chosen = from_parameters("conversion_events", given)
        assert queries.page_ids(conn, "conversion_events", chosen) == expected
    with pytest.raises(FilterError, match="outcome filters conversions, deliveries and inbound"):
        from_parameters("conversion_events", {"outcome": "failed"})
    with pytest.raises(FilterError, match="endpoint filters inbound requests, not changes"):
        from_parameters("conversion_events", {"endpoint": "click"})


# -- what the dashboard adds: the oldest page, capped counts, ages, combining filters ---------


@pytest.mark.parametrize("wanted", CONVERSION_FILTERS, ids=lambda wanted: repr(wanted))
async def test_the_oldest_page_and_a_capped_count_agree_with_every_row(
    conn: sqlite3.Connection, wanted: dict[str, str]
) -> None:
    chosen = from_parameters("conversions", wanted)
    expected = conversions_where(conn, **wanted)
    oldest = queries.page_ids(conn, "conversions", replace(chosen, limit=2, oldest=True))
    assert oldest == sorted(expected)[:2]  # oldest first
    assert queries.count_up_to(conn, "conversions", chosen, 1000) == len(expected)
    assert queries.count_up_to(conn, "conversions", chosen, 1) == min(1, len(expected))
    if expected:  # within the page's bounds: the rows above the oldest match
        above = chosen.page(after=min(expected))
        assert queries.count_up_to(conn, "conversions", above, 1000) == len(expected) - 1


def test_the_parameters_of_a_filter_read_back_as_the_same_filter() -> None:
    given = {
        "campaign": "casino-fr",
        "type": "Deposit",
        "status": "approved",
        "verdict": "fired",
        "outcome": "delivered",
        "postback": "all events",
        "traffic_source": "Propeller",
        "q": "ext 1",
        "since": "1767225600.5",
        "until": "1767229200",
    }
    chosen = from_parameters("conversions", given)
    assert parameters(chosen) == given
    assert from_parameters("conversions", parameters(chosen)) == chosen


def test_since_and_until_take_an_age_before_now_when_now_is_given() -> None:
    now = 1_767_225_600.0
    chosen = from_parameters("inbound", {"since": "2h", "until": "30m"}, now=now)
    assert (chosen.since, chosen.until) == (now - 7200, now - 1800)
    with pytest.raises(FilterError, match="since '2h' is not a time"):
        from_parameters("inbound", {"since": "2h"})  # the API reads no ages
    with pytest.raises(FilterError, match="or an age such as 30m, 2h or 7d"):
        from_parameters("inbound", {"since": "2x"}, now=now)


def test_two_filters_combine_unless_they_ask_for_different_values() -> None:
    outcome = ListFilter(outcome="failed", limit=5)
    both = outcome.both(ListFilter(campaign="casino-fr", q="x"))
    assert both == ListFilter(outcome="failed", campaign="casino-fr", q="x", limit=5)
    assert outcome.both(ListFilter(outcome="failed")) == outcome
    assert outcome.both(ListFilter(outcome="pending")) is None
    assert not ListFilter(limit=5, before=9).filters_rows and both is not None and both.filters_rows
