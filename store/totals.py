"""The header totals (clicks, conversions, inbound requests, rejected ones, postbacks), kept
as counters in the ``totals`` row so that reading them costs the same at any size.

The writer advances the row once per batch, just before the commit (``advance``): it counts
the rows above the highest id it counted last time, which are what the batch inserted, and
moves that mark. Every writer on the database does so inside its own write transaction, so
two listeners on one database each add their own batches, and a row written by anything else
(a script, an older postwatch) is counted by the next batch. Pruning counts first, then
subtracts what it deletes (``remove``). ``read`` adds what lies above the marks as well, so it
is exact even before the next batch.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Totals:
    """The header's figures: rows stored, by kind."""

    clicks: int = 0
    conversions: int = 0
    inbound: int = 0
    rejected: int = 0  # inbound requests refused
    postbacks: int = 0  # inbound requests to /postback


# What lies above the marks: each count reads only the rows past the mark (an id range).
_ABOVE_MARKS = """
SELECT
    (SELECT count(*) FROM clicks WHERE rowid > t.last_click),
    (SELECT count(*) FROM conversions WHERE id > t.last_conversion),
    (SELECT count(*) FROM inbound WHERE id > t.last_inbound),
    (SELECT count(*) FROM inbound WHERE id > t.last_inbound AND outcome = 'rejected'),
    (SELECT count(*) FROM inbound WHERE id > t.last_inbound AND endpoint = 'postback'),
    (SELECT coalesce(max(rowid), t.last_click) FROM clicks WHERE rowid > t.last_click),
    (SELECT coalesce(max(id), t.last_conversion) FROM conversions WHERE id > t.last_conversion),
    (SELECT coalesce(max(id), t.last_inbound) FROM inbound WHERE id > t.last_inbound),
    t.clicks, t.conversions, t.inbound, t.rejected, t.postbacks
FROM totals t
"""


def read(conn: sqlite3.Connection) -> Totals:
    """The totals now: the stored counters plus whatever no batch has counted yet. One
    statement, so it reads one snapshot of the database."""
    row = conn.execute(_ABOVE_MARKS).fetchone()
    if row is None:
        return Totals()
    above, stored = row[0:5], row[8:13]
    return Totals(*(int(a) + int(s) for a, s in zip(above, stored, strict=True)))


def advance(conn: sqlite3.Connection) -> None:
    """Count what was inserted since the last count into the counters (the writer's hook, run
    in every batch's transaction). Writes nothing when nothing was inserted."""
    row = conn.execute(_ABOVE_MARKS).fetchone()
    if row is None or not any(row[0:5]):
        return
    conn.execute(
        "UPDATE totals SET clicks = clicks + ?, conversions = conversions + ?,"
        " inbound = inbound + ?, rejected = rejected + ?, postbacks = postbacks + ?,"
        " last_click = ?, last_conversion = ?, last_inbound = ?",
        tuple(row[0:8]),
    )


def remove(conn: sqlite3.Connection, deleted: Totals) -> None:
    """Subtract rows just deleted. ``advance`` must have run earlier in the same transaction
    (everything present was counted); the marks then come down to the highest ids left, so
    that a new row that reuses a freed id is counted."""
    conn.execute(
        "UPDATE totals SET clicks = clicks - ?, conversions = conversions - ?,"
        " inbound = inbound - ?, rejected = rejected - ?, postbacks = postbacks - ?,"
        " last_click = (SELECT coalesce(max(rowid), 0) FROM clicks),"
        " last_conversion = (SELECT coalesce(max(id), 0) FROM conversions),"
        " last_inbound = (SELECT coalesce(max(id), 0) FROM inbound)",
        (deleted.clicks, deleted.conversions, deleted.inbound, deleted.rejected, deleted.postbacks),
    )
