"""Every read of the JSON API, the CLI and the dashboard: sync functions of a
``sqlite3.Connection`` that return the typed records of ``store.read.model``.

Rows are read in batches by id (one query per table, never one per row), and every query
is served by an index (tests/test_query_plans.py checks each one's plan). Decisions and
inbound requests are read with plain SELECTs on ``decisions`` and ``inbound``, whatever
those are backed by.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, NamedTuple

from store import events
from store.read import links
from store.read.filters import (
    ALL,
    LISTED,
    WALK,
    FilterError,
    ListFilter,
    id_page,
    newer_count,
)
from store.read.model import (
    AttemptRow,
    AttemptView,
    ChangeRow,
    ClickMatch,
    ClickView,
    ConversionDetail,
    ConversionRow,
    ConversionValues,
    ConversionView,
    DecisionRow,
    DecisionView,
    DeliveryAlerts,
    EventView,
    FailedAttempt,
    InboundView,
    Mark,
    ReplayView,
    SinkRecordView,
    Trace,
    mark_of,
    summary_of,
)
from store.records import Conversion
from store.rows import record_of
from store.schema import BY_TXID, by_click_id, by_external_id


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


# -- row -> record ----------------------------------------------------------------------------
# Each record is filled from the row's columns of its fields' names (store.rows): a field
# added to a record is read with no change here; what the row has no column of (history,
# decisions, marks) is the caller's.


def _inbound(row: sqlite3.Row) -> InboundView:
    return record_of(row, InboundView)


# -- batches by id ----------------------------------------------------------------------------

_CONVERSIONS = (
    "SELECT c.*, k.key AS campaign FROM conversions c JOIN campaigns k ON k.id = c.campaign_id"
)
# The decisions of each conversion's latest event (what a list shows).
_LATEST = (
    " AND d.event_id = (SELECT max(event_id) FROM decisions WHERE conversion_id = d.conversion_id)"
)


def _conversion_rows(conn: sqlite3.Connection, ids: Sequence[int]) -> list[sqlite3.Row]:
    if not ids:
        return []
    return conn.execute(
        f"{_CONVERSIONS} WHERE c.id IN ({_marks(ids)}) ORDER BY c.id DESC", ids
    ).fetchall()


def _decision_rows(
    conn: sqlite3.Connection, conversion_ids: Sequence[int], *, latest: bool, columns: str = "d.*"
) -> list[sqlite3.Row]:
    if not conversion_ids:
        return []
    return conn.execute(
        f"SELECT {columns} FROM decisions d WHERE d.conversion_id IN ({_marks(conversion_ids)})"
        f"{_LATEST if latest else ''} ORDER BY d.id",
        conversion_ids,
    ).fetchall()


def _attempts_by_decision(
    conn: sqlite3.Connection, decision_ids: Sequence[int]
) -> dict[int, list[AttemptView]]:
    found: dict[int, list[AttemptView]] = {}
    if not decision_ids:
        return found
    for row in conn.execute(
        f"SELECT * FROM deliveries WHERE decision_id IN ({_marks(decision_ids)})"
        " ORDER BY decision_id, attempt",
        decision_ids,
    ):
        found.setdefault(row["decision_id"], []).append(record_of(row, AttemptView))
    return found


def _history(conn: sqlite3.Connection, conversion_ids: Sequence[int]) -> dict[int, list[EventView]]:
    found: dict[int, list[EventView]] = {}
    if not conversion_ids:
        return found
    for row in conn.execute(
        f"SELECT * FROM conversion_events WHERE conversion_id IN ({_marks(conversion_ids)})"
        " ORDER BY id",
        conversion_ids,
    ):
        found.setdefault(row["conversion_id"], []).append(record_of(row, EventView))
    return found


def _conversion_views(
    conn: sqlite3.Connection, rows: Sequence[sqlite3.Row], *, full: bool
) -> list[ConversionView]:
    """Conversions with every event and decision (``full``) or the latest event's decisions
    and no history, in the order of ``rows``."""
    ids = [row["id"] for row in rows]
    decisions = _decision_rows(conn, ids, latest=not full)
    attempts = _attempts_by_decision(conn, [row["id"] for row in decisions])
    by_conversion: dict[int, list[DecisionView]] = {}
    for row in decisions:
        by_conversion.setdefault(row["conversion_id"], []).append(
            record_of(row, DecisionView, deliveries=tuple(attempts.get(row["id"], ())))
        )
    history = _history(conn, ids) if full else {}
    return [
        record_of(
            row,
            ConversionView,
            history=tuple(history.get(row["id"], [])) if full else None,
            decisions=tuple(by_conversion.get(row["id"], [])),
        )
        for row in rows
    ]


class _State(NamedTuple):
    """What a Live row's mark needs of an attempt (the rest is read with the detail)."""

    attempt: int
    outcome: str
    resend_of: int | None


