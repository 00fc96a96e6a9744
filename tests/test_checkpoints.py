"""Checkpoints run beside the writer, not inside its commits: the writer's automatic
threshold is high, and a background connection copies the WAL back into the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store import db
from store.db import Store
from tests.conftest import until


def insert_rows(conn: sqlite3.Connection) -> None:
    """Enough writes to fill a few hundred WAL pages."""
    conn.executemany(
        "INSERT INTO settings (key, value) VALUES (?, ?)",
        [(f"bulk-{n}", '"' + "x" * 2000 + '"') for n in range(300)],
    )


async def test_the_wal_is_checkpointed_off_the_commit_path(tmp_path: Path) -> None:
    async with Store(tmp_path / "checkpoints.db") as store:
        before = store.path.stat().st_size
        await store.write(insert_rows)
        # the rows are in the WAL; the writer's own threshold (10,000 pages) is far away, so
        # only the background checkpointer copies them into the database file (which only a
        # checkpoint writes), while the store stays open
        await until(lambda: store.path.stat().st_size > before + 500_000)


async def test_the_writer_has_a_high_threshold_and_a_larger_cache(tmp_path: Path) -> None:
    async with Store(tmp_path / "settings.db") as store:
        pragmas = await store.write(
            lambda c: (
                c.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
                c.execute("PRAGMA cache_size").fetchone()[0],
            )
        )
        assert pragmas == (db.WRITER_AUTOCHECKPOINT, -db.WRITER_CACHE_KIB)
