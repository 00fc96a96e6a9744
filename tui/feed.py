"""Noticing changes: a loop that asks SQLite every ~100 ms whether anything was committed
(``PRAGMA data_version``, which sees commits of other connections and other processes alike)
and keeps the header's figures. It posts messages; it never touches a widget."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable

from textual.message_pump import MessagePump

from store import retention, totals, views
from store.db import Store
from tui.messages import DataChanged, Stats, StatsUpdated

RATE_WINDOW = 3.0  # seconds of history behind the postbacks-per-second figure


class Feed:
    """Polls the database and posts ``DataChanged`` and ``StatsUpdated`` to ``target``."""

    def __init__(
        self,
        store: Store,
        target: MessagePump,
        *,
        interval: float = 0.1,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.target = target
        self.interval = interval
        self.clock = clock
        self.counters: totals.Totals | None = None
        self.size = 0  # bytes on disk, read with the totals
        self.version: int | None = None
        self._samples: deque[tuple[float, int]] = deque()
        self._last_stats: Stats | None = None

    def _poll(self, conn: sqlite3.Connection) -> tuple[int, totals.Totals | None]:
        version = views.data_version(conn)
        if version == self.version and self.counters is not None:
            return version, None
        self.size = retention.size_on_disk(self.store.path)
        return version, totals.read(conn)

    def _rate(self, now: float, postbacks: int) -> float:
        self._samples.append((now, postbacks))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()
        first_at, first = self._samples[0]
        elapsed = now - first_at
        return 0.0 if elapsed <= 0 else (postbacks - first) / elapsed

    async def check(self) -> None:
        """One poll: post what changed."""
        version, counters = await self.store.read(self._poll)
        if counters is not None:
            self.counters = counters
        if version != self.version:
            self.version = version
            self.target.post_message(DataChanged(version))
        assert self.counters is not None
        c = self.counters
        stats = Stats(
            clicks=c.clicks,
            conversions=c.conversions,
            inbound=c.inbound,
            rejected=c.rejected,
            postbacks=c.postbacks,
            rate=round(self._rate(self.clock(), c.postbacks), 1),
            size=self.size,
        )
        if stats != self._last_stats:
            self._last_stats = stats
            self.target.post_message(StatsUpdated(stats))

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(self.interval)


def size_text(size: int) -> str:
    """The database's size as the header shows it: MiB with one decimal, GiB from 1 GiB."""
    if size >= 1 << 30:
        return f"{size / (1 << 30):.1f} GiB"
    return f"{size / (1 << 20):.1f} MiB"