def _config_names(
    conn: sqlite3.Connection, campaign_ids: Iterable[int]
) -> dict[int, list[tuple[int, str, str]]]:
    """Each campaign's postback configs now (id, name, kind), in config id order."""
    wanted = sorted(set(campaign_ids))
    found: dict[int, list[tuple[int, str, str]]] = {}
    if not wanted:
        return found
    for row in conn.execute(
        "SELECT id, campaign_id, name, kind FROM postback_configs"
        f" WHERE campaign_id IN ({_marks(wanted)}) ORDER BY id",
        wanted,
    ):
        found.setdefault(row["campaign_id"], []).append((row["id"], row["name"], row["kind"]))
    return found


def conversion_rows(conn: sqlite3.Connection, ids: Iterable[int]) -> list[ConversionRow]:
    """Rows of the Live table, newest first: each conversion's values and one mark per
    postback config of its campaign (in config id order, a config deleted since included),
    summing up its decisions at every event (``summary_of``)."""
    wanted = sorted(set(ids), reverse=True)
    rows = _conversion_rows(conn, wanted)
    decisions = _decision_rows(
        conn,
        wanted,
        latest=False,
        columns="d.id, d.conversion_id, d.postback_config_id, d.postback, d.kind, d.verdict",
    )
    states: dict[int, list[_State]] = {}
    decision_ids = [row["id"] for row in decisions]
    if decision_ids:
        for attempt in conn.execute(
            "SELECT decision_id, attempt, outcome, resend_of FROM deliveries"
            f" WHERE decision_id IN ({_marks(decision_ids)}) ORDER BY decision_id, attempt",
            decision_ids,
        ):
            states.setdefault(attempt["decision_id"], []).append(
                _State(attempt["attempt"], attempt["outcome"], attempt["resend_of"])
            )
    # per conversion, per config: its name and kind, and its decisions' verdicts and marks
    # in event order (decisions are read in id order)
    seen: dict[int, dict[int, tuple[str, str, list[str], list[str]]]] = {}
    for row in decisions:
        configs = seen.setdefault(row["conversion_id"], {})
        _, _, verdicts, marks = configs.setdefault(
            row["postback_config_id"], (row["postback"], row["kind"], [], [])
        )
        verdicts.append(row["verdict"])
        marks.append(mark_of(row["verdict"], states.get(row["id"], [])))
    configs_now = _config_names(conn, (row["campaign_id"] for row in rows))
    result = []
    for row in rows:
        decided = seen.get(row["id"], {})
        named = {
            config_id: (name, kind)
            for config_id, name, kind in configs_now.get(row["campaign_id"], [])
        }
        summary = []
        for config_id in sorted(set(decided) | set(named)):
            name, kind, verdicts, marks = decided.get(config_id, ("", "", [], []))
            name, kind = named.get(config_id, (name, kind))
            verdict = "fired" if "fired" in verdicts else verdicts[-1] if verdicts else "none"
            summary.append(Mark(name, kind, verdict, summary_of(marks), config_id))
        result.append(record_of(row, ConversionRow, marks=tuple(summary)))
    return result


def conversion_values(conn: sqlite3.Connection, ids: Sequence[int]) -> list[ConversionValues]:
    """Conversions' current values (no decisions), newest first."""
    return [record_of(row, ConversionValues) for row in _conversion_rows(conn, ids)]


