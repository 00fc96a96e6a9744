"""Runs 1 and 2 of ``bench/soak.py``: a listener under steady load, killed (SIGKILL) or
stopped (SIGTERM) at random moments and restarted on the same database, the load going on.

The load: clicks and postbacks at a fixed rate, open loop, every postback with a unique click
id (attached to campaign ``soak``) and txid; every ``approved_every``-th one is an approved
Deposit, which fires one postback to a sink in a second ``postwatch serve`` on its own
database. A request that fails (refused, reset, 5xx) is sent again, the same request, until it
is answered 2xx or ``retry_for`` seconds have passed; then it counts as not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import run as bench_run
from load import percentile
from soak_common import (
    SINK_CORE,
    Check,
    Service,
    check,
    fired_click_ids,
    integrity,
    listener_config,
    print_run,
    read_db,
    sink_config,
    sink_receipts,
    wait_settled,
)

SINK = "soak"
# The sink answers after this long, as a traffic source over the internet does: attempts are in
# flight at the moment of a kill or a stop (the sink has recorded them, the listener not yet).
SINK_DELAY_MS = 100
SETTLE_SECONDS = 90.0  # a restarted listener may wait for an outbox lease to expire


@dataclass
class Traffic:
    """The load generator: what it sent, and what was acknowledged."""

    base: str
    prefix: str
    rate: float
    approved_every: int = 4
    click_every: int = 10
    retry_for: float = 20.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    acked_txids: set[str] = field(default_factory=set)
    acked_clicks: set[str] = field(default_factory=set)
    given_up: int = 0
    rejected: int = 0
    scheduled: int = 0
    sends: int = 0
    latencies: list[float] = field(default_factory=list)

    def url(self, n: int) -> tuple[str, str, str]:
        """Request ``n``: its URL, its kind (click | postback) and its key (ref id | txid)."""
        if n % self.click_every == 0:
            ref = f"{self.prefix}ref-{n}"
            return f"{self.base}/click/soak?ref_id={ref}&sub1=soak", "click", ref
        status = "approved" if n % self.approved_every == 0 else "pending"
        txid = f"{self.prefix}tx-{n}"
        query = f"clickid={self.prefix}{n}&type=Deposit&status={status}&sum=10&txid={txid}"
        return f"{self.base}/postback?{query}", "postback", txid

    async def run(self, stop: asyncio.Event, max_seconds: float) -> None:
        """Send on schedule until ``stop`` is set (or ``max_seconds``), then wait for the
        requests still being retried."""
        connector = aiohttp.TCPConnector(limit=400)
        timeout = aiohttp.ClientTimeout(total=5)
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            started = time.monotonic()
            n = 0
            while not stop.is_set() and time.monotonic() - started < max_seconds:
                n += 1
                due = started + (n - 1) / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    if stop.is_set():
                        break
                task = asyncio.create_task(self.one(session, n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            self.scheduled = n - 1 if stop.is_set() else n
            await asyncio.gather(*tasks)

    async def one(self, session: aiohttp.ClientSession, n: int) -> None:
        url, kind, key = self.url(n)
        began = time.monotonic()
        while True:
            self.sends += 1
            status = await self._send(session, url)
            if status is not None:
                self.statuses[status] += 1
                if 200 <= status < 300:
                    (self.acked_txids if kind == "postback" else self.acked_clicks).add(key)
                    self.latencies.append(time.monotonic() - began)
                    return
                if status < 500:
                    self.rejected += 1  # a 4xx is an answer: sending it again changes nothing
                    return
            if time.monotonic() - began > self.retry_for:
                self.given_up += 1
                return
            await asyncio.sleep(0.2)

    async def _send(self, session: aiohttp.ClientSession, url: str) -> int | None:
        try:
            async with session.get(url) as response:
                await response.read()
                return response.status
        except TimeoutError:
            self.errors["timeout"] += 1
        except aiohttp.ClientConnectorError:
            self.errors["refused"] += 1
        except aiohttp.ClientError as error:
            self.errors[type(error).__name__] += 1
        return None


@dataclass
class Interruption:
    """One kill or stop: what the outbox held at that moment, and how long it took."""

    pending_due: int  # attempts pending and due: being sent, or about to be
    already_received: int  # of those, the ones the sink had already received
    stop_seconds: float | None = None  # SIGTERM: until the process exited (None: killed)
    restart_seconds: float = 0.0


def outbox_at_interruption(db: Path, sink_db: Path, at: float) -> tuple[int, int]:
    """Attempts pending and due at ``at`` (the process is gone: its database says what it
    had not finished), and how many of them the sink had already received."""
    with contextlib.closing(read_db(db)) as conn:
        click_ids = [
            str(row[0])
            for row in conn.execute(
                "SELECT c.click_id FROM deliveries d JOIN decisions k ON k.id = d.decision_id"
                " JOIN conversions c ON c.id = k.conversion_id"
                " WHERE d.outcome = 'pending' AND d.due_at <= ?",
                (at,),
            )
        ]
    received = sink_receipts(sink_db, SINK)
    return len(click_ids), sum(1 for click_id in click_ids if click_id in received)


@dataclass
class Setup:
    """A listener and its sink process for one run."""

    listener: Service
    sink: Service

    @classmethod
    def make(cls, directory: Path, name: str) -> Setup:
        directory.mkdir(parents=True)
        sink_port = bench_run.free_port()
        sink_toml = sink_config(directory, "sink", [{"name": SINK, "delay_ms": SINK_DELAY_MS}])
        sink = Service("sink", directory / "sink.db", sink_toml, sink_port, directory, SINK_CORE)
        url = f"http://127.0.0.1:{sink_port}/sink/{SINK}?c={{clickid}}&tx={{txid}}"
        config = listener_config(directory, [("sink", url)], timeout=5, retry_schedule=(1, 2, 5))
        port = bench_run.free_port()
        listener = Service(name, directory / "listener.db", config, port, directory)
        return cls(listener, sink)


async def interrupted_run(
    directory: Path,
    *,
    mode: str,
    count: int,
    rate: float,
    gap: tuple[float, float],
    rng: random.Random,
) -> tuple[Traffic, list[Interruption], Setup, float]:
    """The load against a listener interrupted ``count`` times (``mode``: kill | term);
    returns the load's figures, the interruptions, the processes and the settle time."""
    setup = Setup.make(directory, "listener")
    await setup.sink.start()
    await setup.listener.start()
    traffic = Traffic(setup.listener.base, f"{mode}-", rate)
    stop = asyncio.Event()
    budget = count * (gap[1] + 20) + 30  # the load cannot outlive a stuck controller
    load = asyncio.create_task(traffic.run(stop, budget))
    interruptions: list[Interruption] = []
    try:
        for _ in range(count):
            await asyncio.sleep(rng.uniform(*gap))
            interruptions.append(await _interrupt(setup, mode))
        await asyncio.sleep(gap[0])  # the load goes on a little on the last restart
    finally:
        stop.set()
        await load
    settle = await wait_settled(setup.listener.db, SETTLE_SECONDS)
    await setup.listener.stop()
    await setup.sink.stop()
    return traffic, interruptions, setup, settle


