"""Compact storage (schema step 8) and the writer's checkpoints: interned texts are invisible
to readers, the migration of an older database keeps every value (also when it is killed
half-way), the writer's text-id cache stays right across rollbacks and across two processes,
and the checkpointer keeps the WAL bounded without losing a committed postback to kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from store import db, events, schema
from store.db import Store
from store.schema import COMPACTED, MIGRATIONS, migrate
from tests.helpers import BASE_CONFIG, Listener, free_port, start_listener, stop_listener, until

OLD_VERSION = 7  # the version before the compacted tables


def rows(conn: sqlite3.Connection, like: Path | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (or view, under the name readers use) a step-7 database has,
    in id order; with ``like``, only the columns that database's tables have (later steps add
    columns)."""
    names = [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
            " AND name NOT LIKE 'sqlite_%' AND name NOT IN ('texts', ?, ?, ?) ORDER BY name",
            tuple(table.stored for table in COMPACTED.values()),
        )
    ]
    shape = conn if like is None else sqlite3.connect(like)
    try:
        columns = {
            name: ", ".join(str(row[1]) for row in shape.execute(f"PRAGMA table_info({name})"))
            for name in names
        }
    finally:
        if like is not None:
            shape.close()
    return {
        name: conn.execute(f"SELECT {columns[name]} FROM {name} ORDER BY rowid").fetchall()
        for name in names
        if columns[name]
    }


async def fill(pw: Listener) -> str:
    """Traffic of every kind: a click, a created and an updated conversion with warnings, a
    POST body, rejected requests, a fired and delivered decision and filtered ones."""
    click = await pw.click(ref_id="ext-1", sub1="a")
    await pw.postback(clickid=click, type="Deposit", status="hold", sum="10", txid="tx-1")
    await pw.postback(clickid=click, type="Deposit", status="1", sum="12", txid="tx-1")
    await pw.postback(clickid=click, type="deposit", status="weird", sum="3")
    await pw.post("/postback", data={"clickid": click, "type": "Lead", "status": "approved"})
    await pw.postback(clickid="nobody", type="Deposit")
    await pw.postback(clickid="{clickid}")
    await pw.delivered(click)
    return click


async def api_views(pw: Listener, click: str) -> dict[str, Any]:
    return {
        "trace": await pw.trace(click),
        "by txid": await pw.trace("tx-1"),
        "conversions": (await pw.get("/api/conversions"))[1],
        "inbound": (await pw.get("/api/inbound"))[1],
    }


def shows_what_was_written(trace: dict[str, Any]) -> None:
    """The interned values read back as they were written."""
    decided = {
        (decision["postback"], decision["kind"], tuple(decision["reasons"]))
        for conversion in trace["conversions"]
        for decision in conversion["decisions"]
    }
    reasons = ("type 'deposit' is not one of: Deposit (types are case-sensitive)",)
    assert ("paid deposits", "s2s", (*reasons, "status 'other' is not one of: approved")) in decided
    for conversion in trace["conversions"]:  # a decision's time is its event's
        times = {event["at"] for event in conversion["history"]}
        assert {decision["at"] for decision in conversion["decisions"]} <= times
    first, *_, weird, posted = trace["inbound"][1:]
    assert (
        first["parsed"]["status"]
        == "status 'hold' is an alias of 'pending' (offer source 'AffNet')"
    )
    assert "status 'weird' maps to no known status" in weird["warnings"][0]
    assert (posted["method"], posted["path"], posted["remote"]) == (
        "POST",
        "/postback",
        "127.0.0.1",
    )
    assert posted["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert [event["status"] for event in trace["conversions"][0]["history"]] == [
        "pending",
        "approved",
    ]