def inbound_by_id(conn: sqlite3.Connection, ids: Sequence[int]) -> list[InboundView]:
    """Inbound requests, newest first."""
    if not ids:  # "id IN ()" is planned as a scan of the table
        return []
    rows = conn.execute(
        f"SELECT * FROM inbound WHERE id IN ({_marks(ids)}) ORDER BY id DESC", list(ids)
    )
    return [_inbound(row) for row in rows]


_ATTEMPT_ROWS = """
    SELECT d.*, k.postback, k.kind, k.verdict, k.reasons, k.conversion_id,
           c.click_id, c.type, c.status, m.key AS campaign
    FROM deliveries d
    JOIN decisions k ON k.id = d.decision_id
    JOIN conversions c ON c.id = k.conversion_id
    JOIN campaigns m ON m.id = c.campaign_id
"""


def replays_of(conn: sqlite3.Connection, inbound_ids: Sequence[int]) -> list[ReplayView]:
    """The requests that replay any of ``inbound_ids``, oldest first (through the partial
    index of replays, schema step 16)."""
    if not inbound_ids:
        return []
    rows = conn.execute(
        "SELECT id, replay_of, outcome FROM inbound"
        f" WHERE replay_of IN ({_marks(inbound_ids)}) ORDER BY id",
        list(inbound_ids),
    )
    return [record_of(row, ReplayView) for row in rows]


def attempt_rows(conn: sqlite3.Connection, ids: Sequence[int]) -> list[AttemptRow]:
    """Rows of the Deliveries table, newest first: each attempt with its postback config,
    decision and conversion."""
    if not ids:
        return []
    rows = conn.execute(
        _ATTEMPT_ROWS + f" WHERE d.id IN ({_marks(ids)}) ORDER BY d.id DESC", list(ids)
    )
    return [record_of(row, AttemptRow) for row in rows]


# -- lists ------------------------------------------------------------------------------------


def _names(conn: sqlite3.Connection, sql: str) -> str:
    return ", ".join(str(row[0]) for row in conn.execute(sql)) or "(none)"


def resolve(conn: sqlite3.Connection, chosen: ListFilter) -> ListFilter:
    """The filter with the campaigns its ``campaign`` (key or name) and ``traffic_source``
    name as ids. Raises ``FilterError`` when no campaign or traffic source has the name."""
    if not chosen.names_campaigns or chosen.campaign_ids is not None:
        return chosen
    found: set[int] | None = None
    if chosen.campaign is not None:
        rows = conn.execute(
            "SELECT id FROM campaigns WHERE key = ? UNION SELECT id FROM campaigns WHERE name = ?",
            (chosen.campaign, chosen.campaign),
        )
        found = {int(row[0]) for row in rows}
        if not found:
            known = _names(conn, "SELECT key FROM campaigns ORDER BY key")
            raise FilterError(
                f"campaign {chosen.campaign!r} is no campaign's key or name; campaigns: {known}"
            )
    if chosen.traffic_source is not None:
        source = conn.execute(
            "SELECT id FROM traffic_sources WHERE name = ?", (chosen.traffic_source,)
        ).fetchone()
        if source is None:
            known = _names(conn, "SELECT name FROM traffic_sources ORDER BY name")
            raise FilterError(
                f"traffic_source {chosen.traffic_source!r} is no traffic source's name;"
                f" traffic sources: {known}"
            )
        rows = conn.execute("SELECT id FROM campaigns WHERE traffic_source_id = ?", (source[0],))
        of_source = {int(row[0]) for row in rows}
        found = of_source if found is None else found & of_source
    return replace(chosen, campaign_ids=tuple(sorted(found or ())))


def _readable(conn: sqlite3.Connection, table: str, chosen: ListFilter) -> ListFilter | None:
    """The filter resolved (``resolve``) for reading ``table``, or None when it looks for a
    text that no row holds and so matches no row (``ListFilter.texts_sought``): one look-up
    in ``texts`` instead of a walk of the table."""
    chosen = resolve(conn, chosen)
    sought = set(chosen.texts_sought(table))
    if not sought:
        return chosen
    marks = ", ".join("?" for _ in sought)
    held = conn.execute(f"SELECT count(*) FROM texts WHERE value IN ({marks})", tuple(sought))
    return chosen if int(held.fetchone()[0]) == len(sought) else None


