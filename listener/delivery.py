"""Delivering fired postbacks: the outbox worker, its retry schedule, and resend.

Every attempt is a row in ``deliveries``; a pending row is the outbox. The worker sends each
attempt when it is due, records the answer, and queues the next attempt on the retry schedule
until one is delivered or the schedule runs out. Pending rows survive a restart: the worker
loads them when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import sqlite3
import time
from dataclasses import dataclass
from functools import partial

import aiohttp

from listener import kinds
from store import events, workspace
from store.db import Store
from store.records import Attempt

READ_LIMIT = 64 * 1024  # bytes of an answer read; the first 2 KiB are kept


@dataclass
class Result:
    """What happened to one attempt on the wire."""

    sent_at: float
    duration_ms: float
    http_status: int | None = None
    response: str | None = None
    error: str | None = None


def complete(conn: sqlite3.Connection, attempt: Attempt, result: Result) -> Attempt | None:
    """Record an attempt's result; queue the next one on the retry schedule and return it."""
    schedule: list[float] = []
    if result.error is None:
        outcome = "delivered"
    elif attempt.resend_of is not None:
        outcome = "failed"  # a resend by hand is one attempt, not a new schedule
    else:
        schedule = workspace.load_settings(conn).retry_schedule
        (automatic,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE decision_id = ? AND resend_of IS NULL",
            (attempt.decision_id,),
        ).fetchone()
        outcome = "retrying" if automatic <= len(schedule) else "failed"
    events.finish_attempt(
        conn,
        attempt.id,
        outcome=outcome,
        sent_at=result.sent_at,
        duration_ms=result.duration_ms,
        http_status=result.http_status,
        response=result.response,
        error=result.error,
    )
    if outcome != "retrying":
        return None
    due_at = time.time() + schedule[automatic - 1]
    retry_id = events.repeat_attempt(conn, attempt.id, due_at=due_at)
    assert retry_id is not None
    return events.load_attempt(conn, retry_id)  # with the config as it is now


def resend(conn: sqlite3.Connection, delivery_id: int) -> Attempt | None:
    """A new attempt of a delivery, linked to it and due now; None if there is no such one."""
    new_id = events.repeat_attempt(conn, delivery_id, due_at=time.time(), resend_of=delivery_id)
    return None if new_id is None else events.load_attempt(conn, new_id)


def _queued_since(conn: sqlite3.Connection, after: int) -> tuple[list[Attempt], int]:
    """Pending attempts with an id above ``after``, and the newest attempt id."""
    (newest,) = conn.execute("SELECT coalesce(max(id), 0) FROM deliveries").fetchone()
    return events.pending_attempts(conn, after), int(newest)


class Outbox:
    """Sends due attempts, at most ``concurrency`` at once.

    Attempts made in this process are handed over in memory. Once a second the outbox also
    re-reads the settings and picks up attempts that another process queued (a resend from an
    attached dashboard): rows are committed in id order, so it looks above the newest id it saw.
    """

    POLL_SECONDS = 1.0

    def __init__(self, store: Store, session: aiohttp.ClientSession, concurrency: int = 64):
        self.store = store
        self.session = session
        self.timeout = 10.0
        self._due: list[tuple[float, int, Attempt]] = []
        self._known: set[int] = set()  # queued or being sent
        self._finished: set[int] = set()  # finished since the last poll began
        self._seen_up_to = 0
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._sending: set[asyncio.Task[None]] = set()

    def schedule(self, attempts: list[Attempt]) -> None:
        """Queue attempts that are committed as pending."""
        for attempt in attempts:
            if attempt.id not in self._known:
                self._known.add(attempt.id)
                heapq.heappush(self._due, (attempt.due_at, attempt.id, attempt))
        if attempts:
            self._wake.set()

    async def run(self) -> None:
        """Send every attempt when it is due, until cancelled (the poller loads the outbox)."""
        poller = asyncio.create_task(self._poll())
        try:
            while True:
                now = time.time()
                while self._due and self._due[0][0] <= now:
                    _, _, attempt = heapq.heappop(self._due)
                    await self._slots.acquire()
                    task = asyncio.create_task(self._send(attempt))
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
                self._wake.clear()
                timeout = self._due[0][0] - time.time() if self._due else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            poller.cancel()
            for task in list(self._sending):
                task.cancel()
            await asyncio.gather(poller, *self._sending, return_exceptions=True)

    async def _poll(self) -> None:
        while True:
            self.timeout = (await self.store.read(workspace.load_settings)).timeout
            self._finished = set()
            queued, self._seen_up_to = await self.store.read(
                partial(_queued_since, after=self._seen_up_to)
            )
            self.schedule([a for a in queued if a.id not in self._finished])
            await asyncio.sleep(self.POLL_SECONDS)

    async def _send(self, attempt: Attempt) -> None:
        try:
            result = await self.send(attempt, self.timeout)
            following = await self.store.write(lambda conn: complete(conn, attempt, result))
            if following is not None:
                self.schedule([following])
        finally:
            self._known.discard(attempt.id)
            self._finished.add(attempt.id)
            self._slots.release()

    async def send(self, attempt: Attempt, timeout: float) -> Result:
        """Send one attempt and judge the answer."""
        started = time.time()
        clock = time.perf_counter()
        result = Result(sent_at=started, duration_ms=0.0)
        try:
            wire = kinds.prepare(attempt)  # secrets are read now; one that is gone fails it
            async with self.session.request(
                wire.method,
                wire.url,
                headers=wire.headers,
                data=wire.body.encode() if wire.body else None,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                raw = await response.content.read(READ_LIMIT)
                result.http_status = response.status
                result.response = raw.decode(response.charset or "utf-8", errors="replace")
            result.error = kinds.judge(attempt, result.http_status, result.response)
        except TimeoutError:
            result.error = f"no answer within the timeout of {timeout:g} s"
        except aiohttp.ClientError as error:
            result.error = f"the request failed: {error or type(error).__name__}"
        except ValueError as error:  # an invalid URL after macro expansion, a missing secret
            result.error = f"the request could not be sent: {error}"
        result.duration_ms = round((time.perf_counter() - clock) * 1000, 2)
        return result
