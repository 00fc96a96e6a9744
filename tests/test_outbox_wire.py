"""The outbox on the wire, against real targets on loopback: per-target limits, Retry-After,
answers read to their end, the URL sent byte for byte, secrets masked, one log line per failed
attempt, outcomes kept when the database is locked, and the memory bound."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from listener.app import start
from listener.delivery import Outbox
from store.config import ConfigError, parse
from store.db import Store
from store.records import Settings
from tests.helpers import (
    BASE_CONFIG,
    Listener,
    Target,
    config_for,
    free_port,
    hold_answers,
    outbox,
    start_listener,
    stop_listener,
    until,
)


async def attempts_of(listener: Listener, clickid: str) -> list[dict[str, object]]:
    trace = await listener.trace(clickid)
    return list(trace["conversions"][0]["decisions"][0]["deliveries"])


async def fire(listener: Listener, **params: str) -> str:
    clickid = await listener.click(**params)
    status, body = await listener.postback(clickid=clickid, type="Lead")
    assert status == 200, body
    return clickid


# -- 2. a hanging target does not delay healthy ones -----------------------------------------


class Hang:
    """A target that reads the request and never answers; counts connections open at once."""

    def __init__(self) -> None:
        self.open = 0
        self.most = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most = max(self.most, self.open)
        try:
            await reader.read()  # until the client gives up
        finally:
            self.open -= 1
            writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]


async def test_a_hanging_target_does_not_delay_a_healthy_one(pw: Listener, target: Target) -> None:
    hang = Hang()
    await hang.start()
    await pw.configure(
        f"""
[delivery]
timeout = 60
retry_schedule = [60]
[[offer_sources]]
name = "AffNet"
[[traffic_sources]]
name = "Propeller"
postback_url = "http://127.0.0.1:{hang.port}/pb?c={{clickid}}"
[[campaigns]]
key = "casino-fr"
traffic_source = "Propeller"
offer_source = "AffNet"
[[campaigns.postbacks]]
name = "all events"
[[campaigns.postbacks]]
name = "paid deposits"
conditional = false
url = "http://127.0.0.1:{target.port}/ok?c={{clickid}}"
"""
    )
    # More hanging attempts than the 64 shared slots: each postback fires one of each.
    clickids = [await fire(pw) for _ in range(80)]
    await until(lambda: len(target.received) == 80)
    assert sorted(r.query["c"] for r in target.received) == sorted(clickids)
    assert hang.open == 8 and hang.most == 8  # the hanging ones are still in flight, 8 at most
    box = outbox(pw)
    assert box.per_host == 8
    assert sum(len(queue) for queue in box._waiting.values()) == 72  # wait their turn
    assert hang.server is not None
    hang.server.close()


# -- 3. Retry-After ----------------------------------------------------------------------------


async def test_retry_after_is_obeyed_on_a_503(pw: Listener, target: Target) -> None:
    answers = [
        web.Response(status=503, text="busy", headers={"Retry-After": "1"}),
        web.Response(text="OK"),
    ]

    async def scripted(request: web.Request) -> web.StreamResponse:
        return answers.pop(0)

    target.handler = scripted
    # the schedule would wait 5 minutes; the target asks for 1 s
    await pw.configure(config_for(target.port, "/pb").replace("[0.2, 0.2]", "[300]"))
    clickid = await fire(pw)
    await pw.delivered(clickid)
    first, second = await attempts_of(pw, clickid)
    assert (first["outcome"], first["http_status"]) == ("retrying", 503)
    assert second["outcome"] == "delivered"
    with sqlite3.connect(pw.store.path) as conn:
        ((sent, due),) = conn.execute(
            "SELECT d1.sent_at, d2.due_at FROM deliveries d1, deliveries d2"
            " WHERE d1.id = ? AND d2.id = ?",
            (first["id"], second["id"]),
        ).fetchall()
    assert 1.0 <= due - sent < 60  # Retry-After, not the 300 s of the schedule


class SteppedClock:
    """A wall clock that stands still until the test moves it on."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_on_the_listeners_clock_each_retry_is_due_exactly_and_sent_when_it_comes(
    tmp_path: Path, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """The schedule of a real outbox without waiting for it: a Retry-After of 2 minutes, then
    the schedule's hour, each due to the second and sent once the clock gets there."""
    answers = [
        web.Response(status=503, text="busy", headers={"Retry-After": "120"}),
        web.Response(status=500, text="oops"),
        web.Response(text="OK"),
    ]

    async def scripted(request: web.Request) -> web.StreamResponse:
        return answers.pop(0)

    target.handler = scripted
    start_at = 1_800_000_000.0
    clock = SteppedClock(start_at)
    caplog.set_level(logging.WARNING, "postwatch.delivery")
    store = await Store(tmp_path / "postwatch.db").open()
    runner = await start(store, Settings(), "127.0.0.1", 0, clock=clock)
    pw = Listener(store, runner, aiohttp.ClientSession())
    try:
        await pw.configure(config_for(target.port, "/pb").replace("[0.2, 0.2]", "[600, 3600]"))
        clickid = await fire(pw)

        def times() -> list[tuple[float, float | None, str]]:
            with sqlite3.connect(store.path) as conn:
                rows = conn.execute("SELECT due_at, sent_at, outcome FROM deliveries ORDER BY id")
                return [tuple(row) for row in rows]

        await until(lambda: len(times()) == 2 and len(caplog.records) == 1)
        assert times() == [(start_at, start_at, "retrying"), (start_at + 120, None, "pending")]
        clock.now += 120  # what the target asked for, not the schedule's 600 s
        await until(lambda: len(times()) == 3 and len(caplog.records) == 2)
        second = start_at + 120
        assert times()[1:] == [(second, second, "retrying"), (second + 3600, None, "pending")]
        clock.now += 3600
        await pw.delivered(clickid)
        assert [outcome for _, _, outcome in times()] == ["retrying", "retrying", "delivered"]
        assert len(target.received) == 3
        assert [r.getMessage().rsplit("; ", 1)[1] for r in caplog.records] == [
            "retry in 120 s",
            "retry in 3600 s",
        ]
    finally:
        await stop_listener(pw)