def page_ids(conn: sqlite3.Connection, table: str, chosen: ListFilter = ALL) -> list[int]:
    """The ids of one page of ``table`` (conversions, inbound, deliveries, or the conversion
    events of Live's recent changes), newest first."""
    readable = _readable(conn, table, chosen)
    if readable is None:
        return []
    sql, values = id_page(table, readable)
    return [int(row[0]) for row in conn.execute(sql, values)]


def newest_id(conn: sqlite3.Connection, table: str) -> int:
    """The highest id of a listed table (0: it is empty)."""
    if table not in LISTED:
        raise ValueError(f"no list is read from the table {table!r}")
    return int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])


def count_up_to(conn: sqlite3.Connection, table: str, chosen: ListFilter, cap: int) -> int:
    """How many rows of ``table`` the filter matches (within its ``before``/``after``
    bounds), counting no further than ``cap``: the ids of one page of ``cap`` rows, as a
    whole count of a large filtered table is slow."""
    readable = _readable(conn, table, replace(chosen, limit=cap))
    if readable is None:
        return 0
    sql, values = id_page(table, readable)
    walk = f"{WALK} " if sql.startswith(WALK) else ""  # the mark stays in front
    counted = f"{walk}SELECT count(*) FROM ({sql.removeprefix(walk)})"
    return int(conn.execute(counted, values).fetchone()[0])


def count_newer(
    conn: sqlite3.Connection, table: str, after_id: int, chosen: ListFilter = ALL
) -> int:
    """How many rows of ``table`` above ``after_id`` the filter matches."""
    readable = _readable(conn, table, chosen)
    if readable is None:
        return 0
    sql, values = newer_count(table, after_id, readable)
    return int(conn.execute(sql, values).fetchone()[0])


def conversions(conn: sqlite3.Connection, chosen: ListFilter = ALL) -> list[ConversionView]:
    """Conversions newest first, each with the decisions of its latest event."""
    rows = _conversion_rows(conn, page_ids(conn, "conversions", chosen))
    return _conversion_views(conn, rows, full=False)


def conversion_row_page(conn: sqlite3.Connection, chosen: ListFilter = ALL) -> list[ConversionRow]:
    """One page of the Live table."""
    return conversion_rows(conn, page_ids(conn, "conversions", chosen))


def inbound(conn: sqlite3.Connection, chosen: ListFilter = ALL) -> list[InboundView]:
    """Inbound requests newest first."""
    return inbound_by_id(conn, page_ids(conn, "inbound", chosen))


def attempt_row_page(conn: sqlite3.Connection, chosen: ListFilter = ALL) -> list[AttemptRow]:
    """One page of the Deliveries table."""
    return attempt_rows(conn, page_ids(conn, "deliveries", chosen))


def decision_rows(
    conn: sqlite3.Connection, conversion_ids: Sequence[int], chosen: ListFilter = ALL
) -> list[DecisionRow]:
    """Every decision of these conversions (of every event), newest conversion first and
    oldest decision first within one; with a ``verdict`` or a ``postback`` in the filter,
    only the decisions that have it."""
    if not conversion_ids:
        return []
    where = [f"d.conversion_id IN ({_marks(conversion_ids)})"]
    values: list[Any] = list(conversion_ids)
    if chosen.verdict is not None:
        where.append("d.verdict = ?")
        values.append(chosen.verdict)
    if chosen.postback is not None:
        where.append("d.postback = ?")
        values.append(chosen.postback)
    rows = conn.execute(
        "SELECT d.*, c.click_id, m.key AS campaign FROM decisions d"
        " JOIN conversions c ON c.id = d.conversion_id JOIN campaigns m ON m.id = c.campaign_id"
        f" WHERE {' AND '.join(where)} ORDER BY d.conversion_id DESC, d.id",
        values,
    )
    return [record_of(row, DecisionRow) for row in rows]


