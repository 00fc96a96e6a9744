"""Read helpers for the dashboard: pages of rows by id, changes since a watermark.

Like ``store.reads``, these are sync functions of a ``sqlite3.Connection`` that return plain
data; they differ in shape: times stay Unix floats (the dashboard formats them itself) and rows
are loaded in batches by id, so a live table can re-read just the rows that may have changed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from store import events, reads
from store.records import Conversion

Row = dict[str, Any]

# A mark is the state of one postback config for a conversion's latest event.
MARKS = ("fired", "delivered", "retrying", "failed", "filtered", "skipped")
SETTLED_MARKS = frozenset({"delivered", "failed", "filtered", "skipped"})


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def data_version(conn: sqlite3.Connection) -> int:
    """SQLite's ``PRAGMA data_version``: it changes when another connection commits."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def count_newer(
    conn: sqlite3.Connection, table: str, after_id: int, where: str = "", args: Sequence[Any] = ()
) -> int:
    """How many rows of ``table`` (conversions, inbound, deliveries) have an id above
    ``after_id`` and match the optional ``where`` clause."""
    if table not in ("conversions", "inbound", "deliveries"):
        raise ValueError(f"no such table: {table}")
    clause = f" AND ({where})" if where else ""
    row = conn.execute(
        f"SELECT count(*) FROM {table} WHERE id > ?{clause}", (after_id, *args)
    ).fetchone()
    return int(row[0])


# -- conversions ------------------------------------------------------------------------------


def mark_of(verdict: str, attempts: list[Row]) -> str:
    """The mark of one decision: its verdict, or for a fired one, where its delivery stands."""
    if verdict != "fired":
        return verdict
    if not attempts:
        return "fired"
    latest = attempts[-1]
    outcome = str(latest["outcome"])
    if outcome == "pending":
        retried = latest["attempt"] > 1 and latest["resend_of"] is None
        return "retrying" if retried else "fired"
    if outcome == "retrying":
        return "retrying"
    return outcome