# -- 4. answers are read to their end ----------------------------------------------------------


async def test_failure_text_arriving_late_is_judged(pw: Listener, target: Target) -> None:
    async def late_error(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"OK ")
        await asyncio.sleep(0.3)
        await response.write(b"ERROR: unknown visitor")
        await response.write_eof()
        return response

    target.handler = late_error
    extra = 'failure_body = "ERROR"'
    await pw.configure(config_for(target.port, "/pb", extra).replace("[0.2, 0.2]", "[]"))
    clickid = await fire(pw)
    await pw.delivered(clickid)
    (attempt,) = await attempts_of(pw, clickid)
    assert attempt["outcome"] == "failed"
    assert attempt["response"] == "OK ERROR: unknown visitor"
    assert "failure_body" in str(attempt["error"])


SINK_CONFIG = BASE_CONFIG.replace("[0.2, 0.2]", "[]").replace("timeout = 2", "timeout = 1")


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("reset", "the connection was closed or reset after 17 bytes of its body"),
        ("slow_body", "the timeout of 1 s ran out after"),
    ],
)
async def test_an_incomplete_answer_is_a_failed_attempt(
    pw: Listener, fault: str, reason: str
) -> None:
    await pw.configure(
        SINK_CONFIG
        + f"""
[[sinks]]
name = "propeller"
status = 200
body = "OK and then more text"
fault = "{fault}"
"""
    )
    if fault == "reset":  # half the body: 17 of 35 bytes
        await pw.configure(SINK_CONFIG + SINK_RESET_BODY)
    await until(lambda: outbox(pw).timeout == 1)  # the settings are re-read once a second
    clickid = await fire(pw, ref_id="v1")
    await pw.delivered(clickid)
    (attempt,) = await attempts_of(pw, clickid)
    assert attempt["outcome"] == "failed" and attempt["http_status"] == 200
    assert str(attempt["error"]).startswith("the answer was incomplete: ")
    assert reason in str(attempt["error"])


SINK_RESET_BODY = """
[[sinks]]
name = "propeller"
status = 200
body = "OK and then more text and even more"
fault = "reset"
"""


# -- 7. the URL recorded is the URL sent ---------------------------------------------------------


