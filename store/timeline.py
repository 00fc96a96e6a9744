"""Id bounds of a time on a table whose time grows with its id, found without a time index.

Conversions (``created_at``), their events (``at``) and inbound requests (``received_at``) are
written in time order, so the rows of a time range are a range of ids. Its ends are found by
bisection over the primary key: about 20 look-ups for a million rows, each one step down the
table's own b-tree, where an index on the time would cost every row an entry (schema step 12
dropped those).

A row written while the clock stepped back (or by a second listener with a skewed clock) is
out of order; it may fall outside the bounds, as it would with a time index's first match.
"""

from __future__ import annotations

# The tables and their time columns that grow with the id.
TIME_ORDERED = {"conversions": "created_at", "inbound": "received_at", "conversion_events": "at"}


def first_id(table: str, column: str, op: str) -> str:
    """SQL of the id bound where ``table``'s ``column`` starts to be ``op`` (``>=`` or ``>``)
    the value bound twice after it (the same value both times): the rows from that id on are
    those from the first row whose time holds (the bound may lie in a gap of pruned rows just
    below it), and none when no row holds. Each step reads the time of the first row at or
    after the middle id, so gaps do not matter."""
    if op not in (">=", ">"):
        raise ValueError(f"a time bound compares with >= or >, not {op!r}")
    middle = "(lo + hi) / 2"
    # No row at or after the middle: the bound is below it.
    holds = (
        f"coalesce((SELECT {column} FROM {table} WHERE id >= {middle} ORDER BY id LIMIT 1)"
        f" {op} ?, 1)"
    )
    return (
        "(WITH RECURSIVE b(lo, hi) AS ("
        f"SELECT 1, (SELECT coalesce(max(id), 0) + 1 FROM {table})"
        f" UNION ALL SELECT iif({holds}, lo, {middle} + 1), iif({holds}, {middle}, hi)"
        " FROM b WHERE lo < hi"
        ") SELECT max(lo) FROM b)"
    )
