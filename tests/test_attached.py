"""Clicks attached to postbacks (``unknown_clicks = "attach:…"``): their ids are indexed by
blocks of sequence numbers (schema step 19), and the writer's filter of them
(store/attached.py) says which ids are new. Every test here breaks if the filter misses an id
some process attached: the postback would make a second click of the same id."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
from pathlib import Path

import aiohttp

from store import db, events
from store.attached import FIRST_ROOM, AttachedIds
from store.db import Store
from store.records import Click
from store.schema import migrate
from tests.helpers import ATTACH_CONFIG, serve_process, start_listener, stop_listener, until_up

CAMPAIGN = (
    "INSERT INTO campaigns (key, name, traffic_source_id, offer_source_id) VALUES ('c', 'C', 1, 1)"
)


def attached_count(path: Path, click_id: str) -> int:
    conn = sqlite3.connect(path)
    try:
        (count,) = conn.execute("SELECT count(*) FROM clicks WHERE id = ?", (click_id,)).fetchone()
        return int(count)
    finally:
        conn.close()


def test_the_filter_holds_what_it_learnt_and_noted_and_little_else(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "pw.db")
    migrate(conn)
    conn.execute(CAMPAIGN)
    for n in range(3):
        events.insert_click(conn, Click(f"net-{n}", 1, "", {}, 1.0), None)
    events.insert_click(conn, Click("own-1", 1, "", {}, 1.0), 7)  # recorded at /click
    ids = AttachedIds()
    assert ids.may_hold("anything")  # not learnt: nothing is ruled out
    ids.learn(conn)
    ids.refresh(conn)
    assert [ids.may_hold(f"net-{n}") for n in range(3)] == [True] * 3
    assert len(ids) == 3  # own clicks are not in it
    new = [secrets.token_hex(8) for _ in range(2000)]
    assert sum(ids.may_hold(one) for one in new) <= 10
    many = [f"more-{n}" for n in range(2 * FIRST_ROOM + 10)]  # past the first layers' room
    for one in many:
        ids.note(one)
    assert all(ids.may_hold(one) for one in many)
    ids.end()
    assert ids.may_hold("anything")  # between transactions nothing is trusted
    conn.close()


async def test_an_attached_click_is_found_after_a_restart(tmp_path: Path) -> None:
    """The listener learns the attached ids as it starts: a later postback for one updates
    its conversion."""
    path = tmp_path / "pw.db"
    pw = await start_listener(path)
    await pw.configure(ATTACH_CONFIG)
    _, first = await pw.postback(clickid="net-1", type="Deposit", status="pending", txid="D1")
    await stop_listener(pw)
    pw = await start_listener(path)
    try:
        _, body = await pw.postback(clickid="net-1", type="Deposit", status="approved", txid="D1")
    finally:
        await stop_listener(pw)
    assert (body["change"], body["conversion_id"]) == ("updated", first["conversion_id"])
    assert attached_count(path, "net-1") == 1


async def test_postbacks_of_one_new_id_in_one_batch_attach_one_click(tmp_path: Path) -> None:
    """Postbacks that arrive together share a transaction: the first attaches the click, and
    the filter holds it at once for the others."""
    path = tmp_path / "pw.db"
    pw = await start_listener(path)
    try:
        await pw.configure(ATTACH_CONFIG)
        batches = pw.store.batches
        answers = await asyncio.gather(
            *(pw.postback(clickid="burst", type="Deposit", txid="B1") for _ in range(8))
        )
        assert pw.store.batches - batches < 8  # some did share a batch
    finally:
        await stop_listener(pw)
    assert sorted(body["change"] for _, body in answers) == ["created"] + ["updated"] * 7
    assert attached_count(path, "burst") == 1


async def test_an_attached_click_is_found_in_every_block(tmp_path: Path) -> None:
    """Attached ids are keyed by their click's block of 32,768 sequence numbers: a click
    attached two and four blocks back is still found, by a postback and by a trace."""
    path = tmp_path / "pw.db"
    pw = await start_listener(path)
    try:
        await pw.configure(ATTACH_CONFIG)
        conn = db.connect(path)
        try:
            for n, skipped_to in enumerate((None, 70_000, 140_000)):
                if skipped_to is not None:  # the next click's sequence number is two blocks on
                    conn.execute(
                        "INSERT INTO clicks (seq, id, campaign_id, created_at, inbound_id)"
                        " SELECT ?, 'filler-' || ?, id, 1.0, 1 FROM campaigns LIMIT 1",
                        (skipped_to, skipped_to),
                    )
                await pw.postback(clickid=f"net-{n}", type="Lead", txid=f"L{n}")
            seqs = [
                conn.execute("SELECT seq FROM clicks WHERE id = ?", (f"net-{n}",)).fetchone()[0]
                for n in range(3)
            ]
        finally:
            conn.close()
        assert [n >> 15 for n in seqs] == [0, 2, 4]
        for n in range(3):
            _, body = await pw.postback(clickid=f"net-{n}", type="Lead", txid=f"L{n}")
            assert body["change"] == "updated", n
            assert (await pw.trace(f"net-{n}"))["click"]["id"] == f"net-{n}"
    finally:
        await stop_listener(pw)
    assert [attached_count(path, f"net-{n}") for n in range(3)] == [1, 1, 1]


async def test_a_click_another_process_attached_is_found(tmp_path: Path) -> None:
    """Two listeners on one database: each writer reads the clicks the other attached at
    the start of its next transaction, so neither makes a second click of the same id."""
    path = tmp_path / "pw.db"
    pw = await start_listener(path)  # learns now, before the other process attaches
    try:
        await pw.configure(ATTACH_CONFIG)
        other, port = serve_process(path)
        try:
            await until_up(port)
            async with aiohttp.ClientSession() as http:
                for n in range(3):
                    url = f"http://127.0.0.1:{port}/postback"
                    params = {"clickid": f"far-{n}", "type": "Deposit", "txid": f"F{n}"}
                    async with http.get(url, params=params) as response:
                        assert (await response.json())["change"] == "created"
        finally:
            other.terminate()
            _, err = other.communicate(timeout=10)
            assert other.returncode == 0, err
        for n in range(3):
            _, body = await pw.postback(clickid=f"far-{n}", type="Deposit", txid=f"F{n}")
            assert body["change"] == "updated", n
    finally:
        await stop_listener(pw)
    assert [attached_count(path, f"far-{n}") for n in range(3)] == [1, 1, 1]


async def test_a_rolled_back_attach_does_not_hide_the_next_writers_click(
    tmp_path: Path,
) -> None:
    """A writer's transaction that attached a click and rolled back gives its sequence number
    back; another writer's click may take it. The first writer still reads that click."""
    path = tmp_path / "pw.db"
    async with Store(path) as first, Store(path) as second:
        await first.write(lambda conn: conn.execute(CAMPAIGN))
        await first.learn_attached_ids()

        def attach_and_fail(conn: sqlite3.Connection) -> None:
            events.insert_click(conn, Click("undone", 1, "", {}, 1.0), None)
            raise RuntimeError("the job fails after attaching")

        failed = first.write(attach_and_fail)
        with contextlib.suppress(RuntimeError):
            await failed
        seq = await second.write(
            lambda conn: events.insert_click(conn, Click("theirs", 1, "", {}, 1.0), None)
        )
        assert seq == 1  # the number the rolled-back click had
        found = await first.write(lambda conn: events.get_click(conn, "theirs"))
        gone = await first.write(lambda conn: events.get_click(conn, "undone"))
    assert found is not None and found.seq == 1
    assert gone is None


async def test_a_database_of_step_18_keeps_its_clicks_and_finds_them(tmp_path: Path) -> None:
    """Step 19 makes the clicks table again: every click keeps its sequence number, and both
    kinds are found by their id."""
    path = tmp_path / "pw.db"
    conn = db.connect(path)
    migrate(conn, up_to=18)
    conn.execute(CAMPAIGN)
    conn.executescript(
        """
        INSERT INTO clicks (seq, id, campaign_id, created_at, inbound_id)
            VALUES (5, 'own', 1, 1.0, 3), (9, 'net', 1, 2.0, NULL);
        """
    )
    assert migrate(conn) == 18
    assert [
        (c.id, c.seq) for c in (events.get_click(conn, "own"), events.get_click(conn, "net"))
    ] == [
        ("own", 5),
        ("net", 9),
    ]
    conn.execute("INSERT INTO clicks (id, campaign_id, created_at) VALUES ('next', 1, 3.0)")
    assert events.get_click(conn, "next").seq == 10  # type: ignore[union-attr]
    conn.close()
