"""Inbound requests as real networks and proxies send them: bodies in pieces, chunked bodies
over the cap, wrong paths, deep JSON, a locked database, forwarded addresses, slow clients."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from listener.app import start
from store.db import Store
from store.records import Settings
from tests.helpers import BASE_CONFIG, Listener, start_listener, stop_listener


async def raw_request(port: int, *pieces: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send a request in separate TCP segments (a pause between them) and read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for index, piece in enumerate(pieces):
        if index:
            await asyncio.sleep(0.05)  # so that the listener sees the pieces apart
        writer.write(piece)
        await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


def head(method: str, path: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunks(*parts: bytes) -> bytes:
    """Parts of a chunked body (the last chunk, ``b""``, ends it)."""
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)


async def newest_inbound(pw: Listener) -> dict[str, Any]:
    status, rows = await pw.get("/api/inbound", limit=1)
    assert status == 200
    return dict(rows[0])


async def test_a_json_body_in_two_segments_is_read_whole(pw: Listener) -> None:
    clickid = await pw.click()
    body = json.dumps({"clickid": clickid, "type": "Deposit", "sum": "12.5"}).encode()
    first, second = body[:10], body[10:]
    status, _, answer = await raw_request(
        pw.port,
        head("POST", "/postback", Content_Type="application/json", Content_Length=str(len(body)))
        + first,
        second,
    )
    assert status == 200, answer
    assert json.loads(answer)["conversion_id"]
    assert (await newest_inbound(pw))["body"] == body.decode()


async def test_a_form_body_whose_click_id_comes_in_the_second_segment(pw: Listener) -> None:
    clickid = await pw.click()
    body = f"type=Deposit&sum=3&clickid={clickid}".encode()
    status, _, answer = await raw_request(
        pw.port,
        head(
            "POST",
            "/postback",
            Content_Type="application/x-www-form-urlencoded",
            Content_Length=str(len(body)),
        )
        + body[:12],
        body[12:],
    )
    assert status == 200, answer
    trace = await pw.trace(clickid)
    assert [c["payout"] for c in trace["conversions"]] == [3.0]


async def test_a_chunked_body_is_read_in_its_chunks_and_capped(tmp_path: Path) -> None:
    listener = await start_listener(tmp_path / "pw.db", Settings(max_body=1024))
    try:
        await listener.configure(BASE_CONFIG)
        clickid = await listener.click()
        form = f"clickid={clickid}&type=Lead".encode()
        status, _, _ = await raw_request(
            listener.port,
            head("POST", "/postback", Transfer_Encoding="chunked") + chunks(form[:5]),
            chunks(form[5:]),
            chunks(b""),
        )
        assert status == 200
        assert (await newest_inbound(listener))["body"] == form.decode()

        big = b"x" * 600
        status, _, answer = await raw_request(
            listener.port,
            head("POST", "/postback", Transfer_Encoding="chunked") + chunks(big, big, big, b""),
        )
        assert status == 413 and b"over the limit of 1024 bytes" in answer
        row = await newest_inbound(listener)
        assert row["outcome"] == "rejected" and "over the limit" in row["reason"]
        assert len(row["body"]) == 1024  # kept up to the cap
    finally:
        await stop_listener(listener)


@pytest.mark.parametrize(
    ("method", "path", "status", "says"),
    [
        ("GET", "/postback/", 404, "did you mean /postback?"),
        ("GET", "/Postback?clickid=1", 404, "did you mean /postback?"),
        ("GET", "/pb?clickid=1", 404, "conversions go to /postback?clickid="),
        ("PUT", "/postback", 405, "/postback does not take PUT: use GET or POST"),
        ("DELETE", "/click/casino-fr", 405, "does not take DELETE"),
        ("GET", "/api/nothing", 404, "no API endpoint is at /api/nothing"),
    ],
)
async def test_a_wrong_path_or_method_is_stored_and_answered_in_json(
    pw: Listener, method: str, path: str, status: int, says: str
) -> None:
    async with pw.session.request(method, pw.base + path) as response:
        assert response.status == status
        error = (await response.json())["error"]
    assert says in error
    row = await newest_inbound(pw)
    assert (row["method"], row["outcome"], row["reason"]) == (method, "rejected", error)
    assert row["path"] == path.partition("?")[0]


async def test_a_long_request_line_is_kept(pw: Listener) -> None:
    clickid = await pw.click()
    status, body = await pw.postback(clickid=clickid, type="Lead", note="n" * 20_000)
    assert status == 200, body
    assert len((await newest_inbound(pw))["query"]) > 20_000


async def test_deep_json_is_refused_with_400_and_stored(pw: Listener) -> None:
    body = "[" * 1000 + "]" * 1000
    deep = '{"clickid": "c1", "x": ' + body + "}"
    status, answer = await pw.post(
        "/postback", data=deep, headers={"Content-Type": "application/json"}
    )
    assert status == 400 and "nested too deeply" in answer["error"]
    row = await newest_inbound(pw)
    assert row["outcome"] == "rejected" and row["body"] == deep


async def test_a_locked_database_answers_503_with_retry_after(pw: Listener) -> None:
    clickid = await pw.click()
    await pw.store.write(lambda conn: conn.execute("PRAGMA busy_timeout = 100"))
    blocker = sqlite3.connect(pw.store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        async with pw.session.get(
            pw.base + "/postback", params={"clickid": clickid, "type": "Lead"}
        ) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "5"
            assert "nothing was recorded" in (await response.json())["error"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    status, _ = await pw.postback(clickid=clickid, type="Lead")  # the retry is stored
    assert status == 200
    assert len((await pw.trace(clickid))["conversions"]) == 1


async def test_forwarded_addresses_are_believed_from_trusted_proxies_only(
    tmp_path: Path,
) -> None:
    settings = Settings(trusted_proxies=["127.0.0.1"], allow_ips=["203.0.113.0/24"])
    listener = await start_listener(tmp_path / "pw.db", settings)
    try:
        await listener.configure(BASE_CONFIG)

        async def postback(headers: dict[str, str]) -> int:
            url = listener.base + "/postback?clickid=none"
            async with listener.session.get(url, headers=headers) as response:
                return response.status

        # The proxy appends the client; an address the client wrote itself comes before it.
        assert await postback({"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}) == 404
        row = await newest_inbound(listener)
        assert row["remote"] == "203.0.113.7" and "unknown click id" in row["reason"]
        assert await postback({"Forwarded": 'for="203.0.113.8:4711";proto=https'}) == 404
        assert (await newest_inbound(listener))["remote"] == "203.0.113.8"
        assert await postback({"X-Forwarded-For": "198.51.100.9"}) == 403
        assert await postback({}) == 403  # the proxy itself is not a client
    finally:
        await stop_listener(listener)
    untrusting = await start_listener(tmp_path / "pw2.db", Settings(allow_ips=["203.0.113.0/24"]))
    try:
        url = untrusting.base + "/postback?clickid=none"
        async with untrusting.session.get(url, headers={"X-Forwarded-For": "203.0.113.7"}) as r:
            assert r.status == 403  # kept, not believed
        row = await newest_inbound(untrusting)
        assert row["remote"] == "127.0.0.1"
    finally:
        await stop_listener(untrusting)


async def test_the_inbound_key_is_masked_in_the_log(tmp_path: Path) -> None:
    listener = await start_listener(tmp_path / "pw.db", Settings(key="s3cret-key"))
    try:
        await listener.configure(BASE_CONFIG)
        clickid = await listener.click(key="s3cret-key")
        await listener.postback(clickid=clickid, key="s3cret-key", type="Lead")
        url = listener.base + f"/postback?clickid={clickid}"
        async with listener.session.get(url, headers={"X-Postwatch-Key": "s3cret-key"}) as r:
            assert r.status == 200
        status, rows = await listener.get("/api/inbound")
        assert status == 200 and len(rows) == 3
        assert "s3cret-key" not in json.dumps(rows)
        assert "key=********" in rows[1]["query"]
    finally:
        await stop_listener(listener)


async def test_the_sink_answers_loopback_and_guards_everyone_else(tmp_path: Path) -> None:
    settings = Settings(key="k", trusted_proxies=["127.0.0.1"])
    listener = await start_listener(tmp_path / "pw.db", settings)
    try:
        status, _ = await listener.get("/sink/propeller")
        assert status == 200  # the listener's own deliveries come from loopback
        outside = {"X-Forwarded-For": "203.0.113.7"}
        async with listener.session.get(listener.base + "/sink/p", headers=outside) as r:
            assert r.status == 403
        async with listener.session.get(listener.base + "/sink/p?key=k", headers=outside) as r:
            assert r.status == 200
        status, records = await listener.get("/api/sink/p")
        assert [r["http_status"] for r in records] == [200, 403]  # the refused one is kept too
    finally:
        await stop_listener(listener)


async def test_a_slow_request_head_is_closed_after_the_idle_timeout(tmp_path: Path) -> None:
    async with Store(tmp_path / "pw.db") as store:
        runner = await start(store, Settings(), "127.0.0.1", 0, idle_timeout=0.5)
        port = runner.addresses[0][1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /postback?cli")  # and then nothing more
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed
            writer.close()
            # The listener still answers everyone else.
            status, _, _ = await raw_request(port, head("GET", "/api/health"))
            assert status == 200
        finally:
            await runner.cleanup()
