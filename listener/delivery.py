"""Delivering fired postbacks: the outbox worker, its retry schedule, and resend.

Every attempt is a row in ``deliveries``; a pending row is the outbox. The worker sends each
attempt when it is due, records the answer, and queues the next attempt on the retry schedule
until one is delivered or the schedule runs out. Pending rows survive a restart.

One database has one delivering listener (README, "Delivery"): the outbox sends only while
it holds the lease row in the database. A listener without it sends nothing; what it fires
stays pending for the holder, whose poller loads due attempts from the database a page at a
time, so the outbox holds a bounded number of attempts in memory however large the backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import heapq
import logging
import os
import socket
import sqlite3
import string
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote, urlsplit

import aiohttp
import yarl

from listener import kinds
from listener.clock import SYSTEM, Clock
from store import events, workspace
from store.db import Store
from store.records import Attempt, Settings

log = logging.getLogger("postwatch.delivery")

READ_LIMIT = 64 * 1024  # bytes of an answer read and judged; the first 2 KiB are kept
CONCURRENCY = 64  # attempts in flight at once, over all targets
PER_HOST = Settings.per_target  # attempts in flight at once to one target (host:port)
CAPACITY = 1000  # attempts held in memory: queued, waiting for a slot, in flight, unrecorded
LEASE_STALE_SECONDS = 15.0  # a lease not renewed for this long is taken over
# Retry-After (on a 429 or 503) is obeyed within these bounds, in seconds.
RETRY_AFTER_STATUSES = (429, 503)
RETRY_AFTER_FLOOR = 1.0
RETRY_AFTER_CAP = 6 * 3600.0
SHUTDOWN_GRACE = 30.0  # seconds a stop waits at most for attempts in flight (their timeout)
_WRITE_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between tries of an outcome
_PAGE = 500  # attempts read from the outbox at once
_REFILL_AFTER = 50  # with more due than held: read again once this many attempts finished
_SCAN_PAGES = 4  # pages one poll may read past attempts it cannot hold (a saturated target)
# Characters a URL may carry as they are; anything else (spaces, non-ASCII) is percent-encoded.
_URL_SAFE = string.punctuation


@dataclass
class Result:
    """What happened to one attempt on the wire."""

    sent_at: float
    duration_ms: float
    http_status: int | None = None
    response: str | None = None
    error: str | None = None
    retry_after: str | None = None  # the answer's Retry-After header, as sent


@dataclass(frozen=True)
class Completion:
    """What recording an attempt's result decided."""

    outcome: str  # retrying | delivered | failed
    due_at: float | None  # when the next attempt is due (retrying only)
    following: Attempt | None  # the next attempt, queued as pending