async def test_the_sink_receives_the_recorded_url_byte_for_byte(pw: Listener) -> None:
    await pw.configure(
        BASE_CONFIG.replace(
            "?visitor_id={external_id}&payout={payout}",
            "?a=x%2Fy%3Az%40w%2Cv%27u&v={external_id}&p=%2F",
        )
    )
    clickid = await fire(pw, ref_id="a/b:c@d,e'f g+h")
    await pw.delivered(clickid)
    (attempt,) = await attempts_of(pw, clickid)
    _, records = await pw.get("/api/sink/propeller")
    assert records[0]["query"] == urlsplit(str(attempt["url"])).query
    assert "%2F" in records[0]["query"] and "%27" in records[0]["query"]


# -- 8. secrets never appear in errors -----------------------------------------------------------

TOKEN = "EAABsecretTOKEN0123456789"


def facebook_config(base_url: str) -> str:
    return f"""
[delivery]
timeout = 2
retry_schedule = []
[[offer_sources]]
name = "AffNet"
[[traffic_sources]]
name = "Meta"
[[campaigns]]
key = "ads"
traffic_source = "Meta"
offer_source = "AffNet"
[[campaigns.postbacks]]
name = "meta"
kind = "facebook"
pixel_id = "1234567890"
access_token = "{TOKEN}"
base_url = "{base_url}"
"""


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:CLOSED",  # nothing listens there
        "http://127.0.0.1:99999",  # aiohttp refuses the URL, and names it in its error
        "http://127.0.0.1:ECHO",  # the target echoes the request line in its answer
    ],
)
async def test_secrets_are_masked_in_errors_answers_and_logs(
    pw: Listener, target: Target, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "postwatch.delivery")

    async def echo(request: web.Request) -> web.StreamResponse:
        return web.Response(status=400, text=f"bad request to {request.raw_path}")

    target.handler = echo
    url = base_url.replace("CLOSED", str(free_port())).replace("ECHO", str(target.port))
    await pw.configure(facebook_config(url))
    clickid = await pw.click("ads", fbclid="IwAR2F4")
    await pw.postback(clickid=clickid, type="Lead")
    await pw.delivered(clickid)
    (attempt,) = await attempts_of(pw, clickid)
    assert attempt["outcome"] == "failed" and attempt["error"]
    assert TOKEN not in str(attempt) and TOKEN[:12] not in str(attempt)
    assert TOKEN not in caplog.text and TOKEN[:12] not in caplog.text
    if "ECHO" in base_url:
        assert "access_token=EAAB****" in str(attempt["response"])


# -- 9. one log line per failed or retrying attempt ----------------------------------------------


async def test_each_failed_attempt_is_logged_with_its_fields(
    pw: Listener, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, text="oops")

    target.handler = failing
    caplog.set_level(logging.WARNING, "postwatch.delivery")
    await pw.configure(config_for(target.port, "/pb"))
    clickid = await fire(pw)
    await pw.delivered(clickid)
    attempts = await attempts_of(pw, clickid)
    lines = [r for r in caplog.records if r.name == "postwatch.delivery"]
    host = f"127.0.0.1:{target.port}"
    error = "HTTP 500: only a 2xx answer counts as delivered"
    assert [r.getMessage() for r in lines] == [
        f"delivery {attempts[0]['id']} attempt 1 to {host}: {error}; retry in 0.2 s",
        f"delivery {attempts[1]['id']} attempt 2 to {host}: {error}; retry in 0.2 s",
        f"delivery {attempts[2]['id']} attempt 3 to {host}: {error}; failed, no retries left",
    ]
    assert all(r.levelno == logging.WARNING for r in lines)
    fields = [(r.delivery_id, r.attempt, r.host, r.outcome, r.error) for r in lines]  # type: ignore[attr-defined]
    assert fields == [
        (attempts[0]["id"], 1, host, "retrying", error),
        (attempts[1]["id"], 2, host, "retrying", error),
        (attempts[2]["id"], 3, host, "failed", error),
    ]


# -- 5. an outcome that cannot be written is kept, not sent again --------------------------------