def step7_copy(source: Path, target: Path) -> None:
    """A database at the version before step 8 holding every row of ``source``."""
    conn = sqlite3.connect(target, isolation_level=None)
    migrate(conn, up_to=OLD_VERSION)
    conn.execute("ATTACH DATABASE ? AS source", (str(source),))
    conn.execute("BEGIN")
    # config_version last: copying the configuration tables bumps it (their triggers)
    for name in sorted(rows(conn), key=lambda name: name == "config_version"):
        conn.execute(f"DELETE FROM main.{name}")
        # the columns of the old schema (later steps add some)
        columns = ", ".join(row[1] for row in conn.execute(f"PRAGMA main.table_info({name})"))
        conn.execute(f"INSERT INTO main.{name} SELECT {columns} FROM source.{name}")
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE source")
    conn.close()


def version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def read_all(path: Path, like: Path | None = None) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return rows(conn, like)
    finally:
        conn.close()


async def test_interned_texts_are_invisible_and_the_migration_keeps_every_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compact = tmp_path / "compact.db"
    pw = await start_listener(compact)
    await pw.configure(BASE_CONFIG)
    click = await fill(pw)
    before = await api_views(pw, click)
    await stop_listener(pw)
    shows_what_was_written(before["trace"])
    conn = sqlite3.connect(compact)
    (texts,) = conn.execute("SELECT count(*) FROM texts").fetchone()
    (stored_at,) = conn.execute("SELECT count(at) FROM decision_rows").fetchone()
    linked, stored_click = conn.execute(
        "SELECT count(*), count(click_id) FROM inbound_rows"
        " WHERE conversion_id IS NOT NULL AND reason = ''"
    ).fetchone()
    conn.close()
    assert texts > 10 and stored_at == 0  # texts were interned, decision times rebuilt
    assert linked and stored_click == 0  # a conversion's requests name its click

    # The same rows in plain step-7 tables read exactly as the views show them...
    old = tmp_path / "old.db"
    step7_copy(compact, old)
    assert version(old) == OLD_VERSION
    assert read_all(old) == read_all(compact, like=old)

    # ...and migrating them, a few rows a batch, keeps every value and every answer.
    monkeypatch.setattr(schema, "COPY_BATCH", 2)
    step7 = tmp_path / "step7.db"
    step7_copy(compact, step7)  # the shape to compare in
    kept = read_all(old)
    conn = sqlite3.connect(old)
    assert migrate(conn) == OLD_VERSION
    conn.close()
    assert version(old) == len(MIGRATIONS)
    assert read_all(old, like=step7) == kept
    pw = await start_listener(old)
    try:
        assert await api_views(pw, click) == before
    finally:
        await stop_listener(pw)


