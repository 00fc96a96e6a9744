"""Fixtures: a real listener on a fresh database, a traffic-source stand-in, and a separate
`postwatch serve` process (the shared pieces are in tests/helpers.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.helpers import (
    BASE_CONFIG,
    Listener,
    Target,
    free_port,
    start_listener,
    stop_listener,
)


@pytest.fixture
async def pw(tmp_path: Path) -> AsyncIterator[Listener]:
    """A listener on a fresh database, configured with BASE_CONFIG."""
    listener = await start_listener(tmp_path / "postwatch.db")
    await listener.configure(BASE_CONFIG)
    yield listener
    await stop_listener(listener)


@pytest.fixture
async def target(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> Target:
    """A traffic-source stand-in on its own loopback port."""
    stand_in = Target()
    server = await aiohttp_server(stand_in.app())
    stand_in.port = server.port
    return stand_in


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    """A ``postwatch serve`` process on a free port; yields its database and URL."""
    port = free_port()
    config = tmp_path / "postwatch.toml"
    config.write_text(BASE_CONFIG.replace("PORT", str(port)), encoding="utf-8")
    db = tmp_path / "served.db"
    command = [sys.executable, "-c", "from tui.cli import main; main()", "serve"]
    process = subprocess.Popen(
        [*command, "--db", str(db), "--port", str(port), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 15
            while True:
                try:
                    async with session.get(base + "/api/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"postwatch serve did not start: {output}")
                await asyncio.sleep(0.05)
        yield db, base
    finally:
        process.terminate()
        process.wait(timeout=10)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A test that failed with a database still open leaves aiosqlite's worker thread, not a
    daemon, alive: the interpreter would wait for it forever at exit, and the run would hang
    instead of failing. Once pytest has reported, end the process with the run's status."""
    left = [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon and thread.is_alive()
    ]
    if left:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash.get(EXIT_STATUS, 1))


EXIT_STATUS = pytest.StashKey[int]()
