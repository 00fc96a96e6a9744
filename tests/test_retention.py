"""Retention (store/retention.py, `postwatch prune`, `[storage] keep_days`): old clicks,
inbound requests and conversions go, with what hangs off them, in small steps while
postbacks keep arriving; pending deliveries and what they need stay; the file gives its
space back; the header totals stay equal to the real counts."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from store import events, retention, totals
from store.config import parse
from store.db import Store, connect
from store.records import InboundRequest
from store.schema import migrate
from tests.helpers import (
    Listener,
    Target,
    config_for,
    hold_answers,
    start_listener,
    stop_listener,
    totals_counted,
    totals_stored,
    until,
)

DAY = 86400.0
GROWING = (
    "clicks",
    "inbound",
    "conversions",
    "conversion_events",
    "decisions",
    "deliveries",
    "sink_records",
)


def backdate(conn: sqlite3.Connection, days: float) -> None:
    """Move every row now in the database ``days`` into the past."""
    shift = days * DAY
    for statement in (
        "UPDATE clicks SET created_at = created_at - ?",
        "UPDATE inbound SET received_at = received_at - ?",
        "UPDATE conversions SET created_at = created_at - ?1, updated_at = updated_at - ?1",
        "UPDATE conversion_events SET at = at - ?",
        "UPDATE decisions SET at = at - ?",
        "UPDATE deliveries SET due_at = due_at - ?1, sent_at = sent_at - ?1",
        "UPDATE sink_records SET received_at = received_at - ?",
    ):
        conn.execute(statement, (shift,))


def rows(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in GROWING}


async def conversion(pw: Listener, ref: str, status: str = "approved", **params: Any) -> str:
    click = await pw.click(ref_id=ref)
    answer, body = await pw.postback(clickid=click, type="Deposit", status=status, **params)
    assert answer == 200, body
    return click


async def test_prune_deletes_the_old_keeps_the_recent_and_the_pending_and_dry_runs_agree(
    tmp_path: Path, target: Target
) -> None:
    pw = await start_listener(tmp_path / "pw.db")
    try:
        # a held attempt stays in flight: no timeout during the test
        await pw.configure(
            config_for(target.port, "/pb?id={external_id}").replace("timeout = 1", "timeout = 60")
        )
        delivered = await conversion(pw, "old-delivered", txid="t-1")
        await pw.delivered(delivered)
        lonely = await pw.click(ref_id="old-click-only")
        await pw.postback(clickid="nobody", type="Lead")  # rejected, old
        updated = await conversion(pw, "old-but-updated", "pending", txid="t-2", sum="5")
        await pw.delivered(updated)
        release = hold_answers(target)
        pending = await conversion(pw, "old-pending", txid="t-3")
        await until(lambda: len(target.received) == 3)  # its attempt is held in flight
        await pw.store.write(lambda conn: backdate(conn, 40))
        status, _ = await pw.postback(
            clickid=updated, type="Deposit", status="approved", txid="t-2"
        )
        assert status == 200  # today: that conversion is not old any more
        recent = await pw.click(ref_id="recent")

        before = await pw.store.read(rows)
        cut = time.time() - 30 * DAY
        dry = await retention.prune(pw.store, cut, dry_run=True)
        assert await pw.store.read(rows) == before  # a dry run changes nothing
        pruned = await retention.prune(pw.store, cut)
        after = await pw.store.read(rows)

        assert pruned.deleted == dry.deleted
        assert pruned.kept_pending == dry.kept_pending == 1
        assert {t: before[t] - after[t] for t in GROWING} == {
            "clicks": 2,  # the delivered one's and the lonely one
            "inbound": 4,  # the two clicks', the delivered postback, the rejected one
            "conversions": 1,
            "conversion_events": 1,
            "decisions": 1,
            "deliveries": 1,
            "sink_records": 0,
        }
        assert vars(pruned.deleted) == {
            "conversions": 1,
            "conversion_events": 1,
            "decisions": 1,
            "deliveries": 1,
            "clicks": 2,
            "inbound": 4,
            "sink_records": 0,
            "test_postbacks": 0,
        }
        assert (await pw.trace(delivered))["click"] is None
        assert (await pw.trace(lonely))["click"] is None
        kept = await pw.trace(updated)
        assert [c["status"] for c in kept["conversions"]] == ["approved"]
        assert len(kept["inbound"]) == 3  # its click, its old postback and today's
        assert (await pw.trace(recent))["click"] is not None
        assert await pw.store.read(totals.read) == await pw.store.read(totals_counted)
        assert await pw.store.read(totals_stored) == await pw.store.read(totals_counted)

        # the kept delivery is delivered later; then the next prune takes its conversion
        release.set()
        await pw.delivered(pending)
        assert (await pw.outcomes(pending)) == [["delivered"]]
        again = await retention.prune(pw.store, cut)
        assert again.deleted.conversions == 1 and again.kept_pending == 0
        assert (await pw.trace(pending))["click"] is None
        assert await pw.store.read(totals_stored) == await pw.store.read(totals_counted)
    finally:
        await stop_listener(pw)


async def test_prune_while_postbacks_arrive_loses_none(tmp_path: Path, target: Target) -> None:
    pw = await start_listener(tmp_path / "pw.db")
    try:
        await pw.configure(config_for(target.port, "/pb?id={external_id}"))
        old = 250
        for start in range(0, old, 50):
            await asyncio.gather(*(conversion(pw, f"old-{i}") for i in range(start, start + 50)))
        await until(lambda: len(target.received) == old)
        await pw.store.write(lambda conn: backdate(conn, 40))

        async def ingest() -> list[str]:
            return [await conversion(pw, f"new-{i}") for i in range(60)]

        pruning = asyncio.create_task(retention.prune(pw.store, time.time() - 30 * DAY))
        new = await ingest()
        pruned = await pruning
        assert pruned.steps > 4  # many small transactions, not one
        assert pruned.deleted.conversions == old and pruned.deleted.clicks == old
        now = await pw.store.read(rows)
        assert now["conversions"] == 60 and now["clicks"] == 60
        for click in new:
            trace = await pw.trace(click)
            assert trace["click"] is not None and len(trace["conversions"]) == 1
        assert await pw.store.read(totals_stored) == await pw.store.read(totals_counted)
    finally:
        await stop_listener(pw)


def _test_postbacks(conn: sqlite3.Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT url FROM test_postbacks ORDER BY id")]


async def test_test_postbacks_go_by_their_age(tmp_path: Path, target: Target) -> None:
    pw = await start_listener(tmp_path / "pw.db")
    try:
        await pw.configure(config_for(target.port, "/pb?v={external_id}"))
        sent = "/api/postbacks/all events/test"
        status, old = await pw.post(sent, json={"values": {"external_id": "old"}})
        assert status == 200, old
        await pw.store.write(
            lambda conn: conn.execute(
                "UPDATE test_postbacks SET sent_at = sent_at - ?", (40 * DAY,)
            )
        )
        status, recent = await pw.post(sent, json={"values": {"external_id": "recent"}})
        assert status == 200, recent
        cut = time.time() - 30 * DAY

        dry = await retention.prune(pw.store, cut, dry_run=True)
        assert dry.deleted.test_postbacks == 1
        assert await pw.store.read(_test_postbacks) == [old["url"], recent["url"]]
        assert "1 test postbacks" in retention.describe(dry)[0]

        pruned = await retention.prune(pw.store, cut)
        assert pruned.deleted.test_postbacks == 1
        assert await pw.store.read(_test_postbacks) == [recent["url"]]
        assert pruned.deleted.conversions == pruned.deleted.clicks == 0
    finally:
        await stop_listener(pw)


async def test_after_pruning_everything_new_rows_are_counted(tmp_path: Path) -> None:
    """Pruning the newest rows too frees their ids, which new rows then reuse: the header
    totals still count them."""
    pw = await start_listener(tmp_path / "pw.db")
    try:
        await pw.configure(config_for(9, "/pb"))  # nothing listens there: attempts fail
        for i in range(3):
            await pw.delivered(await conversion(pw, f"c-{i}"))
        pruned = await retention.prune(pw.store, time.time() + 60)
        assert pruned.deleted.clicks == 3
        assert await pw.store.read(rows) == dict.fromkeys(GROWING, 0)
        await conversion(pw, "after")
        assert await pw.store.read(totals_stored) == await pw.store.read(totals_counted)
        assert (await pw.store.read(totals_counted)).clicks == 1
    finally:
        await stop_listener(pw)


def fill_old(conn: sqlite3.Connection, n: int) -> None:
    """``n`` old rejected requests with large bodies: megabytes to give back."""
    old = time.time() - 40 * DAY
    for i in range(n):
        request = InboundRequest(
            old, "postback", "POST", "/postback", "", f"{i:06d}" + "x" * 2000, "127.0.0.1", {}
        )
        events.insert_inbound(conn, request, outcome="rejected", reason="", http_status=400)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )


async def test_the_file_shrinks_after_prune(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    async with Store(db):
        pass
    conn = connect(db)
    fill_old(conn, 3000)
    conn.close()
    big = retention.size_on_disk(db)
    dry = run_cli("prune", "--older-than", "30d", "--dry-run", "--db", str(db))
    assert dry.returncode == 0, dry.stderr
    assert "would delete" in dry.stdout and "3000 inbound requests" in dry.stdout
    assert retention.size_on_disk(db) == big
    done = run_cli("prune", "--older-than", "30", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "deleted what is older than" in done.stdout and "3000 inbound requests" in done.stdout
    assert "space given back" in done.stdout
    assert retention.size_on_disk(db) < big / 4
    conn = connect(db)
    assert totals_stored(conn) == totals_counted(conn) == totals.Totals()
    conn.close()


def test_an_older_database_is_rewritten_once_with_vacuum(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)  # as postwatch made it before
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn)
    fill_old(conn, 3000)
    conn.close()
    big = retention.size_on_disk(db)
    pruned = run_cli("prune", "--older-than", "30d", "--db", str(db))
    assert pruned.returncode == 0, pruned.stderr
    assert "created without incremental vacuum" in pruned.stdout
    assert "postwatch prune --vacuum" in pruned.stdout
    assert retention.size_on_disk(db) >= big * 0.9  # freed inside the file, not given back
    vacuumed = run_cli("prune", "--older-than", "30d", "--vacuum", "--db", str(db))
    assert vacuumed.returncode == 0, vacuumed.stderr
    assert "rewrote the database with VACUUM" in vacuumed.stdout
    assert retention.size_on_disk(db) < big / 4
    conn = connect(db)
    assert retention.incremental(conn)
    conn.close()


def test_prune_says_what_an_age_must_look_like(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    connect(db).close()
    result = run_cli("prune", "--older-than", "soon", "--db", str(db))
    assert result.returncode == 2
    assert "'soon' is not an age" in result.stderr
    missing = run_cli("prune", "--older-than", "30d", "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 1 and "no database at" in missing.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * DAY), ("30", 30 * DAY), ("12h", 12 * 3600.0), ("90m", 5400.0), ("0", 0.0)],
)
def test_ages(text: str, seconds: float) -> None:
    assert retention.parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "-1d", "3w", "inf", "nan", "1e999"])
def test_not_ages(text: str) -> None:
    with pytest.raises(ValueError, match="is not an age"):
        retention.parse_age(text)


async def test_keep_days_in_the_config_prunes_at_start(
    tmp_path: Path, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "pw.db"
    config = config_for(target.port, "/pb") + "\n[storage]\nkeep_days = 30\n"
    pw = await start_listener(db)
    try:
        await pw.configure(config)
        click = await conversion(pw, "old")
        await pw.delivered(click)
        await pw.store.write(lambda conn: backdate(conn, 40))
    finally:
        await stop_listener(pw)
    settings = parse(config.replace("PORT", "0")).settings
    assert settings.keep_days == 30
    caplog.set_level(logging.INFO, logger="postwatch.retention")
    pw = await start_listener(db, settings)
    try:
        await pw.settle(lambda: _no_click(pw, click), timeout=10)
        await until(lambda: "pruned: deleted what is older than" in caplog.text)
        assert "1 conversions" in caplog.text
        assert await pw.store.read(totals_stored) == await pw.store.read(totals_counted)
    finally:
        await stop_listener(pw)


async def _no_click(pw: Listener, click: str) -> bool:
    return (await pw.trace(click))["click"] is None


async def test_every_step_reads_through_an_index(tmp_path: Path, target: Target) -> None:
    from tests.plans import executed, full_scans

    pw = await start_listener(tmp_path / "pw.db")
    try:
        await pw.configure(config_for(target.port, "/pb"))
        await pw.delivered(await conversion(pw, "a"))
        await pw.postback(clickid="nobody")
    finally:
        await stop_listener(pw)
    conn = connect(tmp_path / "pw.db")
    cut = time.time() + 60
    statements: list[str] = []
    for job in retention.PASSES:
        for dry_run in (True, False):
            conn.execute("BEGIN IMMEDIATE")
            statements += executed(
                conn, lambda c, j=job, d=dry_run: j(c, cut=cut, after=0, scan=50, dry_run=d)
            )
            conn.execute("ROLLBACK")
    scans = {sql: full_scans(conn, sql) for sql in statements}
    assert len(statements) > 10
    assert not {sql: lines for sql, lines in scans.items() if lines}
    conn.close()
