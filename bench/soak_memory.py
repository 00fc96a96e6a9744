"""Run 4 of ``bench/soak.py``: overload memory. Postbacks at a steady rate, every one fired to
a sink (another process) that takes 5 s to answer, so the outbox backlog grows for the whole
run; the listener's resident memory is sampled every second from /proc/PID/status."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import load
import run as bench_run
from soak_common import (
    SINK_CORE,
    Check,
    Service,
    check,
    kept_running,
    listener_config,
    pending,
    print_run,
    rss_kib,
    sink_config,
)

SINK_DELAY_MS = 5000
TARGET_GROWTH_MIB = 25.0  # end - start: "flat", however large the backlog


async def sample_rss(pid: int, samples: list[tuple[float, int]], stop: asyncio.Event) -> None:
    """VmRSS every second until ``stop``."""
    began = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - began, rss_kib(pid)))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            continue
    samples.append((time.monotonic() - began, rss_kib(pid)))


async def overload(directory: Path, rate: float, seconds: float) -> list[Check]:
    """Run 4."""
    run = "4 overload"
    directory.mkdir(parents=True)
    sink = Service(
        "slow-sink",
        directory / "sink.db",
        sink_config(directory, "sink", [{"name": "slow", "delay_ms": SINK_DELAY_MS}]),
        bench_run.free_port(),
        directory,
        SINK_CORE,
    )
    url = f"{sink.base}/sink/slow?c={{clickid}}"
    listener = Service(
        "listener",
        directory / "listener.db",
        listener_config(directory, [("slow sink", url)], timeout=10, retry_schedule=(10, 60)),
        bench_run.free_port(),
        directory,
    )
    await sink.start()
    await listener.start()
    samples: list[tuple[float, int]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(listener.pid, samples, stop))
    try:
        client = await load.paced(listener.base, "mem-", rate, seconds)
    finally:
        stop.set()
        await sampler
    backlog = pending(listener.db)
    running = kept_running(run, listener)
    await listener.stop(10)
    await sink.stop(10)
    return report(run, rate, seconds, client, samples, backlog, running)


def report(
    run: str,
    rate: float,
    seconds: float,
    client: dict[str, Any],
    samples: list[tuple[float, int]],
    backlog: int,
    running: Check,
) -> list[Check]:
    mib = [kib / 1024 for _, kib in samples if kib]
    start, end, peak = (mib[0], mib[-1], max(mib)) if mib else (0.0, 0.0, 0.0)
    growth = end - start
    per_thousand = growth / (backlog / 1000) if backlog else 0.0
    errors = sum(
        client.get(key, 0)
        for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    step = max(1, len(mib) // 12)
    rows: list[list[Any]] = [
        [
            "load",
            f"{rate:g} postbacks/s for {seconds:g} s, each fired to a sink taking "
            f"{SINK_DELAY_MS / 1000:g} s",
        ],
        ["postbacks sent / not answered 2xx", f"{client['requests']} / {errors}"],
        ["client p50 / p99 ms", f"{client['p50_us'] / 1000:.1f} / {client['p99_us'] / 1000:.1f}"],
        ["RSS start / max / end MiB", f"{start:.1f} / {peak:.1f} / {end:.1f}"],
        ["RSS over the run, MiB", " ".join(f"{m:.0f}" for m in mib[::step])],
        ["pending attempts at the end (backlog)", backlog],
        ["growth per 1,000 pending, MiB", f"{per_thousand:.2f}"],
    ]
    checks = [
        running,
        check(
            run,
            f"RSS flat under a growing backlog (end - start <= {TARGET_GROWTH_MIB:g} MiB)",
            f"+{growth:.1f} MiB for {backlog} pending",
            growth <= TARGET_GROWTH_MIB and bool(mib),
            f"RSS grew {growth:.1f} MiB ({per_thousand:.2f} MiB per 1,000 pending)",
        ),
        check(
            run,
            "every postback answered 2xx under overload",
            f"{errors} errors",
            errors == 0,
            f"{errors} of {client['requests']} postbacks not answered 2xx",
        ),
    ]
    print_run(f"4. Overload memory, {seconds:g} s", rows, checks)
    return checks