async def _interrupt(setup: Setup, mode: str) -> Interruption:
    listener = setup.listener
    at = time.time()
    stop_seconds: float | None = None
    if mode == "kill":
        listener.kill()
    else:
        stop_seconds = await listener.stop()
    due, received = outbox_at_interruption(listener.db, setup.sink.db, at)
    restart = await listener.start()
    return Interruption(due, received, stop_seconds, restart)


def stored_keys(db: Path, prefix: str) -> tuple[set[str], set[str]]:
    """The txids of the stored conversions and the external ids of the stored clicks."""
    with contextlib.closing(read_db(db)) as conn:
        txids = {
            str(row[0])
            for row in conn.execute(
                "SELECT txid FROM conversions WHERE txid LIKE ?", (prefix + "tx-%",)
            )
        }
        clicks = {
            str(row[0])
            for row in conn.execute(
                "SELECT external_id FROM clicks WHERE external_id LIKE ?", (prefix + "ref-%",)
            )
        }
    return txids, clicks


def deliveries(setup: Setup) -> tuple[int, int, int, int]:
    """Fired postbacks, how many the sink never received, duplicate receipts, receipts."""
    fired = fired_click_ids(setup.listener.db)
    received = sink_receipts(setup.sink.db, SINK)
    missing = len(fired - received.keys())
    duplicates = sum(len(times) - 1 for times in received.values())
    return len(fired), missing, duplicates, sum(len(times) for times in received.values())


def common_rows(
    traffic: Traffic, interruptions: list[Interruption], setup: Setup, settle: float
) -> list[list[Any]]:
    restarts = [i.restart_seconds for i in interruptions]
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(traffic.statuses.items()))
    errors = ", ".join(f"{name}: {n}" for name, n in traffic.errors.most_common()) or "none"
    return [
        ["requests scheduled (clicks 1 in 10, the rest postbacks)", traffic.scheduled],
        ["sends, counting the repeats of failed ones", traffic.sends],
        ["answers by HTTP status", statuses or "none"],
        ["sends with no answer", errors],
        [
            "acknowledged: postbacks / clicks",
            f"{len(traffic.acked_txids)} / {len(traffic.acked_clicks)}",
        ],
        [
            "not acknowledged within the retry window / answered 4xx",
            f"{traffic.given_up} / {traffic.rejected}",
        ],
        ["until acknowledged p50 / p99 / max ms", _latency(traffic.latencies)],
        [
            "restart until it answers p50 / max s",
            f"{percentile(restarts, 50):.2f} / {max(restarts, default=0):.2f}",
        ],
        ["settling after the load (outbox empty), s", f"{settle:.1f}"],
        ["the sink answers after", f"{SINK_DELAY_MS} ms"],
    ]


