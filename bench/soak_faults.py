"""Run 3 of ``bench/soak.py``: the eight outbound fault classes, one sink each, and a healthy
sink's delivery latency with all of them running at once, against a run where those eight
targets answer 200 (the same nine deliveries a conversion: the faults, not the extra work, are
what is compared).

The seven faulty sinks, and the eight healthy ones of the run without faults, are built-in
sinks of one ``postwatch serve`` process; the healthy sink is another process (another
host:port, as a traffic source apart would be); "connection refused" is a port nobody listens
on. The listener's campaign fires one postback to each for every approved Deposit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import load
import run as bench_run
from soak_common import (
    SINK_CORE,
    Check,
    Service,
    arrivals,
    check,
    kept_running,
    listener_config,
    print_run,
    read_db,
    sink_config,
    sink_receipts,
    table,
)

TIMEOUT = 3.0  # [delivery] timeout of the listener
SCHEDULE = (2.0, 30.0)  # its retry schedule
RETRY_AFTER = 10  # what the 429 sink sends: well above the schedule's first 2 s
TARGET_P99_RATIO = 2.0
HEALTHY = "healthy"


@dataclass
class Fault:
    """One fault class: its name, the sink's settings, and what the sink does."""

    name: str
    sink: dict[str, Any] | None  # None: no sink at all (the port is closed)
    does: str


FAULTS = [
    Fault("http500", {"status": 500, "body": "internal error"}, "500"),
    Fault(
        "http429",
        {"status": 429, "body": "too many requests", "retry_after": RETRY_AFTER},
        f"429 + Retry-After: {RETRY_AFTER}",
    ),
    Fault("http301", {"status": 301, "body": "moved"}, "301, no Location followed"),
    Fault("hang", {"fault": "hang"}, f"accepts, never answers (timeout {TIMEOUT:g} s)"),
    Fault("reset", {"fault": "reset", "body": "ok " * 2000}, "200, half the body, TCP reset"),
    Fault(
        "slowbody",
        {"fault": "slow_body", "body": "ok, slowly"},
        f"200, body 1 byte/s for 10 s (timeout {TIMEOUT:g} s)",
    ),
    Fault("refused", None, "connection refused (closed port)"),
    Fault("failbody", {"body": "error: unknown click id"}, "200 'error: ...' (failure_body)"),
]


@dataclass
class FirstAttempt:
    """The first attempt of one fault's delivery as recorded, and when the next is due."""

    outcome: str
    http_status: int | None
    error: str
    next_due_s: float | None  # from the end of the first attempt to the second's due time


def first_attempts(db: Path, click_id: str) -> dict[str, FirstAttempt]:
    """Per postback config, attempt 1 of the conversion of ``click_id``."""
    found: dict[str, FirstAttempt] = {}
    with contextlib.closing(read_db(db)) as conn:
        rows = conn.execute(
            "SELECT k.postback, d.attempt, d.outcome, d.http_status, d.error, d.sent_at,"
            " d.duration_ms, d.due_at FROM deliveries d JOIN decisions k ON k.id = d.decision_id"
            " JOIN conversions c ON c.id = k.conversion_id WHERE c.click_id = ?"
            " AND d.resend_of IS NULL ORDER BY d.attempt",
            (click_id,),
        ).fetchall()
    ended: dict[str, float] = {}
    for postback, attempt, outcome, status, error, sent_at, duration_ms, due_at in rows:
        if attempt == 1:
            found[postback] = FirstAttempt(outcome, status, error or "", None)
            if sent_at is not None:
                ended[postback] = float(sent_at) + float(duration_ms or 0) / 1000
        elif attempt == 2 and postback in found and postback in ended:
            found[postback].next_due_s = float(due_at) - ended[postback]
    return found


