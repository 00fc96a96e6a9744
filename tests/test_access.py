"""Who may use the listener (``listener.access``): an API token made up beyond
loopback, the optional inbound key and the IP allow-list. The API's token guard: test_api."""

from __future__ import annotations

from pathlib import Path

from listener.access import is_loopback
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