# -- the retry schedule (pure) ---------------------------------------------------------------


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """The wait a Retry-After header asks for (delay seconds or an HTTP date), kept within
    RETRY_AFTER_FLOOR and RETRY_AFTER_CAP; None when there is none or it cannot be read."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        wait = float(text)
    except ValueError:
        try:
            wait = email.utils.parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if wait != wait:  # NaN
        return None
    return min(max(wait, RETRY_AFTER_FLOOR), RETRY_AFTER_CAP)


def next_step(
    number: int,
    schedule: Sequence[float],
    *,
    error: str | None,
    http_status: int | None,
    retry_after: str | None,
    now: float,
) -> tuple[str, float | None]:
    """The outcome of automatic attempt ``number`` (1, 2, …) and when the next one is due.

    No error: delivered. Otherwise retrying while the schedule has a step for it (the n-th
    attempt waits the n-th entry), else failed. A 429 or 503 with a Retry-After waits what the
    target asked for instead (floored and capped), and still uses up its step."""
    if error is None:
        return "delivered", None
    if number > len(schedule):
        return "failed", None
    wait = schedule[number - 1]
    if http_status in RETRY_AFTER_STATUSES:
        asked = retry_after_seconds(retry_after, now)
        if asked is not None:
            wait = asked
    return "retrying", now + wait


def complete(
    conn: sqlite3.Connection, attempt: Attempt, result: Result, now: float
) -> Completion | None:
    """Record an attempt's result at ``now`` (the listener's clock) and queue the next one on
    the retry schedule. None when the attempt is no longer pending (its result was recorded
    already): nothing is written twice."""
    if events.attempt_outcome(conn, attempt.id) != "pending":
        return None
    schedule: list[float] = []
    number = 1
    if attempt.resend_of is None:  # a resend by hand is one attempt, not a new schedule
        schedule = workspace.load_settings(conn).retry_schedule
        (number,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE decision_id = ? AND resend_of IS NULL",
            (attempt.decision_id,),
        ).fetchone()
    outcome, due_at = next_step(
        number,
        schedule,
        error=result.error,
        http_status=result.http_status,
        retry_after=result.retry_after,
        now=now,
    )
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
    if due_at is None:
        return Completion(outcome, None, None)
    retry_id = events.repeat_attempt(conn, attempt.id, due_at=due_at)
    assert retry_id is not None
    # with the config as it is now
    return Completion(outcome, due_at, events.load_attempt(conn, retry_id))


def resend(conn: sqlite3.Connection, delivery_id: int, now: float) -> Attempt | None:
    """A new attempt of a delivery, linked to it and due ``now`` (the listener's clock); None
    if there is no such one."""
    new_id = events.repeat_attempt(conn, delivery_id, due_at=now, resend_of=delivery_id)
    return None if new_id is None else events.load_attempt(conn, new_id)


# -- the wire --------------------------------------------------------------------------------


def target_host(url: str) -> str:
    """The target an attempt goes to, as host:port: what the per-target limit counts."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname or ''}:{port}"
    except ValueError:  # a bad port: the attempt fails when sent, it still needs a queue
        return urlsplit(url).netloc


def wire_url(url: str) -> yarl.URL:
    """The URL exactly as recorded: aiohttp must not re-encode ``%2F``, ``%3A``, ``%40``…
    Only what cannot appear in a URL at all (spaces, non-ASCII) is percent-encoded."""
    if not urlsplit(url).netloc.isascii():  # an internationalised host name: yarl encodes it
        return yarl.URL(url)
    return yarl.URL(quote(url, safe=_URL_SAFE), encoded=True)


def client_session(
    concurrency: int = CONCURRENCY, per_host: int = PER_HOST
) -> aiohttp.ClientSession:
    """A session whose connection pool is not the bottleneck of the outbox's own limits (an
    attempt waiting for a pooled connection would spend its timeout waiting)."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=per_host)
    return aiohttp.ClientSession(connector=connector)


async def _read_answer(response: aiohttp.ClientResponse, body: bytearray) -> None:
    """Read the answer to its end, up to READ_LIMIT bytes, into ``body``."""
    while len(body) < READ_LIMIT:
        chunk = await response.content.read(READ_LIMIT - len(body))
        if not chunk:
            return
        body += chunk


def _kept(response: str | None) -> str | None:
    """The part of an answer that is stored (and held in memory until then)."""
    if response is None:
        return None
    return response.encode()[: events.RESPONSE_LIMIT].decode(errors="ignore")


def _incomplete(body: bytearray, why: str) -> str:
    return f"the answer was incomplete: {why} after {len(body)} bytes of its body"


# -- the outbox ------------------------------------------------------------------------------


class Outbox:
    """Sends due attempts: at most ``concurrency`` at once, at most ``per_host`` to one target,
    holding at most ``capacity`` attempts in memory; only while it holds the outbox lease.

    Attempts made in this process are handed over in memory (``schedule``). About once a
    second the poller renews the lease, re-reads the settings and loads due attempts from the
    database, soonest first, a page at a time: those another process queued (a resend from an
    attached dashboard), those a listener without the lease fired, and those that did not fit
    in memory. Attempts due for a target that is busy wait in that target's queue while the
    others go on.

    ``clock`` gives the times it records and compares with due times (``listener.clock``).
    """

    POLL_SECONDS = 1.0
    CAPACITY = CAPACITY

    def __init__(
        self,
        store: Store,
        session: aiohttp.ClientSession,
        concurrency: int = CONCURRENCY,
        *,
        per_host: int = PER_HOST,
        capacity: int | None = None,
        lease_stale: float = LEASE_STALE_SECONDS,
        clock: Clock = SYSTEM,
    ):
        self.store = store
        self.clock = clock
        self.session = session
        self.timeout = 10.0
        # Within the connection pool's own limits, so that nothing waits inside aiohttp.
        connector = session.connector
        limit = connector.limit if connector is not None else 0
        limit_per_host = connector.limit_per_host if connector is not None else 0
        self.concurrency = min(concurrency, limit) if limit else concurrency
        self.per_host = min(per_host, limit_per_host) if limit_per_host else per_host
        self.capacity = capacity if capacity is not None else self.CAPACITY
        self.lease_stale = lease_stale
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.delivering = False
        self.other_holder = ""
        self.peak_in_memory = 0  # the most attempts held at once, for a look from outside
        self.write_failures = 0  # outcomes that could not be written at the first try
        self._lease_renewed = 0.0
        self._due: list[tuple[float, int, Attempt]] = []
        self._waiting: OrderedDict[str, deque[Attempt]] = OrderedDict()  # due, per target
        self._known: dict[int, str] = {}  # every attempt held: id -> target
        self._held: Counter[str] = Counter()  # attempts held per target
        self._busy: Counter[str] = Counter()  # attempts in flight per target
        self._in_flight = 0
        self._finished: set[int] = set()  # finished since the last poll began
        self._unrecorded: dict[int, tuple[Attempt, Result]] = {}
        self._resume_after: tuple[float, int] | None = None
        # More is due in the database than memory held: the poller reads on as attempts
        # finish (after every ``_refill_after`` of them), not only once a second.
        self._more_due = False
        self._freed = 0
        self._refill_after = max(1, min(_REFILL_AFTER, self.capacity // 4))
        self._refill = asyncio.Event()
        self._wake = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def in_memory(self) -> int:
        """How many attempts the outbox holds now (never more than ``capacity``)."""
        return len(self._known)

    def schedule(self, attempts: list[Attempt]) -> None:
        """Queue attempts that are committed as pending. Without the lease, or with no room,
        they stay in the database only, for the delivering poller to load."""
        if not self.delivering:
            return
        for attempt in attempts:
            self._hold(attempt)
        if attempts:
            self._wake.set()

    def _share(self) -> int:
        """Attempts one target may hold in memory, so that a saturated one cannot fill it."""
        return max(self.per_host, self.capacity // 4)

    def _hold(self, attempt: Attempt) -> bool:
        if attempt.id in self._known:
            return False
        host = target_host(attempt.url)
        if len(self._known) >= self.capacity or self._held[host] >= self._share():
            self._more_due = True  # it waits in the database: read it when there is room
            return False
        self._known[attempt.id] = host
        self._held[host] += 1
        self.peak_in_memory = max(self.peak_in_memory, len(self._known))
        heapq.heappush(self._due, (attempt.due_at, attempt.id, attempt))
        return True

    def _release(self, attempt_id: int) -> None:
        host = self._known.pop(attempt_id, None)
        if host is not None:
            self._held[host] -= 1
            if self._held[host] <= 0:
                del self._held[host]

    async def run(self) -> None:
        """Send every attempt when it is due, until cancelled (the poller loads the outbox)."""
        poller = asyncio.create_task(self._poll())
        try:
            while True:
                self._wake.clear()
                timeout = self._dispatch()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            await self._shut_down(poller)

    def _dispatch(self) -> float | None:
        """Start what is due and has a free slot, without waiting for any; return how long
        to sleep unless woken (None: until woken)."""
        if not self.delivering:
            self._drop_queued()
            return None
        now = self.clock()
        if now - self._lease_renewed > self.lease_stale / 2:
            # Not renewed for a while (the process was stopped, the database is locked):
            # another process may have taken over. Send nothing until the poller knows.
            return self.POLL_SECONDS
        while self._due and self._due[0][0] <= now:
            _, _, attempt = heapq.heappop(self._due)
            host = self._known[attempt.id]
            self._waiting.setdefault(host, deque()).append(attempt)
        for host in list(self._waiting):
            queue = self._waiting[host]
            started = False
            while queue and self._busy[host] < self.per_host and self._in_flight < self.concurrency:
                self._start(host, queue.popleft())
                started = True
            if not queue:
                del self._waiting[host]
            elif started:  # the others get the next free global slot first
                self._waiting.move_to_end(host)
        return self._due[0][0] - self.clock() if self._due else None

    def _drop_queued(self) -> None:
        """Forget what is not in flight: the lease holder sends it."""
        for _, attempt_id, _ in self._due:
            self._release(attempt_id)
        for queue in self._waiting.values():
            for attempt in queue:
                self._release(attempt.id)
        self._due.clear()
        self._waiting.clear()

    def _start(self, host: str, attempt: Attempt) -> None:
        self._busy[host] += 1
        self._in_flight += 1
        task = asyncio.create_task(self._deliver(host, attempt))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, host: str, attempt: Attempt) -> None:
        try:
            result = await self.send(attempt, self.timeout)
        except BaseException:
            self._release(attempt.id)  # not answered: it stays pending in the database
            raise
        finally:
            self._busy[host] -= 1
            self._in_flight -= 1
            self._wake.set()
        self._unrecorded[attempt.id] = (attempt, result)
        try:
            completion = await self._record(attempt, result)
        finally:
            self._forget(attempt.id)
        if completion is None:
            return
        self._log(attempt, host, result, completion)
        if completion.following is not None:
            self.schedule([completion.following])

    def _forget(self, attempt_id: int) -> None:
        """Stop holding an attempt whose outcome is written (one still unwritten stays held
        for the last try at shutdown). A page the poller is reading may still list it as
        pending: ``_finished`` makes the poller skip it."""
        if attempt_id not in self._unrecorded:
            self._release(attempt_id)
            self._finished.add(attempt_id)
            self._freed += 1
            if self._more_due and self._freed >= self._refill_after:
                self._freed = 0
                self._refill.set()

    def _complete(
        self, attempt: Attempt, result: Result, conn: sqlite3.Connection
    ) -> Completion | None:
        """``complete`` as a writer job, at the clock's time when the writer runs it."""
        return complete(conn, attempt, result, now=self.clock())

    async def _record(self, attempt: Attempt, result: Result) -> Completion | None:
        """Write the attempt's outcome, trying again with a backoff until the database takes
        it: an answered attempt is never left pending to be sent again."""
        tries = 0
        while True:
            try:
                completion = await self.store.write(partial(self._complete, attempt, result))
            except Exception as error:
                self.write_failures += 1
                wait = _WRITE_BACKOFF[min(tries, len(_WRITE_BACKOFF) - 1)]
                if not tries:
                    log.warning(
                        "the outcome of delivery %s could not be written (%s); it is kept in "
                        "memory and written again every few seconds, it is not sent again",
                        attempt.id,
                        error,
                        extra={"delivery_id": attempt.id, "error": str(error)},
                    )
                tries += 1
                await asyncio.sleep(wait)
                continue
            self._unrecorded.pop(attempt.id, None)
            return completion

    def _log(self, attempt: Attempt, host: str, result: Result, completion: Completion) -> None:
        """One line per failed or retrying attempt, with structured fields for a JSON log."""
        if completion.outcome == "delivered":
            return
        if completion.due_at is not None:
            wait = max(completion.due_at - self.clock(), 0.0)
            then = f"retry in {wait:.0f} s" if wait >= 1 else f"retry in {wait:.1f} s"
        else:
            then = "failed, no retries left"
        log.warning(
            "delivery %s attempt %s to %s: %s; %s",
            attempt.id,
            attempt.attempt,
            host,
            result.error,
            then,
            extra={
                "delivery_id": attempt.id,
                "attempt": attempt.attempt,
                "host": host,
                "outcome": completion.outcome,
                "error": result.error,
            },
        )

    async def _shut_down(self, poller: asyncio.Task[None]) -> None:
        """Start nothing new; let the attempts in flight get their answers (within their
        timeout) and record them, since one cut off would stay pending and reach the target
        again at the next start; try once more to write outcomes that could not be written;
        give the lease up so that the next listener delivers at once."""
        poller.cancel()
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=min(self.timeout, SHUTDOWN_GRACE))
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(poller, *self._sending, return_exceptions=True)
        for attempt, result in list(self._unrecorded.values()):
            try:
                await asyncio.wait_for(
                    self.store.write(partial(self._complete, attempt, result)), 10
                )
            except Exception as error:
                log.warning(
                    "the outcome of delivery %s could not be written before stopping (%s): it "
                    "stays pending and is sent again at the next start",
                    attempt.id,
                    error,
                    extra={"delivery_id": attempt.id, "error": str(error)},
                )
        with contextlib.suppress(Exception):  # a lease left behind goes stale in 15 s
            await asyncio.wait_for(
                self.store.write(partial(events.release_lease, holder=self.holder)), 10
            )
        self.delivering = False

    # -- the poller: lease, settings, the outbox in the database ------------------------------

    async def _poll(self) -> None:
        renewed = 0.0
        while True:
            try:
                if time.monotonic() - renewed >= self.POLL_SECONDS:
                    # the settings first: nothing is sent with a timeout other than the set one
                    self.timeout = (await self.store.read(workspace.load_settings)).timeout
                    await self._renew_lease()
                    renewed = time.monotonic()
                if self.delivering:
                    await self._load_due()
                    self._wake_if_due()
            except Exception as error:  # a locked or broken database: try again next time
                log.debug("the outbox poll failed: %s", error)
            self._refill.clear()
            with contextlib.suppress(TimeoutError):  # once a second, or when room is made
                await asyncio.wait_for(self._refill.wait(), self.POLL_SECONDS)

    def _wake_if_due(self) -> None:
        """Wake the dispatcher when an attempt it holds is due: it sleeps on the monotonic
        clock until the soonest due time, and due times are the wall clock's, which may jump
        ahead (a clock set forward, a test's clock)."""
        if self._due and self._due[0][0] <= self.clock():
            self._wake.set()

    async def _renew_lease(self) -> None:
        now = self.clock()
        try:
            lease = await self.store.write(
                partial(
                    events.take_lease,
                    holder=self.holder,
                    pid=os.getpid(),
                    host=socket.gethostname(),
                    now=now,
                    stale_after=self.lease_stale,
                )
            )
        except Exception:
            # Keep sending only while no other process can have taken a stale lease over.
            if self.delivering and self.clock() - self._lease_renewed > self.lease_stale / 2:
                self._set_lease(
                    False,
                    "this postwatch process could not renew its outbox lease (the database "
                    "cannot be written): it sends nothing until it can",
                )
            raise
        if lease.holder == self.holder:
            self._lease_renewed = now
            self._set_lease(True, "")
        else:
            self._set_lease(False, _holder_sentence(lease))

    def _set_lease(self, delivering: bool, other: str) -> None:
        changed = other != self.other_holder or delivering != self.delivering
        self.delivering = delivering
        self.other_holder = other
        if not changed:
            return
        if other:
            log.warning(other)
            self._drop_queued()
        else:
            log.info("this postwatch process delivers the postbacks of this database")
        self._wake.set()

    async def _load_due(self) -> None:
        """Load due attempts that are not held yet, soonest first, until memory is full. A
        page read while an attempt finishes may still list it: ``_finished`` skips it."""
        self._finished = set()
        self._more_due = False  # set again by _hold when something does not fit
        until = self.clock() + self.POLL_SECONDS
        after = self._resume_after
        self._resume_after = None
        for _ in range(_SCAN_PAGES):
            if len(self._known) >= self.capacity:
                self._more_due = True
                return
            page = await self.store.read(
                partial(events.due_attempts, until=until, after=after, limit=_PAGE)
            )
            fresh = [a for a in page if a.id not in self._finished and a.id not in self._known]
            if sum(self._hold(attempt) for attempt in fresh):
                self._wake.set()
            if len(page) < _PAGE:
                return
            after = (page[-1].due_at, page[-1].id)
        self._resume_after = after  # a long backlog: the next poll reads on from here
        self._more_due = True

    # -- one attempt on the wire ---------------------------------------------------------------

    async def send(self, attempt: Attempt, timeout: float) -> Result:
        """Send one attempt, read its answer to the end and judge it. Secrets are masked in
        the error and the answer kept."""
        started = self.clock()
        clock = time.perf_counter()  # the duration: monotonic, whatever the wall clock does
        result = Result(sent_at=started, duration_ms=0.0)
        secrets = kinds.secrets_of(attempt)
        body = bytearray()
        charset = "utf-8"
        try:
            wire = kinds.prepare(attempt)  # secrets are read now; one that is gone fails it
            secrets = kinds.secrets_of(wire)
            async with self.session.request(
                wire.method,
                wire_url(wire.url),
                headers=wire.headers,
                data=wire.body.encode() if wire.body else None,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                result.http_status = response.status
                result.retry_after = response.headers.get("Retry-After")
                charset = response.charset or "utf-8"
                await _read_answer(response, body)
            result.response = body.decode(charset, errors="replace")
            result.error = kinds.judge(attempt, response.status, result.response)
        except TimeoutError:
            if result.http_status is None:
                result.error = f"no answer within the timeout of {timeout:g} s"
            else:
                result.error = _incomplete(body, f"the timeout of {timeout:g} s ran out")
        except aiohttp.ClientError as error:
            if result.http_status is None:
                result.error = f"the request failed: {error or type(error).__name__}"
            else:
                result.error = _incomplete(body, "the connection was closed or reset")
        except ValueError as error:  # an invalid URL after macro expansion, a missing secret
            result.error = f"the request could not be sent: {error}"
        except LookupError as error:  # an unknown charset in the answer's Content-Type
            result.error = f"the answer could not be read: {error}"
        except Exception as error:  # anything else still ends the attempt, never loops on it
            result.error = f"the request failed: {error!r}"
        if result.response is None and result.http_status is not None:
            result.response = body.decode("utf-8", errors="replace")
        result.error = kinds.scrub(result.error, secrets)
        # Masked before it is cut to what is kept, so that no half secret survives the cut.
        result.response = _kept(kinds.scrub(result.response, secrets))
        result.duration_ms = round((time.perf_counter() - clock) * 1000, 2)
        return result


def _holder_sentence(lease: events.OutboxLease) -> str:
    return (
        f"another postwatch process (pid {lease.pid} on host {lease.host}) delivers for this "
        "database; this one leaves the outbox to it"
    )