def conversions_by_id(conn: sqlite3.Connection, ids: Iterable[int]) -> list[Row]:
    """Conversions for a live table, newest first: the row's values and one mark per decision
    of the conversion's latest event (in postback config order; the reasons are read with the
    detail, not for each of a flood of rows)."""
    wanted = sorted(set(ids), reverse=True)
    if not wanted:
        return []
    marks = _placeholders(wanted)
    rows = conn.execute(
        "SELECT c.*, k.key AS campaign FROM conversions c JOIN campaigns k ON k.id = c.campaign_id"
        f" WHERE c.id IN ({marks}) ORDER BY c.id DESC",
        wanted,
    ).fetchall()
    decisions = conn.execute(
        "SELECT d.id, d.conversion_id, d.postback, d.kind, d.verdict FROM decisions d"
        f" WHERE d.conversion_id IN ({marks}) AND d.event_id ="
        " (SELECT max(event_id) FROM decisions WHERE conversion_id = d.conversion_id)"
        " ORDER BY d.id",
        wanted,
    ).fetchall()
    attempts: dict[int, list[Row]] = {}
    decision_ids = [d["id"] for d in decisions]
    if decision_ids:
        for attempt in conn.execute(
            "SELECT decision_id, attempt, outcome, resend_of FROM deliveries"
            f" WHERE decision_id IN ({_placeholders(decision_ids)}) ORDER BY decision_id, attempt",
            decision_ids,
        ):
            attempts.setdefault(attempt["decision_id"], []).append(dict(attempt))
    by_conversion: dict[int, list[Row]] = {}
    for decision in decisions:
        by_conversion.setdefault(decision["conversion_id"], []).append(
            {
                "postback": decision["postback"],
                "kind": decision["kind"],
                "verdict": decision["verdict"],
                "mark": mark_of(decision["verdict"], attempts.get(decision["id"], [])),
            }
        )
    return [
        {
            "id": row["id"],
            "click_id": row["click_id"],
            "campaign": row["campaign"],
            "type": row["type"],
            "status": row["status"],
            "raw_status": row["raw_status"],
            "payout": row["payout"],
            "currency": row["currency"],
            "txid": row["txid"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "marks": by_conversion.get(row["id"], []),
        }
        for row in rows
    ]


def conversions_page(
    conn: sqlite3.Connection,
    *,
    limit: int = 100,
    before: int | None = None,
    after: int | None = None,
) -> list[Row]:
    """Conversions newest first: the newest ``limit``, those below ``before``, or the newest
    ``limit`` of those above ``after``."""
    sql, args = _id_page("conversions", before=before, after=after)
    ids = [row[0] for row in conn.execute(sql, (*args, limit))]
    return conversions_by_id(conn, ids)


def _id_page(
    table: str, *, before: int | None, after: int | None, where: str = "", args: Sequence[Any] = ()
) -> tuple[str, tuple[Any, ...]]:
    clauses = [where] if where else []
    values: list[Any] = list(args)
    if before is not None:
        clauses.append("id < ?")
        values.append(before)
    if after is not None:
        clauses.append("id > ?")
        values.append(after)
    condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT id FROM {table}{condition} ORDER BY id DESC LIMIT ?", tuple(values)


def conversion_detail(conn: sqlite3.Connection, conversion_id: int) -> Row | None:
    """Everything about one conversion: its values and status history, every decision with
    its reasons and delivery attempts, and the inbound requests that made each event, with
    how they were parsed."""
    row = conn.execute("SELECT * FROM conversions WHERE id = ?", (conversion_id,)).fetchone()
    if row is None:
        return None
    conversion = reads.conversion_row(conn, row, full=True)
    inbound_ids = [event["inbound_id"] for event in conversion["history"]]
    # Every inbound row that names a conversion names its click too, so the click's rows
    # (through the inbound_click index) hold them; inbound has no index on conversion_id.
    requests = conn.execute(
        f"SELECT * FROM inbound WHERE id IN ({_placeholders(inbound_ids)})"
        " OR (click_id = ? AND conversion_id = ?) ORDER BY id",
        (*inbound_ids, row["click_id"], conversion_id),
    ).fetchall()
    click = conn.execute(
        "SELECT external_id FROM clicks WHERE id = ?", (row["click_id"],)
    ).fetchone()
    conversion["external_id"] = "" if click is None else click["external_id"]
    conversion["inbound"] = [reads.inbound_row(request) for request in requests]
    return conversion


# -- inbound ----------------------------------------------------------------------------------

INBOUND_FILTERS: dict[str, str] = {
    "all": "",
    "rejected": "outcome = 'rejected'",
    "accepted": "outcome = 'accepted'",
    "postbacks": "endpoint = 'postback'",
    "clicks": "endpoint = 'click'",
}


def inbound_page(
    conn: sqlite3.Connection,
    *,
    show: str = "all",
    limit: int = 100,
    before: int | None = None,
    after: int | None = None,
    ids: Sequence[int] | None = None,
) -> list[Row]:
    """Inbound requests newest first, optionally only the rejected (or accepted, postbacks,
    clicks) ones."""
    if ids is not None:
        rows = conn.execute(
            f"SELECT * FROM inbound WHERE id IN ({_placeholders(ids)}) ORDER BY id DESC", ids
        ).fetchall()
    else:
        sql, args = _id_page("inbound", before=before, after=after, where=INBOUND_FILTERS[show])
        found = [row[0] for row in conn.execute(sql, (*args, limit))]
        if not found:  # "id IN ()" is planned as a scan of the table
            return []
        rows = conn.execute(
            f"SELECT * FROM inbound WHERE id IN ({_placeholders(found)}) ORDER BY id DESC", found
        ).fetchall()
    return [{**reads.inbound_row(row), "at": row["received_at"]} for row in rows]


# -- deliveries -------------------------------------------------------------------------------

_DELIVERY = """
    SELECT d.*, k.postback, k.kind, k.verdict, k.reasons, k.conversion_id,
           c.click_id, c.type, c.status, m.key AS campaign
    FROM deliveries d
    JOIN decisions k ON k.id = d.decision_id
    JOIN conversions c ON c.id = k.conversion_id
    JOIN campaigns m ON m.id = c.campaign_id
"""


def _delivery(row: sqlite3.Row) -> Row:
    return {
        **reads.delivery_row(row),
        "due": row["due_at"],
        "sent": row["sent_at"],
        "postback": row["postback"],
        "kind": row["kind"],
        "verdict": row["verdict"],
        "reasons": json.loads(row["reasons"]),
        "conversion_id": row["conversion_id"],
        "click_id": row["click_id"],
        "type": row["type"],
        "status": row["status"],
        "campaign": row["campaign"],
    }


def deliveries_page(
    conn: sqlite3.Connection,
    *,
    outcome: str | None = None,
    limit: int = 100,
    before: int | None = None,
    after: int | None = None,
    ids: Sequence[int] | None = None,
) -> list[Row]:
    """Delivery attempts newest first, with their postback, decision and conversion;
    optionally only those with one outcome (pending, retrying, delivered, failed)."""
    if ids is not None:
        found = list(ids)
    else:
        where, args = ("outcome = ?", (outcome,)) if outcome else ("", ())
        sql, page_args = _id_page("deliveries", before=before, after=after, where=where, args=args)
        found = [row[0] for row in conn.execute(sql, (*page_args, limit))]
    if not found:
        return []
    rows = conn.execute(
        _DELIVERY + f" WHERE d.id IN ({_placeholders(found)}) ORDER BY d.id DESC", found
    ).fetchall()
    return [_delivery(row) for row in rows]


def delivery_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many delivery attempts have each outcome."""
    return {
        str(row[0]): int(row[1])
        for row in conn.execute("SELECT outcome, count(*) FROM deliveries GROUP BY outcome")
    }


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


def first_campaign_key(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT key FROM campaigns ORDER BY id LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def campaign_key(conn: sqlite3.Connection, preferred: str) -> str | None:
    """``preferred`` if such a campaign exists, else the first campaign's key."""
    row = conn.execute("SELECT key FROM campaigns WHERE key = ?", (preferred,)).fetchone()
    return preferred if row is not None else first_campaign_key(conn)