def sink_records(conn: sqlite3.Connection, name: str, limit: int = 100) -> list[SinkRecordView]:
    """What a sink received, newest first."""
    rows = conn.execute(
        "SELECT * FROM sink_records WHERE sink = ? ORDER BY id DESC LIMIT ?", (name, limit)
    )
    return [record_of(row, SinkRecordView) for row in rows]


# -- one conversion, one trace ----------------------------------------------------------------


def conversion_detail(conn: sqlite3.Connection, conversion_id: int) -> ConversionDetail | None:
    """Everything about one conversion: its values and status history, every decision with
    its reasons and attempts, its click's external id, and the inbound requests that made
    each event, with how they were parsed."""
    rows = _conversion_rows(conn, [conversion_id])
    if not rows:
        return None
    (conversion,) = _conversion_views(conn, rows, full=True)
    click = conn.execute(
        "SELECT external_id FROM clicks"
        " WHERE seq = (SELECT click_seq FROM conversions WHERE id = ?)",
        (conversion_id,),
    ).fetchone()
    return ConversionDetail(
        conversion=conversion,
        external_id="" if click is None else click["external_id"],
        inbound=_linked(conn, links.of_conversions, conversion_id),
    )


def find_click_id(conn: sqlite3.Connection, any_id: str) -> str | None:
    """The click a click id, an external id or a transaction id belongs to (the newest,
    when several have it)."""
    matches, _ = click_matches(conn, any_id)
    return matches[0].click_id if matches else None


_MATCH = (
    "SELECT c.id AS click_id, k.key AS campaign, c.created_at FROM clicks c"
    " JOIN campaigns k ON k.id = c.campaign_id"
)


def _matches(rows: Iterable[sqlite3.Row]) -> list[ClickMatch]:
    return [ClickMatch(row["click_id"], row["campaign"], row["created_at"]) for row in rows]


def click_matches(conn: sqlite3.Connection, any_id: str) -> tuple[list[ClickMatch], int | None]:
    """Every click an id names, newest first: the click of a click id; every click with an
    external id; or the clicks of every conversion with a transaction id, and then the
    newest such conversion (the one the trace focuses on)."""
    exact = _matches(conn.execute(f"{_MATCH} WHERE {by_click_id('c')}", (any_id, any_id)))
    if exact:
        return exact, None
    # the second term lets SQLite use the partial index (clicks without an external id,
    # all of those a postback makes under unknown_clicks = attach, are not in it)
    by_external = _matches(
        conn.execute(
            f"{_MATCH} WHERE {by_external_id('c')} ORDER BY c.created_at DESC, c.id DESC",
            (any_id,),
        )
    )
    if by_external:
        return by_external, None
    converted = conn.execute(
        f"SELECT id, click_id, click_seq FROM conversions WHERE {BY_TXID} ORDER BY id DESC",
        (any_id,),
    ).fetchall()
    if not converted:
        return [], None
    order = list(dict.fromkeys(str(row["click_id"]) for row in converted))  # newest first
    seqs = list(dict.fromkeys(int(row["click_seq"]) for row in converted))
    rows = conn.execute(f"{_MATCH} WHERE c.seq IN ({_marks(seqs)})", seqs).fetchall()
    by_id = {match.click_id: match for match in _matches(rows)}
    return [by_id[click_id] for click_id in order if click_id in by_id], int(converted[0]["id"])


def _linked(
    conn: sqlite3.Connection, of: Callable[[str], str], key: int | str
) -> tuple[InboundView, ...]:
    """The inbound requests, oldest first, that ``of`` (``links.of_clicks`` or
    ``links.of_conversions``) finds for the click or conversion ``key``."""
    rows = conn.execute(
        f"SELECT * FROM inbound WHERE id IN (WITH ids(id) AS (SELECT ?) {of('ids')}) ORDER BY id",
        (key,),
    )
    return tuple(_inbound(row) for row in rows)


def _requests(
    conn: sqlite3.Connection, click_id: str
) -> tuple[tuple[InboundView, ...], tuple[ReplayView, ...]]:
    """The inbound requests of a click (or that named an id no click has), and their
    replays."""
    inbound = _linked(conn, links.of_clicks, click_id)
    return inbound, tuple(replays_of(conn, [request.id for request in inbound]))


