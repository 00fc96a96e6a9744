"""Fixtures: a real listener on a fresh database, and a traffic-source stand-in (the shared
pieces are in tests/helpers.py)."""

from __future__ import annotations

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
