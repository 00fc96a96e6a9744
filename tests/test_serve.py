"""`postwatch serve` as a user runs it: a real process, the sample workspace, curl-like calls."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from listener.serve import prepare
from store.db import Store
from store.workspace import campaigns
from tests.test_config import SPEC_EXAMPLE


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_new_database_gets_the_sample_and_a_configured_one_does_not(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "new.db") as store:
        await prepare(store, None, 9123)
        (sample,) = await store.read(campaigns)
    assert sample.name == "Sample Campaign"
    assert [(p.name, p.conditional, p.types, p.statuses) for p in sample.postbacks] == [
        ("all events", False, [], []),
        ("paid deposits", True, ["Deposit"], ["approved"]),
    ]
    config = tmp_path / "c.toml"
    config.write_text(SPEC_EXAMPLE)
    async with Store(tmp_path / "configured.db") as store:
        await prepare(store, config, None)
        assert [c.key for c in await store.read(campaigns)] == ["casino-fr"]


async def test_serve_walk_through(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui",
            "serve",
            "--db",
            str(tmp_path / "pw.db"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(base) as http:
            for _ in range(100):
                try:
                    async with http.get("/api/health") as response:
                        assert (await response.json())["ok"] is True
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            async with http.get("/click/sample", params={"ref_id": "visitor-1"}) as response:
                clickid = (await response.json())["clickid"]
            async with http.get(
                "/postback",
                params={"clickid": clickid, "type": "Deposit", "status": "2", "sum": "40"},
            ) as response:
                lead = await response.json()
            async with http.get(
                "/postback", params={"clickid": clickid, "type": "Deposit", "status": "1"}
            ) as response:
                paid = await response.json()
            assert [d["verdict"] for d in lead["decisions"]] == ["fired", "filtered"]
            assert [d["verdict"] for d in paid["decisions"]] == ["skipped", "fired"]
            for _ in range(100):
                async with http.get("/api/sink/sample-traffic") as response:
                    records = await response.json()
                if len(records) == 2:
                    break
                await asyncio.sleep(0.05)
            assert [r["query"] for r in records] == [
                "visitor=visitor-1&event=Deposit&status=approved&payout=40",
                "visitor=visitor-1&event=Deposit&status=pending&payout=40",
            ]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
    assert f"postwatch listening on http://127.0.0.1:{port}" in output
