"""The dashboard's change watch: the header's counters and SQLite's data version.

Every other read is in the read model (``store.read.queries``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

# Kept importable from here for the dashboard's start (tui/app.py).
from store.read.queries import campaign_key as campaign_key


def data_version(conn: sqlite3.Connection) -> int:
    """SQLite's ``PRAGMA data_version``: it changes when another connection commits."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


# -- counters ---------------------------------------------------------------------------------


@dataclass
class Counters:
    """Totals for the header, kept up to date incrementally: rows are only ever added, so
    counting the rows above the last seen rowid is exact and cheap."""

    clicks: int = 0
    conversions: int = 0
    inbound: int = 0
    rejected: int = 0
    postbacks: int = 0
    last_click: int = 0
    last_conversion: int = 0
    last_inbound: int = 0


def count_since(conn: sqlite3.Connection, previous: Counters | None = None) -> Counters:
    """The counters, advanced from ``previous`` (from scratch when None)."""
    old = previous or Counters()
    clicks = conn.execute(
        "SELECT count(*), coalesce(max(rowid), ?) FROM clicks WHERE rowid > ?",
        (old.last_click, old.last_click),
    ).fetchone()
    conversions = conn.execute(
        "SELECT count(*), coalesce(max(id), ?) FROM conversions WHERE id > ?",
        (old.last_conversion, old.last_conversion),
    ).fetchone()
    inbound = conn.execute(
        "SELECT count(*), coalesce(max(id), ?),"
        " coalesce(sum(outcome = 'rejected'), 0), coalesce(sum(endpoint = 'postback'), 0)"
        " FROM inbound WHERE id > ?",
        (old.last_inbound, old.last_inbound),
    ).fetchone()
    return Counters(
        clicks=old.clicks + clicks[0],
        conversions=old.conversions + conversions[0],
        inbound=old.inbound + inbound[0],
        rejected=old.rejected + inbound[2],
        postbacks=old.postbacks + inbound[3],
        last_click=int(clicks[1]),
        last_conversion=int(conversions[1]),
        last_inbound=int(inbound[1]),
    )
