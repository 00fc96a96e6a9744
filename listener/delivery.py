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
import json
import sqlite3
import time
from dataclasses import dataclass

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


def complete(
    conn: sqlite3.Connection, attempt: Attempt, result: Result, schedule: list[float]
) -> tuple[int, float] | None:
    """Record an attempt's result; queue the next one on the retry schedule. Return the next
    attempt (id, due time), if any."""
    if result.error is None:
        outcome = "delivered"
    elif attempt.resend_of is not None:
        outcome = "failed"  # a resend by hand is one attempt, not a new schedule
    else:
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
    due = time.time() + schedule[automatic - 1]
    retry_id = events.insert_attempt(
        conn,
        decision_id=attempt.decision_id,
        attempt=events.next_attempt_number(conn, attempt.decision_id),
        method=attempt.method,
        url=attempt.url,
        headers=attempt.headers,
        body=attempt.body,
        due_at=due,
    )
    return retry_id, due


def resend(conn: sqlite3.Connection, delivery_id: int) -> tuple[int, float] | None:
    """A new attempt of a delivery, linked to it and due now; None if there is no such one."""
    row = conn.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
    if row is None:
        return None
    now = time.time()
    new_id = events.insert_attempt(
        conn,
        decision_id=row["decision_id"],
        attempt=events.next_attempt_number(conn, row["decision_id"]),
        method=row["method"],
        url=row["url"],
        headers=json.loads(row["headers"]),
        body=row["body"],
        due_at=now,
        resend_of=delivery_id,
    )
    return new_id, now


class Outbox:
    """Sends due attempts, at most ``concurrency`` at once."""

    def __init__(self, store: Store, session: aiohttp.ClientSession, concurrency: int = 64):
        self.store = store
        self.session = session
        self._due: list[tuple[float, int]] = []
        self._known: set[int] = set()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._sending: set[asyncio.Task[None]] = set()

    def schedule(self, attempts: list[tuple[int, float]]) -> None:
        """Queue attempts (id, due time) that are committed as pending."""
        for delivery_id, due in attempts:
            if delivery_id not in self._known:
                self._known.add(delivery_id)
                heapq.heappush(self._due, (due, delivery_id))
        if attempts:
            self._wake.set()

    async def run(self) -> None:
        """Load the outbox, then send every attempt when it is due, until cancelled."""
        self.schedule(await self.store.read(events.pending_attempts))
        try:
            while True:
                now = time.time()
                while self._due and self._due[0][0] <= now:
                    _, delivery_id = heapq.heappop(self._due)
                    await self._slots.acquire()
                    task = asyncio.create_task(self._send(delivery_id))
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
                self._wake.clear()
                timeout = self._due[0][0] - time.time() if self._due else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            for task in list(self._sending):
                task.cancel()
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _send(self, delivery_id: int) -> None:
        try:
            attempt = await self.store.read(lambda conn: events.load_attempt(conn, delivery_id))
            if attempt is None:
                return
            settings = await self.store.read(workspace.load_settings)
            result = await self.send(attempt, settings.timeout)
            following = await self.store.write(
                lambda conn: complete(conn, attempt, result, settings.retry_schedule)
            )
            if following is not None:
                self.schedule([following])
        finally:
            self._known.discard(delivery_id)
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