async def test_a_migration_stopped_half_way_goes_on_where_it_stopped(
    pw: Listener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(pw)
    await pw.store.close()
    old, step7 = tmp_path / "old.db", tmp_path / "step7.db"
    step7_copy(pw.store.path, old)
    step7_copy(pw.store.path, step7)  # the shape to compare in
    kept = read_all(old)
    monkeypatch.setattr(schema, "COPY_BATCH", 2)
    copy_batch, batches = schema._copy_batch, 0

    def dies_on_the_third_batch(conn: sqlite3.Connection, view: str) -> int:
        nonlocal batches
        batches += 1
        if batches == 3:
            raise KeyboardInterrupt  # the process stops in the middle of a transaction
        return copy_batch(conn, view)

    monkeypatch.setattr(schema, "_copy_batch", dies_on_the_third_batch)
    conn = sqlite3.connect(old)
    with pytest.raises(KeyboardInterrupt):
        migrate(conn)
    conn.close()
    first = next(iter(COMPACTED.values())).stored
    assert version(old) == OLD_VERSION
    assert read_all(old) == kept  # readers still see the old tables, whole
    conn = sqlite3.connect(old)
    assert conn.execute(f"SELECT count(*) FROM {first}").fetchone() == (4,)  # two batches
    monkeypatch.setattr(schema, "_copy_batch", copy_batch)
    migrate(conn)
    conn.close()
    assert version(old) == len(MIGRATIONS)
    assert read_all(old, like=step7) == kept


async def test_a_text_stored_by_a_rolled_back_job_is_not_trusted(tmp_path: Path) -> None:
    """A text stored by a job that failed is gone with its transaction: neither the failing
    job's batch-mates nor later batches may use its id, which another process can take."""
    async with Store(tmp_path / "pw.db") as store:

        def fails(conn: sqlite3.Connection) -> int:
            events.text_id(conn, "padding")
            events.text_id(conn, "new sentence")
            raise ValueError("this job fails")

        def looks_up(conn: sqlite3.Connection) -> int:
            return events.text_id(conn, "new sentence")

        failed, same_batch = await asyncio.gather(
            store.write(fails), store.write(looks_up), return_exceptions=True
        )
        assert isinstance(failed, ValueError) and isinstance(same_batch, int)
        with pytest.raises(ValueError):
            await store.write(fails)  # alone this time: its texts take the next free ids
        other = sqlite3.connect(store.path, isolation_level=None)  # another process's writes
        taken = [events.text_id(other, f"another process's text {n}") for n in range(3)]
        other.close()
        later = await store.write(looks_up)

        def value(conn: sqlite3.Connection, text_id: int) -> str | None:
            row = conn.execute("SELECT value FROM texts WHERE id = ?", (text_id,)).fetchone()
            return None if row is None else str(row[0])

        assert await store.read(lambda conn: value(conn, same_batch)) == "new sentence"
        assert await store.read(lambda conn: value(conn, later)) == "new sentence"
        assert later == same_batch and later not in taken


WRITER = """
import asyncio, sys
from store import events
from store.db import Store

async def main(path: str, who: int) -> None:
    async with Store(path) as store:
        for start in range(0, 600, 50):
            jobs = []
            for n in range(start, start + 50):
                def job(conn, n=n):
                    events.insert_decision(
                        conn, conversion_id=n, event_id=who, config_id=n % 3,
                        postback=f"config {n % 5}", kind="s2s", verdict="filtered",
                        reasons=[f"reason {n % 7}", f"shared {n % 11}"], warnings=[], at=n,
                    )
                jobs.append(store.write(job))
            await asyncio.gather(*jobs)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_two_processes_writing_one_database_intern_the_same_texts(tmp_path: Path) -> None:
    path = tmp_path / "pw.db"
    async with Store(path):
        pass  # migrated once, before both start
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(path), str(who), env=env
        )
        for who in (1, 2)
    ]
    assert [await writer.wait() for writer in writers] == [0, 0]
    conn = db.connect(path)
    decided = conn.execute(
        "SELECT event_id, conversion_id, postback, kind, reasons FROM decisions"
    ).fetchall()
    (dangling,) = conn.execute(
        "SELECT count(*) FROM decision_rows WHERE reasons_text NOT IN (SELECT id FROM texts)"
        " OR postback_text NOT IN (SELECT id FROM texts)"
    ).fetchone()
    conn.close()
    assert len(decided) == 1200 and dangling == 0
    for _, n, postback, kind, reasons in decided:
        assert (postback, kind) == (f"config {n % 5}", "s2s")
        assert json.loads(reasons) == [f"reason {n % 7}", f"shared {n % 11}"]


def wal_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def insert_sink_rows(conn: sqlite3.Connection) -> None:
    """About 60 KiB of WAL."""
    conn.executemany(
        "INSERT INTO sink_records (sink, received_at, method, path, query, headers,"
        " body, http_status) VALUES ('s', 0, 'GET', '/', ?, '{}', '', 200)",
        [(f"n={n}" * 20,) for n in range(200)],
    )


async def test_the_checkpointer_keeps_the_wal_bounded(tmp_path: Path) -> None:
    """Commits never checkpoint (wal_autocheckpoint is off): the checkpointer's passes do, and
    after each the WAL starts again from its beginning instead of growing round after round."""
    async with Store(tmp_path / "pw.db") as store:
        checkpointer = store.checkpointer
        assert checkpointer is not None
        sizes = []
        for _ in range(8):
            for _ in range(10):
                await store.write(insert_sink_rows)
            passes = checkpointer.checkpoints
            await until(lambda passes=passes: checkpointer.checkpoints >= passes + 2)
            sizes.append(wal_bytes(store.path))
        assert await store.read(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone())
    assert sizes[0] > 0
    assert max(sizes) <= sizes[0] * 1.5  # without the checkpointer: 8 times the first round


async def test_under_continuous_commits_the_writer_ends_the_wal_after_the_threads_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits back to back never let a checkpoint from another connection catch up with the
    WAL's end: past WAL_ASK_BYTES the writer asks the thread for a pass at once and ends the
    WAL itself, between two batches, once that pass is made, far below WAL_LIMIT_BYTES."""
    monkeypatch.setattr(db, "WAL_ASK_BYTES", 256 << 10)
    async with Store(tmp_path / "pw.db") as store:
        assert store.checkpointer is not None
        sizes = []
        for _ in range(300):
            await store.write(insert_sink_rows)
            sizes.append(db.wal_size(store.path))
        passes = store.checkpointer.checkpoints
    assert db.WAL_LIMIT_BYTES == 64 << 20
    assert max(sizes) > 256 << 10  # past the ask,
    assert max(sizes) <= 6 << 20  # and ended long before the limit: 18 MiB without the end
    assert passes >= 2


async def test_with_the_thread_stuck_the_writer_ends_the_wal_at_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the thread's passes the writer does not wait for one past WAL_LIMIT_BYTES."""
    monkeypatch.setattr(db, "WAL_ASK_BYTES", 256 << 10)
    monkeypatch.setattr(db, "WAL_LIMIT_BYTES", 512 << 10)
    async with Store(tmp_path / "pw.db") as store:
        assert store.checkpointer is not None
        store.checkpointer.stop()  # the worst case: the thread copies nothing
        sizes = []
        for _ in range(100):
            await store.write(insert_sink_rows)
            sizes.append(db.wal_size(store.path))
        (rows,) = await store.read(
            lambda c: c.execute("SELECT count(*) FROM sink_records").fetchone()
        )
    assert rows == 20_000  # 100 batches of about 60 KiB of WAL each: 6 MiB without the limit
    # after the first two: the WAL holds the new database's schema steps before them, and the
    # writer asks the thread for a pass after the first
    assert max(sizes[2:]) <= (512 << 10) + (128 << 10)


KILLED_CONFIG = BASE_CONFIG + '\n[listener]\nunknown_clicks = "attach:casino-fr"\n'


async def test_kill_9_under_load_loses_no_answered_postback(tmp_path: Path) -> None:
    """Every postback answered 2xx is in the database after the listener is killed with
    SIGKILL in the middle of a load, its WAL half checkpointed by the checkpointer."""
    config, path, port = tmp_path / "pw.toml", tmp_path / "pw.db", free_port()
    config.write_text(KILLED_CONFIG.replace("PORT", str(port)), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "tui", "serve", "--db", str(path), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    answered: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:

            async def up() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/api/health") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            for _ in range(400):
                if await up():
                    break
                await asyncio.sleep(0.05)

            async def send(worker: int) -> None:
                for n in range(10_000):
                    txid = f"w{worker}-{n}"
                    params = {"clickid": f"c{worker}-{n}", "txid": txid, "type": "Deposit"}
                    try:
                        async with http.get(
                            f"http://127.0.0.1:{port}/postback", params=params
                        ) as response:
                            if response.status == 200:
                                answered.append(txid)
                    except aiohttp.ClientError:
                        return  # killed

            senders = [asyncio.create_task(send(worker)) for worker in range(8)]
            await until(lambda: len(answered) >= 1500, timeout=120)
            os.kill(process.pid, signal.SIGKILL)
            await asyncio.gather(*senders)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert Path(f"{path}-wal").exists()  # killed, not closed: the WAL is still there
    conn = db.connect(path)
    stored = {str(row[0]) for row in conn.execute("SELECT txid FROM conversions")}
    conn.close()
    assert set(answered) <= stored
