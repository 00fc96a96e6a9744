"""The JSON API (``listener.api``): the token guard, lists paged newest first, and
numbers refused with a sentence."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from listener.api import VERSION
from listener.app import start
from store.db import Store
from store.records import Settings
from tests.helpers import Listener


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