@contextmanager
def _one_snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """Every statement inside reads the same committed state: a read transaction, unless
    the caller is in one already. (A writer may delete a click, say a prune, between two of
    a trace's statements.)"""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def trace(conn: sqlite3.Connection, any_id: str, shown: str | None = None) -> Trace:
    """The whole story of a click (``_trace``), read in one snapshot."""
    with _one_snapshot(conn):
        return _trace(conn, any_id, shown)


def _trace(conn: sqlite3.Connection, any_id: str, shown: str | None) -> Trace:
    """The whole story of a click found by a click id, an external id or a transaction id:
    the click, every inbound request naming it, every conversion with its history,
    decisions and attempts. When several clicks have the id, the newest is traced (or the
    one of them whose click id is ``shown``) and ``matches`` lists them all; a transaction
    id's conversion (on the click traced) is the ``focus``. With no such click, the requests
    that named the id."""
    matches, focus = click_matches(conn, any_id)
    if not matches:
        inbound, replays = _requests(conn, any_id)
        return Trace(click=None, inbound=inbound, conversions=(), traced=any_id, replays=replays)
    click_id = matches[0].click_id
    if shown is not None and any(m.click_id == shown for m in matches):
        click_id = shown
    click = conn.execute(
        "SELECT c.*, k.key AS campaign, k.name AS campaign_name FROM clicks c"
        f" JOIN campaigns k ON k.id = c.campaign_id WHERE {by_click_id('c')}",
        (click_id, click_id),
    ).fetchone()
    rows = conn.execute(
        f"{_CONVERSIONS} WHERE c.click_seq = ? ORDER BY c.id", (click["seq"],)
    ).fetchall()
    if focus is not None and click_id != matches[0].click_id:  # the txid's newest on this click
        focus = max((int(row["id"]) for row in rows if row["txid"] == any_id), default=None)
    inbound, replays = _requests(conn, click_id)
    return Trace(
        click=record_of(click, ClickView),
        inbound=inbound,
        conversions=tuple(_conversion_views(conn, rows, full=True)),
        traced=any_id,
        matches=tuple(matches),
        focus=focus,
        replays=replays,
    )


# -- the Live table's changes -----------------------------------------------------------------


