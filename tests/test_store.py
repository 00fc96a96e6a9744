"""The store: migrations, group commit, one failing job not spoiling its batch, and the JSON
text of its columns."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.db import Store
from store.jsontext import dumps
from store.schema import MIGRATIONS, migrate


def test_migrations_run_once_and_refuse_a_newer_schema(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "pw.db")
    assert migrate(conn) == 0
    assert migrate(conn) == len(MIGRATIONS)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="upgrade postwatch"):
        migrate(conn)


async def test_concurrent_writes_commit_together_and_failures_stay_apart(tmp_path: Path) -> None:
    async with Store(tmp_path / "pw.db") as store:

        def insert(n: int) -> int:
            def job(conn: sqlite3.Connection) -> int:
                conn.execute("INSERT INTO conversion_types (name) VALUES (?)", (f"T{n}",))
                if n == 7:
                    raise ValueError("job 7 fails")
                return n

            return job

        results = await asyncio.gather(
            *(store.write(insert(n)) for n in range(50)), return_exceptions=True
        )
        assert store.batches < 50  # grouped, not one commit per write
        assert next(r for r in results if isinstance(r, Exception)).args == ("job 7 fails",)
        names = await store.read(
            lambda conn: {row[0] for row in conn.execute("SELECT name FROM conversion_types")}
        )
    assert names == {f"T{n}" for n in range(50) if n != 7}
    # committed to the file, visible to another connection
    other = sqlite3.connect(tmp_path / "pw.db")
    assert other.execute("SELECT count(*) FROM conversion_types").fetchone() == (49,)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)


@given(JSON_VALUES)
def test_column_json_is_the_text_json_dumps_gives(value: Any) -> None:
    assert dumps(value) == json.dumps(value)