async def test_an_outcome_written_after_a_database_lock_is_sent_once(
    pw: Listener, target: Target
) -> None:
    arrived = asyncio.Event()
    answer = asyncio.Event()

    async def gated(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await answer.wait()
        return web.Response(text="OK")

    target.handler = gated
    await pw.configure(config_for(target.port, "/pb").replace("timeout = 1", "timeout = 30"))
    # a short busy timeout on the writer, so that the lock below outlasts it quickly
    await pw.store.write(lambda conn: conn.execute("PRAGMA busy_timeout = 100"))
    clickid = await fire(pw)
    await asyncio.wait_for(arrived.wait(), 10)
    lock = sqlite3.connect(pw.store.path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        answer.set()  # the target answers; the outcome cannot be written
        await until(lambda: outbox(pw).write_failures >= 2)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    await pw.delivered(clickid)
    (attempt,) = await attempts_of(pw, clickid)
    assert attempt["outcome"] == "delivered" and attempt["http_status"] == 200
    assert len(target.received) == 1


# -- 6. the outbox holds a bounded number of attempts in memory -------------------------------


async def test_a_backlog_larger_than_memory_is_paged_from_the_database(
    tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Outbox, "CAPACITY", 5)
    release = hold_answers(target)
    listener = await start_listener(tmp_path / "pw.db")
    try:
        await listener.configure(
            config_for(target.port, "/pb?c={clickid}").replace("timeout = 1", "timeout = 30")
        )
        box = outbox(listener)
        await until(lambda: box.delivering)
        clickids = [await fire(listener) for _ in range(30)]
        await until(lambda: len(target.received) == 5)
        with sqlite3.connect(listener.store.path) as conn:
            ((pending,),) = conn.execute(
                "SELECT count(*) FROM deliveries WHERE outcome = 'pending'"
            ).fetchall()
        assert pending == 30 and box.in_memory == 5  # the rest waits in the database only
        release.set()
        await until(lambda: len(target.received) == 30)
        for clickid in clickids:
            await listener.delivered(clickid)
        assert sorted(r.query["c"] for r in target.received) == sorted(clickids)
        assert box.peak_in_memory == 5
    finally:
        release.set()
        await stop_listener(listener)


async def test_a_backlog_is_read_on_as_attempts_finish_not_once_a_poll(
    tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more due than memory holds, finishing attempts make room and the outbox reads
    on at once: a backlog drains at the target's pace, not a page per poll."""
    monkeypatch.setattr(Outbox, "CAPACITY", 4)
    release = hold_answers(target)
    listener = await start_listener(tmp_path / "pw.db")
    try:
        await listener.configure(
            config_for(target.port, "/pb?c={clickid}").replace("timeout = 1", "timeout = 30")
        )
        box = outbox(listener)
        await until(lambda: box.delivering)
        clickids = [await fire(listener) for _ in range(40)]
        await until(lambda: len(target.received) == 4)  # the rest waits in the database
        monkeypatch.setattr(box, "POLL_SECONDS", 3600.0)  # no periodic poll from now on
        await asyncio.sleep(1.1)  # the poll under way ends; the next would be in an hour
        release.set()
        await until(lambda: len(target.received) == 40)
        assert sorted(r.query["c"] for r in target.received) == sorted(clickids)
        assert box.peak_in_memory <= 4
    finally:
        release.set()
        await stop_listener(listener)


async def test_the_limit_per_target_is_a_setting(tmp_path: Path) -> None:
    hang = Hang()
    await hang.start()
    listener = await start_listener(tmp_path / "pw.db", Settings(per_target=3))
    try:
        await listener.configure(
            config_for(hang.port, "/pb?c={clickid}").replace("timeout = 1", "timeout = 60")
        )
        await until(lambda: outbox(listener).delivering)
        for _ in range(10):
            await fire(listener)
        await until(lambda: hang.open == 3)
        await asyncio.sleep(0.2)  # room for a fourth, were the limit not kept
        assert hang.most == 3 and outbox(listener).per_host == 3
    finally:
        await stop_listener(listener)
        assert hang.server is not None
        hang.server.close()
    with pytest.raises(ConfigError, match="'per_target' is 0; use 1 to 64"):
        parse("[delivery]\nper_target = 0\n")
