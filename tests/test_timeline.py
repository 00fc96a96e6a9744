"""store/timeline.py: a time's id bound found by bisection over the id picks the rows a scan
picks, with gaps of pruned rows, before the first row, after the last, on an empty table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.timeline import first_id

TIMES = [10.0, 10.0, 11.5, 12.0, 12.0, 12.0, 20.0, 31.0, 31.0, 40.0]


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(tmp_path / "times.db")
    connection.execute("CREATE TABLE conversions (id INTEGER PRIMARY KEY, created_at REAL)")
    # ids with gaps (pruned rows), times growing with the id
    connection.executemany(
        "INSERT INTO conversions VALUES (?, ?)",
        [(n * 3 + (n % 2), at) for n, at in enumerate(TIMES, start=1)],
    )
    return connection


def scanned(conn: sqlite3.Connection, op: str, value: float) -> int:
    """The first id whose time ``op`` the value, by reading every row; past the end: max + 1."""
    rows = conn.execute("SELECT id, created_at FROM conversions ORDER BY id").fetchall()
    holds = [row_id for row_id, at in rows if (at >= value if op == ">=" else at > value)]
    return holds[0] if holds else (rows[-1][0] + 1 if rows else 1)


def ids_from(conn: sqlite3.Connection, bound: int) -> list[int]:
    return [row[0] for row in conn.execute("SELECT id FROM conversions WHERE id >= ?", (bound,))]


@pytest.mark.parametrize("op", [">=", ">"])
@pytest.mark.parametrize("value", [0.0, 10.0, 10.5, 12.0, 13.0, 31.0, 40.0, 41.0])
def test_the_bisection_picks_the_rows_a_scan_picks(
    conn: sqlite3.Connection, op: str, value: float
) -> None:
    sql = f"SELECT {first_id('conversions', 'created_at', op)}"
    ((bound,),) = conn.execute(sql, (value, value))
    first = scanned(conn, op, value)
    assert bound <= first
    assert ids_from(conn, bound) == ids_from(conn, first)  # the same rows from either


def test_an_empty_table_bounds_nothing(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "empty.db")
    connection.execute("CREATE TABLE conversions (id INTEGER PRIMARY KEY, created_at REAL)")
    sql = f"SELECT {first_id('conversions', 'created_at', '>=')}"
    assert connection.execute(sql, (5.0, 5.0)).fetchone() == (1,)


def test_the_bisection_reads_the_primary_key_only(conn: sqlite3.Connection) -> None:
    sql = f"SELECT id FROM conversions WHERE id >= {first_id('conversions', 'created_at', '>=')}"
    plan = [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", (12.0, 12.0))]
    assert not [line for line in plan if line.startswith("SCAN conversions")], plan


def test_only_the_comparisons_of_a_bound_are_taken() -> None:
    with pytest.raises(ValueError, match="'<'"):
        first_id("conversions", "created_at", "<")