async def probe(db: Path, listener: Service, wait: float) -> dict[str, FirstAttempt]:
    """One approved Deposit; wait until every first attempt is finished (or ``wait`` s)."""
    await asyncio.to_thread(
        _get, f"{listener.base}/postback?clickid=probe-1&type=Deposit&status=approved&sum=5"
    )
    deadline = time.monotonic() + wait
    while True:
        found = first_attempts(db, "probe-1")
        done = all(a.outcome != "pending" for a in found.values())
        if (len(found) == len(FAULTS) + 1 and done) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.25)


def _get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()


def judge(fault: Fault, attempt: FirstAttempt | None) -> str | None:
    """Why the first attempt is wrong, or None."""
    if attempt is None:
        return "no first attempt recorded"
    if attempt.outcome == "pending":
        return "the first attempt was not finished in time"
    if attempt.outcome != "retrying":
        return f"first attempt recorded '{attempt.outcome}'" + (
            f" (HTTP {attempt.http_status})" if attempt.http_status else ""
        )
    if not attempt.error:
        return "retrying with no reason recorded"
    if fault.name == "http429" and (attempt.next_due_s or 0) < RETRY_AFTER - 0.5:
        due = attempt.next_due_s
        return (
            f"next attempt due after {due:.1f} s, Retry-After said {RETRY_AFTER} s"
            if (due is not None)
            else "no next attempt queued"
        )
    return None


@dataclass
class Latency:
    """Arrival at the listener to receipt at the healthy sink, in ms; and the load's answers."""

    p50: float
    p99: float
    delivered: int
    postbacks: int
    sent: int
    not_2xx: int


