"""The header totals are counters kept by the writer (store/totals.py): they equal the real
counts after ingest through real listeners, from one process or two, and after rows written
by something else; the schema step that adds them counts what a database already holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from store import events, totals
from store.db import Store, connect
from store.records import InboundRequest
from store.schema import MIGRATIONS, migrate
from tests.helpers import (
    BASE_CONFIG,
    Listener,
    serve_process,
    start_listener,
    stop_listener,
    totals_counted,
    totals_stored,
    until_up,
)


async def traffic(pw: Listener, n: int, campaign: str = "casino-fr") -> None:
    """Clicks, conversions, updates, rejected postbacks and a wrong path."""
    for i in range(n):
        click = await pw.click(campaign, ref_id=f"ext-{i}")
        await pw.postback(clickid=click, type="Deposit", status="2", sum="10", txid=f"t-{i}")
        await pw.postback(clickid=click, type="Deposit", status="1", txid=f"t-{i}")
        await pw.postback(clickid=f"nobody-{i}", type="Lead")
    await pw.get("/nowhere")


async def test_the_totals_equal_the_real_counts_after_ingest(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    pw = await start_listener(db)
    try:
        await pw.configure(BASE_CONFIG)
        await traffic(pw, 5)
        read = await pw.store.read(totals.read)
        real = await pw.store.read(totals_counted)
        kept = await pw.store.read(totals_stored)
    finally:
        await stop_listener(pw)
    assert read == real == kept
    assert real == totals.Totals(clicks=5, conversions=5, inbound=21, rejected=6, postbacks=15)


async def _process_traffic(http: aiohttp.ClientSession, port: int, n: int) -> None:
    base = f"http://127.0.0.1:{port}"
    for i in range(n):
        async with http.get(f"{base}/click/sample", params={"ref_id": f"p-{i}"}) as response:
            click = (await response.json())["clickid"]
        async with http.get(
            f"{base}/postback", params={"clickid": click, "type": "Lead", "status": "1"}
        ):
            pass
        async with http.get(f"{base}/postback", params={"clickid": "{clickid}"}):
            pass


async def test_two_processes_on_one_database_each_add_their_own_batches(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    process, port = serve_process(db)
    try:
        async with aiohttp.ClientSession() as http:
            await until_up(port)
            pw = await start_listener(db)  # the second process: this test's own listener
            try:
                await asyncio.gather(_process_traffic(http, port, 8), traffic(pw, 8, "sample"))
            finally:
                await stop_listener(pw)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
    conn = connect(db)
    try:
        assert totals_stored(conn) == totals_counted(conn) == totals.read(conn)
        assert totals_counted(conn).clicks == 16
        assert totals_counted(conn).rejected == 8 + 9
    finally:
        conn.close()


async def test_rows_written_by_something_else_are_counted(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    async with Store(db) as store:
        outside = connect(db)
        request = InboundRequest(1, "postback", "GET", "/postback", "", "", "127.0.0.1", {})
        events.insert_inbound(outside, request, outcome="rejected", reason="", http_status=400)
        outside.close()
        # read adds what no batch counted yet ...
        assert await store.read(totals.read) == totals.Totals(inbound=1, rejected=1, postbacks=1)
        assert await store.read(totals_stored) == totals.Totals()
        # ... and the next batch counts it into the counters
        await store.write(lambda conn: None)
        assert await store.read(totals_stored) == totals.Totals(inbound=1, rejected=1, postbacks=1)


def test_the_schema_step_counts_what_the_database_holds(tmp_path: Path) -> None:
    conn = connect(tmp_path / "old.db")
    step = next(i for i, script in enumerate(MIGRATIONS) if "CREATE TABLE totals" in script)
    for script in MIGRATIONS[:step]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {step}")
    conn.executescript(
        """
        INSERT INTO traffic_sources (id, name) VALUES (1, 'T');
        INSERT INTO offer_sources (id, name) VALUES (1, 'O');
        INSERT INTO campaigns (id, key, name, traffic_source_id, offer_source_id)
            VALUES (1, 'c', 'C', 1, 1);
        INSERT INTO clicks (id, campaign_id, created_at) VALUES ('a', 1, 1), ('b', 1, 2);
        INSERT INTO conversions (click_id, campaign_id, status, currency, created_at,
            updated_at) VALUES ('a', 1, 'approved', 'USD', 1, 1);
        INSERT INTO inbound (received_at, endpoint, method, path, query, body, remote, headers,
            outcome, http_status) VALUES
            (1, 'click', 'GET', '/click/c', '', '', '', '{}', 'accepted', 200),
            (2, 'postback', 'GET', '/postback', '', '', '', '{}', 'accepted', 200),
            (3, 'postback', 'GET', '/postback', '', '', '', '{}', 'rejected', 404);
        """
    )
    migrate(conn)
    assert totals_stored(conn) == totals_counted(conn)
    assert totals_stored(conn) == totals.Totals(
        clicks=2, conversions=1, inbound=3, rejected=1, postbacks=2
    )
    conn.close()


class Collector:
    """Stands where the dashboard app receives the feed's messages."""

    def __init__(self) -> None:
        self.messages: list[object] = []

    def post_message(self, message: object) -> bool:
        self.messages.append(message)
        return True


async def test_the_feed_posts_the_totals_and_the_size_on_disk(tmp_path: Path) -> None:
    from typing import cast

    from textual.message_pump import MessagePump

    from store import retention
    from tui.feed import Feed, size_text
    from tui.messages import StatsUpdated

    pw = await start_listener(tmp_path / "pw.db")
    try:
        await pw.configure(BASE_CONFIG)
        await traffic(pw, 2)
        target = Collector()
        low = retention.size_on_disk(pw.store.path)  # deliveries may still write: it only grows
        await Feed(pw.store, cast(MessagePump, target), clock=lambda: 0.0).check()
        high = retention.size_on_disk(pw.store.path)
        (stats,) = [m.stats for m in target.messages if isinstance(m, StatsUpdated)]
        real = await pw.store.read(totals_counted)
        assert (stats.clicks, stats.conversions, stats.inbound, stats.rejected) == (
            real.clicks,
            real.conversions,
            real.inbound,
            real.rejected,
        )
        assert 0 < low <= stats.size <= high
    finally:
        await stop_listener(pw)
    assert size_text(256 * 1024) == "0.2 MiB"
    assert size_text(1536 * 1024 * 1024) == "1.5 GiB"