def _latency(values: list[float]) -> str:
    return (
        " / ".join(
            f"{x * 1000:.1f}" for x in (percentile(values, 50), percentile(values, 99), max(values))
        )
        if values
        else "-"
    )


def common_checks(run: str, traffic: Traffic, setup: Setup) -> list[Check]:
    txids, clicks = stored_keys(setup.listener.db, traffic.prefix)
    lost = len(traffic.acked_txids - txids)
    lost_clicks = len(traffic.acked_clicks - clicks)
    fired, missing, _, _ = deliveries(setup)
    state = integrity(setup.listener.db)
    return [
        check(
            run,
            "acknowledged postbacks stored",
            f"{len(traffic.acked_txids) - lost} of {len(traffic.acked_txids)}",
            lost == 0,
            f"{lost} acknowledged postbacks lost",
        ),
        check(
            run,
            "acknowledged clicks stored",
            f"{len(traffic.acked_clicks) - lost_clicks} of {len(traffic.acked_clicks)}",
            lost_clicks == 0,
            f"{lost_clicks} acknowledged clicks lost",
        ),
        check(run, "PRAGMA integrity_check", state, state == "ok", state),
        check(
            run,
            "every fired postback delivered at least once",
            f"{fired - missing} of {fired}",
            missing == 0 and fired > 0,
            f"{missing} of {fired} never reached the sink" if fired else "nothing fired",
        ),
    ]


async def sigkill(
    directory: Path, kills: int, rate: float, gap: float, rng: random.Random
) -> list[Check]:
    """Run 1: SIGKILL ``kills`` times under load, 1 to ``gap`` seconds after each start."""
    run = "1 SIGKILL"
    traffic, cuts, setup, settle = await interrupted_run(
        directory, mode="kill", count=kills, rate=rate, gap=(1.0, gap), rng=rng
    )
    _, _, duplicates, receipts = deliveries(setup)
    in_flight = sum(c.pending_due for c in cuts)
    received = sum(c.already_received for c in cuts)
    rows = [
        ["kills, restarts on the same database", f"{len(cuts)}, {len(cuts)}"],
        *common_rows(traffic, cuts, setup, settle),
        ["attempts pending and due at the kills (in flight)", in_flight],
        ["of them already received by the sink (sent again)", received],
        ["sink receipts", receipts],
    ]
    checks = [
        *common_checks(run, traffic, setup),
        check(
            run,
            "duplicates at the sink <= attempts in flight at the kills",
            f"{duplicates} <= {in_flight}",
            duplicates <= in_flight,
            f"{duplicates} duplicates, more than the {in_flight} in flight",
        ),
    ]
    print_run(f"1. SIGKILL x{kills} under {rate:g} requests/s", rows, checks)
    return checks


async def sigterm(
    directory: Path, stops: int, rate: float, gap: float, rng: random.Random
) -> list[Check]:
    """Run 2: SIGTERM (clean stop) and restart ``stops`` times under load, 1 to ``gap`` seconds
    after each start."""
    run = "2 SIGTERM"
    traffic, cuts, setup, settle = await interrupted_run(
        directory, mode="term", count=stops, rate=rate, gap=(1.0, gap), rng=rng
    )
    _, _, duplicates, receipts = deliveries(setup)
    stop_times = [c.stop_seconds for c in cuts if c.stop_seconds is not None]
    stuck = sum(1 for c in cuts if c.stop_seconds is None)
    server_errors = {code: n for code, n in traffic.statuses.items() if code >= 500}
    other_5xx = sum(n for code, n in server_errors.items() if code != 503)
    rows = [
        ["clean stops, restarts on the same database", f"{len(cuts)}, {len(cuts)}"],
        *common_rows(traffic, cuts, setup, settle),
        [
            "SIGTERM until exit p50 / max s",
            f"{percentile(stop_times, 50):.2f} / {max(stop_times, default=0):.2f}",
        ],
        ["attempts left pending (due) by the stops", sum(c.pending_due for c in cuts)],
        ["of them already received by the sink", sum(c.already_received for c in cuts)],
        ["answered 503 (during shutdown)", server_errors.get(503, 0)],
        ["sink receipts", receipts],
    ]
    checks = [
        *common_checks(run, traffic, setup),
        check(
            run,
            "no 5xx but 503",
            f"{other_5xx} other 5xx",
            other_5xx == 0,
            f"answers {server_errors}",
        ),
        check(
            run,
            "no duplicate deliveries",
            f"{duplicates} duplicates",
            duplicates == 0,
            f"{duplicates} deliveries received more than once",
        ),
        check(
            run,
            "every stop exits within 15 s",
            f"{stuck} had to be killed",
            stuck == 0,
            f"{stuck} of {len(cuts)} did not exit within 15 s of SIGTERM",
        ),
    ]
    print_run(f"2. SIGTERM x{stops} under {rate:g} requests/s", rows, checks)
    return checks
