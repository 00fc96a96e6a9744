"""Read helpers shared by the JSON API, the CLI and the dashboard.

Each returns plain JSON-ready data, in the shapes SPEC §2 gives the JSON API.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]


def iso(at: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC with milliseconds."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _click(conn: sqlite3.Connection, row: sqlite3.Row) -> Row:
    campaign = conn.execute(
        "SELECT key, name FROM campaigns WHERE id = ?", (row["campaign_id"],)
    ).fetchone()
    return {
        "id": row["id"],
        "campaign": campaign["key"],
        "campaign_name": campaign["name"],
        "external_id": row["external_id"],
        "params": json.loads(row["params"]),
        "created_at": iso(row["created_at"]),
    }


def inbound_row(row: sqlite3.Row) -> Row:
    return {
        "id": row["id"],
        "received_at": iso(row["received_at"]),
        "endpoint": row["endpoint"],
        "method": row["method"],
        "path": row["path"],
        "query": row["query"],
        "body": row["body"],
        "remote": row["remote"],
        "headers": json.loads(row["headers"]),
        "outcome": row["outcome"],
        "reason": row["reason"],
        "http_status": row["http_status"],
        "warnings": json.loads(row["warnings"]),
        "parsed": json.loads(row["parsed"]),
        "click_id": row["click_id"],
        "conversion_id": row["conversion_id"],
    }


def delivery_row(row: sqlite3.Row) -> Row:
    return {
        "id": row["id"],
        "decision_id": row["decision_id"],
        "attempt": row["attempt"],
        "resend_of": row["resend_of"],
        "method": row["method"],
        "url": row["url"],
        "headers": json.loads(row["headers"]),
        "body": row["body"],
        "http_status": row["http_status"],
        "response": row["response"],
        "error": row["error"],
        "outcome": row["outcome"],
        "due_at": iso(row["due_at"]),
        "sent_at": iso(row["sent_at"]),
        "duration_ms": row["duration_ms"],
    }


def _decision(conn: sqlite3.Connection, row: sqlite3.Row) -> Row:
    attempts = conn.execute(
        "SELECT * FROM deliveries WHERE decision_id = ? ORDER BY attempt", (row["id"],)
    )
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "postback": row["postback"],
        "kind": row["kind"],
        "verdict": row["verdict"],
        "reasons": json.loads(row["reasons"]),
        "warnings": json.loads(row["warnings"]),
        "at": iso(row["at"]),
        "deliveries": [delivery_row(attempt) for attempt in attempts],
        # the request built but not sent (say, no access token), secrets masked; else None
        "request": json.loads(row["request"]) if row["request"] else None,
    }


def conversion_row(conn: sqlite3.Connection, row: sqlite3.Row, *, full: bool = True) -> Row:
    """A conversion with its history and decisions (``full``) or its latest decisions only."""
    campaign = conn.execute(
        "SELECT key FROM campaigns WHERE id = ?", (row["campaign_id"],)
    ).fetchone()
    result: Row = {
        "id": row["id"],
        "click_id": row["click_id"],
        "campaign": campaign["key"],
        "type": row["type"],
        "status": row["status"],
        "raw_status": row["raw_status"],
        "payout": row["payout"],
        "currency": row["currency"],
        "txid": row["txid"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }
    if full:
        result["history"] = [
            {
                "event_id": event["id"],
                "at": iso(event["at"]),
                "change": event["change"],
                "type": event["type"],
                "status": event["status"],
                "raw_status": event["raw_status"],
                "payout": event["payout"],
                "inbound_id": event["inbound_id"],
            }
            for event in conn.execute(
                "SELECT * FROM conversion_events WHERE conversion_id = ? ORDER BY id",
                (row["id"],),
            )
        ]
        decisions = conn.execute(
            "SELECT * FROM decisions WHERE conversion_id = ? ORDER BY id", (row["id"],)
        )
    else:
        decisions = conn.execute(
            "SELECT * FROM decisions WHERE conversion_id = ? AND event_id ="
            " (SELECT max(event_id) FROM decisions WHERE conversion_id = ?) ORDER BY id",
            (row["id"], row["id"]),
        )
    result["decisions"] = [_decision(conn, decision) for decision in decisions]
    return result


def find_click_id(conn: sqlite3.Connection, any_id: str) -> str | None:
    """The click a click id, an external id or a transaction id belongs to."""
    for sql in (
        "SELECT id FROM clicks WHERE id = ?",
        # the second term lets SQLite use the partial index (clicks without an external id,
        # all of those a postback makes under unknown_clicks = attach, are not in it)
        "SELECT id FROM clicks WHERE external_id = ? AND external_id != ''"
        " ORDER BY created_at DESC LIMIT 1",
        "SELECT click_id FROM conversions WHERE txid = ? ORDER BY id DESC LIMIT 1",
    ):
        row = conn.execute(sql, (any_id,)).fetchone()
        if row is not None:
            return str(row[0])
    return None


def trace(conn: sqlite3.Connection, any_id: str) -> Row:
    """The whole story of a click: the click, every inbound request naming it, and every
    conversion with its history, decisions and delivery attempts."""
    click_id = find_click_id(conn, any_id)
    if click_id is None:
        inbound = conn.execute(
            "SELECT * FROM inbound WHERE click_id = ? ORDER BY id", (any_id,)
        ).fetchall()
        return {"click": None, "inbound": [inbound_row(r) for r in inbound], "conversions": []}
    click = conn.execute("SELECT * FROM clicks WHERE id = ?", (click_id,)).fetchone()
    inbound = conn.execute(
        "SELECT * FROM inbound WHERE click_id = ? ORDER BY id", (click_id,)
    ).fetchall()
    conversions = conn.execute(
        "SELECT * FROM conversions WHERE click_id = ? ORDER BY id", (click_id,)
    ).fetchall()
    return {
        "click": _click(conn, click),
        "inbound": [inbound_row(r) for r in inbound],
        "conversions": [conversion_row(conn, r) for r in conversions],
    }


def _page(table: str, before: int | None) -> tuple[str, tuple[Any, ...]]:
    if before is None:
        return f"SELECT * FROM {table} ORDER BY id DESC LIMIT ?", ()
    return f"SELECT * FROM {table} WHERE id < ? ORDER BY id DESC LIMIT ?", (before,)


def conversions(conn: sqlite3.Connection, limit: int = 100, before: int | None = None) -> list[Row]:
    """Conversions newest first, each with the decisions of its latest event."""
    sql, args = _page("conversions", before)
    rows = conn.execute(sql, (*args, limit)).fetchall()
    return [conversion_row(conn, row, full=False) for row in rows]


def inbound(conn: sqlite3.Connection, limit: int = 100, before: int | None = None) -> list[Row]:
    """Inbound requests newest first."""
    sql, args = _page("inbound", before)
    return [inbound_row(row) for row in conn.execute(sql, (*args, limit))]


def sink_records(conn: sqlite3.Connection, name: str, limit: int = 100) -> list[Row]:
    """What a sink received, newest first."""
    rows = conn.execute(
        "SELECT * FROM sink_records WHERE sink = ? ORDER BY id DESC LIMIT ?", (name, limit)
    )
    return [
        {
            "id": row["id"],
            "received_at": iso(row["received_at"]),
            "method": row["method"],
            "path": row["path"],
            "query": row["query"],
            "headers": json.loads(row["headers"]),
            "body": row["body"],
            "http_status": row["http_status"],
        }
        for row in rows
    ]