def latest_event_id(conn: sqlite3.Connection) -> int:
    """The id of the newest conversion event (0: none yet)."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM conversion_events").fetchone()[0])


def conversions_updated(
    conn: sqlite3.Connection, after_event: int, window: Sequence[int]
) -> set[int]:
    """Conversions of ``window`` that an event above ``after_event`` changed."""
    if not window:
        return set()
    rows = conn.execute(
        "SELECT DISTINCT conversion_id FROM conversion_events WHERE id > ? AND"
        " conversion_id BETWEEN ? AND ?",
        (after_event, min(window), max(window)),
    )
    shown = set(window)
    return {int(row[0]) for row in rows if row[0] in shown}


def postback_names(conn: sqlite3.Connection) -> list[str]:
    """The names of the postback configs of every campaign, each once, in the order of the
    first config of the name (so a config added later comes last)."""
    rows = conn.execute(
        "SELECT name, min(id) AS first FROM postback_configs GROUP BY name ORDER BY first"
    )
    return [str(row[0]) for row in rows]


def change_rows(conn: sqlite3.Connection, event_ids: Sequence[int]) -> list[ChangeRow]:
    """Rows of Live's recent changes, newest first: each event with its conversion's row."""
    if not event_ids:
        return []
    events_read = conn.execute(
        "SELECT id, conversion_id, at, change, status FROM conversion_events"
        f" WHERE id IN ({_marks(event_ids)}) ORDER BY id DESC",
        list(event_ids),
    ).fetchall()
    rows = {row.id: row for row in conversion_rows(conn, [e["conversion_id"] for e in events_read])}
    return [
        ChangeRow(
            id=event["id"],
            conversion_id=event["conversion_id"],
            at=event["at"],
            change=event["change"],
            status=event["status"],
            conversion=rows[event["conversion_id"]],
        )
        for event in events_read
        if event["conversion_id"] in rows
    ]


def changes_touched(conn: sqlite3.Connection, after_event: int, window: Sequence[int]) -> set[int]:
    """Events of ``window`` whose conversion an event above ``after_event`` changed (their
    rows show the conversion as it is now)."""
    if not window:
        return set()
    rows = conn.execute(
        "SELECT id FROM conversion_events WHERE conversion_id IN"
        " (SELECT conversion_id FROM conversion_events WHERE id > ?) AND id BETWEEN ? AND ?",
        (after_event, min(window), max(window)),
    )
    shown = set(window)
    return {int(row[0]) for row in rows if row[0] in shown}


# -- the header's delivery figures ------------------------------------------------------------


def delivery_alerts(
    conn: sqlite3.Connection, after_failed: int, counted: int | None = None
) -> DeliveryAlerts:
    """The failed attempts (all time) and the deliveries waiting for an automatic retry,
    through ``deliveries(outcome, id)``; and the failures above attempt ``after_failed``,
    with the newest of them (with its postback config's name). ``counted``: how many failed
    attempts up to ``after_failed`` were counted before, so that only those above it are
    read (a failure of an older attempt, or a pruning, waits for a count with None)."""
    new, last = conn.execute(
        "SELECT count(*), coalesce(max(id), ?) FROM deliveries WHERE outcome = 'failed' AND id > ?",
        (after_failed, after_failed),
    ).fetchone()
    if counted is None:
        (counted,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE outcome = 'failed' AND id <= ?",
            (after_failed,),
        ).fetchone()
    (retrying,) = conn.execute(
        "SELECT count(*) FROM deliveries WHERE outcome = 'pending'"
        " AND attempt > 1 AND resend_of IS NULL"
    ).fetchone()
    newest = None
    if new:
        row = conn.execute(
            "SELECT d.id, k.postback, d.http_status, d.error FROM deliveries d"
            " JOIN decisions k ON k.id = d.decision_id WHERE d.id = ?",
            (last,),
        ).fetchone()
        if row is not None:
            newest = FailedAttempt(row["id"], row["postback"], row["http_status"], row["error"])
    return DeliveryAlerts(int(counted) + int(new), int(retrying), int(last), int(new), newest)


# -- campaigns and rules ----------------------------------------------------------------------


def seen_types(conn: sqlite3.Connection, recent: int = 5000) -> list[str]:
    """The conversion types seen in the most recent conversions, as sent (case kept)."""
    rows = conn.execute(
        "SELECT DISTINCT type FROM (SELECT type FROM conversions ORDER BY id DESC LIMIT ?)"
        " WHERE type IS NOT NULL ORDER BY type",
        (recent,),
    )
    return [str(row[0]) for row in rows]


def recent_conversions(
    conn: sqlite3.Connection, campaign_id: int, limit: int = 500
) -> list[Conversion]:
    """A campaign's latest conversions in their current state, for what-if counts."""
    rows = conn.execute(
        "SELECT * FROM conversions WHERE campaign_id = ? ORDER BY id DESC LIMIT ?",
        (campaign_id, limit),
    )
    return [events.conversion(row) for row in rows]


def click_params(conn: sqlite3.Connection, campaign_id: int, recent: int = 5000) -> list[str]:
    """The parameter names of a campaign's clicks among the ``recent`` newest clicks (each
    is a URL macro). A range of rowids, so the cost is bounded at any size."""
    rows = conn.execute(
        "SELECT DISTINCT p.key FROM clicks c, json_each(c.params) p"
        " WHERE c.rowid > (SELECT max(rowid) FROM clicks) - ? AND c.campaign_id = ?"
        " ORDER BY p.key",
        (recent, campaign_id),
    )
    return [str(row[0]) for row in rows]


def first_campaign_key(conn: sqlite3.Connection) -> str | None:
    """The key of the first campaign (None: there is none)."""
    row = conn.execute("SELECT key FROM campaigns ORDER BY id LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def campaign_key(conn: sqlite3.Connection, preferred: str) -> str | None:
    """``preferred`` if such a campaign exists, else the first campaign's key."""
    row = conn.execute("SELECT key FROM campaigns WHERE key = ?", (preferred,)).fetchone()
    return preferred if row is not None else first_campaign_key(conn)
