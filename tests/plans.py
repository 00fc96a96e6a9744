"""How a test reads SQLite's query plans: the statements a read runs, and the plan lines of
one that scan a table growing with traffic from end to end (see tests/test_query_plans.py)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from store.read.filters import WALK
from store.schema import STORED

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
    """A page that reads the newest (or the oldest) rows of ``table`` by id, with no filter:
    its scan stops after LIMIT rows."""
    pattern = rf"\bFROM\s+{table}(?:\s+\w+)?\s+ORDER BY\s+(?:\w+\.)?id (?:DESC|ASC)\s+LIMIT\b"
    return re.search(pattern, sql, re.I) is not None


def walked(sql: str) -> str | None:
    """The table a statement marked ``WALK`` walks newest first (its main FROM)."""
    if not sql.lstrip().startswith(WALK):
        return None
    match = re.search(r"^\s*/\*.*?\*/\s*SELECT .*? FROM (\w+)", sql, re.S)
    return None if match is None else match.group(1).lower()


def partial_indexes(conn: sqlite3.Connection) -> frozenset[str]:
    """The indexes that hold only the rows their WHERE picks (schema step 12)."""
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    return frozenset(name for name, sql in rows if sql and re.search(r"\bWHERE\b", sql, re.I))


def full_scans(conn: sqlite3.Connection, sql: str) -> list[str]:
    """The plan lines of ``sql`` that scan a growing table from end to end. Reading a
    partial index from end to end is not one: it holds only the rows of the filter (SQLite
    picks one only when the query's WHERE implies the index's)."""
    names = aliases(sql)
    plan = [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    walk = walked(sql)
    walk = VIEW_OF.get(walk or "", walk)  # (a walk of a stored table is its view's)
    sorted_walk = any("TEMP B-TREE FOR ORDER BY" in line for line in plan)
    partial = partial_indexes(conn)
    found = []
    for detail in plan:
        match = re.match(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", detail)
        if match is None or match.group(2) in partial:
            continue
        table = names.get(match.group(1).lower(), match.group(1).lower())
        shown = VIEW_OF.get(table, table)  # a view's plan scans its stored table
        walk_scan = detail in (f"SCAN {walk}", f"SCAN {STORED.get(walk or '', walk)}")
        if shown == walk and walk_scan and not sorted_walk:
            continue
        newest_first = newest_first_page(sql, shown) or newest_first_page(sql, table)
        if table in GROWING and not newest_first:
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
