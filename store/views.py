"""The dashboard's change watch: SQLite's data version.

Every other read is in the read model (``store.read.queries``); the header totals are in
``store.totals``.
"""

from __future__ import annotations

import sqlite3

# Kept importable from here for the dashboard's start (tui/app.py).
from store.read.queries import campaign_key as campaign_key


def data_version(conn: sqlite3.Connection) -> int:
    """SQLite's ``PRAGMA data_version``: it changes when another connection commits."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
