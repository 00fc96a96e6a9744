"""store/read/links.py: every inbound request that names a click is found through the
click, its conversions' events, or the index of requests stored with a reason, as a
scan of every request would find it."""

from __future__ import annotations

import sqlite3

from store import db
from store.read import links, queries
from tests.helpers import BASE_CONFIG, Listener

# duplicates without a txid are ignored: an ignored repeat names a conversion, and no event
IGNORING = BASE_CONFIG.replace('duplicates = "update"', 'duplicates = "ignore"')


async def traffic(pw: Listener) -> list[str]:
    """Every way a request comes to name a click; the click ids it used."""
    await pw.configure(IGNORING)
    first = await pw.click(ref_id="ext-1")
    second = await pw.click()
    await pw.postback(clickid=first, type="Deposit", status="pending", txid="tx-1")
    await pw.postback(clickid=first, type="Deposit", status="approved", txid="tx-1")  # update
    await pw.postback(clickid=first, type="Lead")
    await pw.postback(clickid=first, type="Lead")  # ignored: same click and type, no txid
    await pw.postback(clickid="nobody", type="Lead")  # refused: unknown click
    await pw.postback(clickid=second, type="Deposit", status="bogus-status", sum="x")
    status, replayed = await pw.post("/api/inbound/3/replay")
    assert status in (200, 201), replayed
    status, manual = await pw.post("/api/conversions", json={"click_id": second, "type": "Lead"})
    assert status == 201, manual
    return [first, second, "nobody"]


def scanned(conn: sqlite3.Connection, click_id: str) -> list[int]:
    """What a scan of every request finds: each one that names the click."""
    rows = conn.execute("SELECT id FROM inbound NOT INDEXED WHERE click_id = ?", (click_id,))
    return sorted(int(row[0]) for row in rows)


async def test_a_click_reaches_every_request_that_names_it(pw: Listener) -> None:
    click_ids = await traffic(pw)
    conn = db.connect(pw.store.path)
    try:
        endpoints = {row[0] for row in conn.execute("SELECT endpoint FROM inbound")}
        assert {"click", "postback", "manual"} <= endpoints
        reasons = [row[0] for row in conn.execute("SELECT reason FROM inbound WHERE reason != ''")]
        assert any(reason.startswith("duplicate of conversion") for reason in reasons)
        for click_id in click_ids:
            expected = scanned(conn, click_id)
            assert expected, click_id
            found = conn.execute(
                f"WITH ids(id) AS (SELECT ?) {links.of_clicks('ids')}", (click_id,)
            )
            assert sorted(int(row[0]) for row in found) == expected, click_id
            trace = queries.trace(conn, click_id)
            assert [request.id for request in trace.inbound] == expected, click_id
    finally:
        conn.close()


async def test_a_conversion_reaches_its_requests_and_its_ignored_repeats(pw: Listener) -> None:
    await traffic(pw)
    conn = db.connect(pw.store.path)
    try:
        conversion_ids = [int(row[0]) for row in conn.execute("SELECT id FROM conversions")]
        assert len(conversion_ids) >= 3
        for conversion_id in conversion_ids:
            expected = sorted(
                int(row[0])
                for row in conn.execute(
                    "SELECT id FROM inbound NOT INDEXED WHERE conversion_id = ?", (conversion_id,)
                )
            )
            assert expected, conversion_id
            detail = queries.conversion_detail(conn, conversion_id)
            assert detail is not None
            assert [request.id for request in detail.inbound] == expected, conversion_id
    finally:
        conn.close()
