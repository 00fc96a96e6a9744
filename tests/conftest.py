"""Fixtures: a real listener on a fresh database, and a traffic-source stand-in (the shared
pieces are in tests/helpers.py)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.helpers import BASE_CONFIG, Listener, Target, start_listener, stop_listener


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
