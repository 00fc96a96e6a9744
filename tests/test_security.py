"""SPEC §7: the API token beyond loopback, the optional key and IP allow-list."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from listener.access import is_loopback
from listener.api import VERSION
from listener.app import start
from listener.serve import api_token
from store import workspace
from store.db import Store
from store.records import Settings
from tests.helpers import BASE_CONFIG, Listener, start_listener, stop_listener


async def test_a_token_is_made_up_beyond_loopback_only_and_kept(tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    async with Store(tmp_path / "pw.db") as store:
        assert await api_token(store, Settings(), "127.0.0.1", "") == ("", "")
        made, note = await api_token(store, Settings(), "0.0.0.0", "")
        assert len(made) > 20 and made in note  # shown once, when it is made
        stored = await store.read(workspace.load_settings)
        assert stored.token == made
        again, note = await api_token(store, stored, "0.0.0.0", "")
        assert again == made and made not in note and "postwatch token" in note
        assert (await api_token(store, stored, "0.0.0.0", "given"))[0] == "given"


async def test_the_api_needs_the_token_when_one_is_set(tmp_path: Path) -> None:
    async with Store(tmp_path / "pw.db") as store:
        runner = await start(store, Settings(), "127.0.0.1", 0, token="s3cret")
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession(base) as http:
                async with http.get("/api/conversions") as response:
                    assert response.status == 401
                    assert "Authorization: Bearer" in (await response.json())["error"]
                async with http.get("/api/health") as response:  # for monitors: no token
                    assert await response.json() == {"ok": True, "version": VERSION}
                headers = {"Authorization": "Bearer s3cret"}
                async with http.get("/api/conversions", headers=headers) as response:
                    assert response.status == 200
                # Not in a query string, where proxies' logs keep it.
                async with http.get("/api/conversions", params={"token": "s3cret"}) as response:
                    assert response.status == 401
                # A token that is not ASCII is a wrong token, not a crash.
                wrong = {"Authorization": "Bearer s3crét"}
                async with http.get("/api/conversions", headers=wrong) as response:
                    assert response.status == 401
                async with http.get("/postback") as response:  # not part of the API
                    assert response.status == 400
        finally:
            await runner.cleanup()


async def test_key_and_allow_list_guard_postbacks(tmp_path: Path) -> None:
    listener: Listener = await start_listener(
        tmp_path / "pw.db", Settings(key="k1", allow_ips=["127.0.0.0/8"])
    )
    try:
        await listener.configure(BASE_CONFIG)
        status, body = await listener.get("/click/casino-fr")
        assert status == 403 and "missing or wrong key" in body["error"]
        status, body = await listener.get("/click/casino-fr", key="k1")
        assert status == 200
        status, _ = await listener.get("/postback", clickid=body["clickid"], key="k1")
        assert status == 200
    finally:
        await stop_listener(listener)
    denied = await start_listener(tmp_path / "pw2.db", Settings(allow_ips=["10.0.0.0/8"]))
    try:
        status, body = await denied.get("/postback", clickid="x")
        assert status == 403 and "127.0.0.1 is not in the listener's allow_ips" in body["error"]
    finally:
        await stop_listener(denied)


async def test_api_lists_page_and_refuse_bad_numbers(pw: Listener) -> None:
    clickid = await pw.click()
    for n in range(3):
        await pw.postback(clickid=clickid, type=f"T{n}")
    status, rows = await pw.get("/api/conversions", limit="2")
    assert status == 200 and [r["type"] for r in rows] == ["T2", "T1"]
    status, older = await pw.get("/api/conversions", limit="2", before=str(rows[-1]["id"]))
    assert [r["type"] for r in older] == ["T0"]
    status, inbound = await pw.get("/api/inbound", limit="1")
    assert inbound[0]["outcome"] == "accepted" and inbound[0]["conversion_id"] == rows[0]["id"]
    status, body = await pw.get("/api/inbound", limit="ten")
    assert status == 400 and body == {"error": "limit must be a whole number, not 'ten'"}
