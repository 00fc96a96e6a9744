"""`postwatch serve` as a user runs it: a real process, the sample workspace, curl-like calls."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from listener.serve import listen, prepare
from store.config import ConfigError
from store.db import Store
from store.workspace import campaigns, traffic_sources
from tests.helpers import SPEC_EXAMPLE, free_port, serve_process, until_up


async def test_a_new_database_gets_the_sample_and_a_configured_one_does_not(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "new.db") as store:
        listening = await listen(store, None, None, 0, "")
        try:
            (sample,) = await store.read(campaigns)
            (traffic,) = await store.read(traffic_sources)
        finally:
            await listening.runner.cleanup()
    assert sample.name == "Sample Campaign"
    assert [(p.name, p.conditional, p.types, p.statuses) for p in sample.postbacks] == [
        ("all events", False, [], []),
        ("paid deposits", True, ["Deposit"], ["approved"]),
    ]
    # --port 0: the sample posts to the port the listener really has
    assert listening.port != 0
    assert traffic.postback_url.startswith(f"http://127.0.0.1:{listening.port}/sink/")
    config = tmp_path / "c.toml"
    config.write_text(SPEC_EXAMPLE)
    async with Store(tmp_path / "configured.db") as store:
        await prepare(store, config)
        assert [c.key for c in await store.read(campaigns)] == ["casino-fr"]


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.terminate()
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    return out, err


async def test_serve_walk_through(tmp_path: Path) -> None:
    process, port = serve_process(tmp_path / "pw.db")
    try:
        await until_up(port)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
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
        output, _ = _stop(process)
    assert f"postwatch listening on http://127.0.0.1:{port}" in output


async def test_serve_logs_a_json_line_per_request_with_its_outcome(tmp_path: Path) -> None:
    process, port = serve_process(tmp_path / "pw.db", "--log-format", "json")
    try:
        await until_up(port)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(base) as http:
            async with http.get("/click/sample", params={"ref_id": "v1"}) as response:
                clickid = (await response.json())["clickid"]
            params = {"clickid": clickid, "type": "Deposit", "status": "pending"}
            async with http.get("/postback", params=params) as response:
                assert response.status == 200
            async with http.get("/pb") as response:
                assert response.status == 404
    finally:
        _, err = _stop(process)
    lines = [json.loads(line) for line in err.splitlines()]
    postback, wrong = (line for line in lines if line.get("path") in ("/postback", "/pb"))
    assert postback["outcome"] == "accepted" and postback["status"] == 200
    assert [d["verdict"] for d in postback["decisions"]] == ["fired", "filtered"]
    reason = "filtered 'paid deposits': status 'pending' is not one of: approved"
    assert reason in postback["message"]
    assert wrong["outcome"] == "rejected" and "did you mean" not in wrong["reason"]
    assert wrong["level"] == "info" and wrong["logger"] == "postwatch.inbound"


def _open_files_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open files limit")


async def test_serve_raises_its_open_files_limit(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    low = min(1024, hard)

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    process, port = serve_process(tmp_path / "pw.db", preexec_fn=lower)
    try:
        await until_up(port)
        soft, hard_seen = _open_files_limit(process.pid)
    finally:
        _stop(process)
    assert soft == hard_seen and (hard == low or soft > low)


async def test_serve_beyond_loopback_warns_and_keeps_its_token(tmp_path: Path) -> None:
    runs = []
    for _ in range(2):
        process, port = serve_process(
            tmp_path / "pw.db", "--host", "0.0.0.0", "--log-level", "warning"
        )
        try:
            await until_up(port)
        finally:
            out, _ = _stop(process)
        runs.append(out)
    first, second = runs
    assert "without an inbound key" in first and "without an inbound key" in second
    (made,) = [line.rsplit(" ", 1)[1] for line in first.splitlines() if "made up now" in line]
    assert made not in second and "postwatch token" in second  # shown once, then kept
    shown = subprocess.run(
        [sys.executable, "-m", "tui", "token", "--db", str(tmp_path / "pw.db")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == made


def test_a_database_that_cannot_be_opened_is_one_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "tui", "serve", "--db", str(blocker / "pw.db"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot open the database {blocker / 'pw.db'}: its folder {blocker} cannot be "
        "made (File exists); check that the file and its folder exist and are writable, or "
        "choose another with --db"
    ]


async def test_the_key_and_token_may_be_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[listener]\nkey = "env:PW_TEST_KEY"\ntoken = "env:PW_TEST_TOKEN"\n')
    monkeypatch.setenv("PW_TEST_KEY", "k-env")
    monkeypatch.setenv("PW_TEST_TOKEN", "t-env")
    async with Store(tmp_path / "pw.db") as store:
        settings = await prepare(store, config)
        assert (settings.key, settings.token) == ("k-env", "t-env")
        monkeypatch.delenv("PW_TEST_TOKEN")
        with pytest.raises(ConfigError, match="PW_TEST_TOKEN, which is not set"):
            await prepare(store, config)


async def test_the_sample_traffic_source_follows_the_listener_to_a_new_port(
    tmp_path: Path,
) -> None:
    """A database served on a new port at each start (--port 0) keeps its sample's deliveries
    reaching this listener's sink; a URL the user wrote is left alone."""
    from store.workspace import update_postback_url

    async with Store(tmp_path / "postwatch.db") as store:
        first = 0
        for _ in range(2):
            port = 0 if not first else next(p for p in iter(free_port, None) if p != first)
            listening = await listen(store, None, "127.0.0.1", port, "")
            first = first or listening.port
            (sample,) = await store.read(traffic_sources)
            await listening.runner.cleanup()
            assert sample.postback_url.startswith(f"http://127.0.0.1:{listening.port}/sink/")
        written = "https://ts.example/pb?click={external_id}"
        await store.write(lambda conn: update_postback_url(conn, "Sample Traffic", written))
        listening = await listen(store, None, "127.0.0.1", 0, "")
        await listening.runner.cleanup()
        assert [source.postback_url for source in await store.read(traffic_sources)] == [written]
