"""Noticing changes: a loop that asks SQLite every ~100 ms whether anything was committed
(``PRAGMA data_version``, which sees commits of other connections and other processes alike)
and keeps the header's figures. It posts messages; it never touches a widget."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable

from textual.message_pump import MessagePump

from store import retention, totals, views
from store.db import Store
from store.read import queries
from store.read.model import DeliveryAlerts
from tui.messages import DataChanged, DeliveriesFailed, Stats, StatsUpdated

RATE_WINDOW = 3.0  # seconds of history behind the postbacks-per-second figure
FULL_COUNT = 5.0  # seconds between counts of every failed attempt (else only the new ones)


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
        self.alerts = DeliveryAlerts()
        # the newest failed attempt already told (None: not read yet, the failures found at
        # the first poll are old news)
        self._failed_seen: int | None = None
        self._counted_at = -math.inf  # when every failed attempt was last counted

    def _poll(
        self, conn: sqlite3.Connection
    ) -> tuple[int, totals.Totals | None, DeliveryAlerts | None]:
        version = views.data_version(conn)
        if version == self.version and self.counters is not None:
            return version, None, None
        self.size = retention.size_on_disk(self.store.path)
        # The failures above the last one seen are counted at each poll; all of them (a
        # failure of an older attempt, a pruning) every FULL_COUNT seconds.
        now = time.monotonic()
        counted = self.alerts.failed if now - self._counted_at < FULL_COUNT else None
        if counted is None:
            self._counted_at = now
        alerts = queries.delivery_alerts(conn, self._failed_seen or 0, counted)
        return version, totals.read(conn), alerts

    def _rate(self, now: float, postbacks: int) -> float:
        self._samples.append((now, postbacks))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()
        first_at, first = self._samples[0]
        elapsed = now - first_at
        return 0.0 if elapsed <= 0 else (postbacks - first) / elapsed

    async def check(self) -> None:
        """One poll: post what changed."""
        version, counters, alerts = await self.store.read(self._poll)
        if counters is not None:
            self.counters = counters
        if alerts is not None:
            self._alerted(alerts)
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
            failed=self.alerts.failed,
            retrying=self.alerts.retrying,
        )
        if stats != self._last_stats:
            self._last_stats = stats
            self.target.post_message(StatsUpdated(stats))

    def _alerted(self, alerts: DeliveryAlerts) -> None:
        self.alerts = alerts
        if self._failed_seen is not None and alerts.new_failures:
            self.target.post_message(DeliveriesFailed(alerts.new_failures, alerts.newest))
        self._failed_seen = max(self._failed_seen or 0, alerts.last_failed_id)

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