async def healthy_latency(
    listener: Service, healthy: Service, prefix: str, rate: float, seconds: float
) -> Latency:
    """Paced postbacks; arrival at the listener to receipt at the healthy sink."""
    client = await load.paced(listener.base, prefix, rate, seconds)
    not_2xx = sum(
        client[key]
        for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    arrived = arrivals(listener.db, prefix)
    deadline = time.monotonic() + 60
    while True:
        received = sink_receipts(healthy.db, HEALTHY)
        got = [min(received[c]) - at for c, at in arrived.items() if c in received]
        if len(got) == len(arrived) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    return Latency(
        load.percentile(got, 50) * 1000,
        load.percentile(got, 99) * 1000,
        len(got),
        len(arrived),
        client["requests"],
        not_2xx,
    )


async def faults(directory: Path, rate: float, seconds: float) -> list[Check]:
    """Run 3."""
    run = "3 faults"
    directory.mkdir(parents=True)
    healthy = Service(
        "healthy-sink",
        directory / "healthy.db",
        sink_config(directory, "healthy", [{"name": HEALTHY}]),
        bench_run.free_port(),
        directory,
        SINK_CORE,
    )
    faulty_sinks = [{"name": f.name, **f.sink} for f in FAULTS if f.sink is not None]
    # the run without faults sends the same nine deliveries, the eight to these instead
    faulty_sinks += [{"name": f"{f.name}-ok", "body": "ok"} for f in FAULTS]
    faulty = Service(
        "fault-sinks",
        directory / "faults.db",
        sink_config(directory, "faults", faulty_sinks),
        bench_run.free_port(),
        directory,
        SINK_CORE,
    )
    closed_port = bench_run.free_port()  # bound once, then closed: nobody listens there
    healthy_url = f"{healthy.base}/sink/{HEALTHY}?c={{clickid}}"
    targets = [("healthy", healthy_url)] + [
        (
            f.name,
            f"http://127.0.0.1:{closed_port}/refused?c={{clickid}}"
            if f.sink is None
            else f"{faulty.base}/sink/{f.name}?c={{clickid}}",
        )
        for f in FAULTS
    ]
    await healthy.start()
    await faulty.start()

    base_dir, fault_dir = directory / "without-faults", directory / "with-faults"
    base_dir.mkdir()
    fault_dir.mkdir()
    settings: dict[str, Any] = {
        "timeout": TIMEOUT,
        "retry_schedule": SCHEDULE,
        "failure_body": "^error",
    }
    answering = targets[:1] + [
        (f.name, f"{faulty.base}/sink/{f.name}-ok?c={{clickid}}") for f in FAULTS
    ]
    baseline = Service(
        "listener",
        base_dir / "listener.db",
        listener_config(base_dir, answering, **settings),
        bench_run.free_port(),
        base_dir,
    )
    await baseline.start()
    without = await healthy_latency(baseline, healthy, "base-", rate, seconds)
    await baseline.stop()

    listener = Service(
        "listener",
        fault_dir / "listener.db",
        listener_config(fault_dir, targets, **settings),
        bench_run.free_port(),
        fault_dir,
    )
    await listener.start()
    found = await probe(listener.db, listener, TIMEOUT * 2 + 10)
    with_faults = await healthy_latency(listener, healthy, "fault-", rate, seconds)
    running = kept_running(run, listener)
    await listener.stop()
    await faulty.stop(5)
    await healthy.stop(5)
    return report(rate, seconds, found, (without, with_faults), run, running)


def report(
    rate: float,
    seconds: float,
    found: dict[str, FirstAttempt],
    latencies: tuple[Latency, Latency],
    run: str,
    running: Check,
) -> list[Check]:
    without, with_faults = latencies
    checks: list[Check] = []
    rows = []
    for fault in FAULTS:
        attempt = found.get(fault.name)
        failure = judge(fault, attempt)
        if attempt is None:
            rows.append([fault.name, fault.does, "-", "-", "-", "-"])
        else:
            due = "-" if attempt.next_due_s is None else f"{attempt.next_due_s:.1f}"
            status = "-" if attempt.http_status is None else str(attempt.http_status)
            rows.append([fault.name, fault.does, attempt.outcome, status, attempt.error[:70], due])
        figure = "-" if attempt is None else attempt.outcome
        checks.append(Check(run, f"first attempt: {fault.name}", figure, failure))
    print(
        f"\n### 3. Outbound faults (timeout {TIMEOUT:g} s, retry schedule "
        f"{', '.join(f'{s:g}' for s in SCHEDULE)} s)\n",
        flush=True,
    )
    print(
        table(["sink", "does", "first attempt", "HTTP", "error recorded", "next due in s"], rows),
        flush=True,
    )
    ratio = with_faults.p99 / without.p99 if without.p99 else float("inf")
    p50_ratio = with_faults.p50 / without.p50 if without.p50 else float("inf")
    latency_rows: list[list[Any]] = [
        ["load", f"{rate:g} approved Deposits/s for {seconds:g} s, each run"],
        [
            "postbacks sent / not answered 2xx, without / with faults",
            f"{without.sent} / {without.not_2xx}, {with_faults.sent} / {with_faults.not_2xx}",
        ],
        [
            "healthy sink, the other eight targets answering 200: p50 / p99 ms",
            f"{without.p50:.1f} / {without.p99:.1f}",
        ],
        [
            "healthy sink, all 8 faults at once: p50 / p99 ms",
            f"{with_faults.p50:.1f} / {with_faults.p99:.1f}",
        ],
        ["ratio with / without: p50, p99", f"{p50_ratio:.2f}, {ratio:.2f}"],
        [
            "healthy delivered without / with faults",
            f"{without.delivered} of {without.postbacks} / "
            f"{with_faults.delivered} of {with_faults.postbacks}",
        ],
    ]
    lost = (without.postbacks - without.delivered) + (with_faults.postbacks - with_faults.delivered)
    latency_checks = [
        running,
        check(
            run,
            f"healthy p99 within {TARGET_P99_RATIO:g}x with faults",
            f"{ratio:.2f}x",
            ratio <= TARGET_P99_RATIO,
            f"p99 {with_faults.p99:.1f} ms vs {without.p99:.1f} ms with the eight answering 200",
        ),
        check(
            run,
            "healthy sink got every delivery within 60 s",
            f"{lost} missing",
            lost == 0 and with_faults.postbacks > 0,
            f"{lost} healthy deliveries not received",
        ),
    ]
    print_run("3. Healthy sink next to the faults", latency_rows, latency_checks)
    return checks + latency_checks
