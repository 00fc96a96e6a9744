"""Run 5 of ``bench/soak.py``: slowloris. A listener started with an open-files soft limit of
1024 (as under ``ulimit -n 1024``; the hard limit stays) gets more slow connections than that:
some send a request head one byte every few seconds, some connect and send nothing. Then
normal postbacks, each on a new connection, as a network sends them."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import load
import run as bench_run
from soak_common import (
    Check,
    Service,
    check,
    kept_running,
    listener_config,
    open_files_limit,
    print_run,
    raise_own_files_limit,
    table,
)

FILES_SOFT_LIMIT = 1024
TRICKLE_SECONDS = 3.0  # one byte of the head every this many seconds
# A head that never ends within the run: one byte every 3 s.
HEAD = (
    b"GET /postback?clickid=slowloris&type=Deposit&status=approved&sum=1 HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\nUser-Agent: soak-slowloris\r\nX-Padding: " + b"a" * 64 + b"\r\n"
)
JUDGE_SLOW_FROM_SECONDS = 60.0  # shorter runs only report what happened to slow connections


@dataclass
class Ending:
    """What happened to one slow connection, and after how many seconds."""

    kind: str  # trickle | silent
    outcome: str
    after: float


@dataclass
class Normal:
    ok: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


async def slow_client(
    port: int,
    trickle: bool,
    release: asyncio.Event,
    endings: list[Ending],
    opened: list[int],
    rng: random.Random,
) -> None:
    """One slow connection, held until the listener ends it or ``release`` is set."""
    kind = "trickle" if trickle else "silent"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    except (OSError, TimeoutError) as error:
        endings.append(Ending(kind, f"connect failed ({type(error).__name__})", 0.0))
        return
    opened[0] += 1
    began = time.monotonic()
    read = asyncio.ensure_future(reader.read(256))
    released = asyncio.ensure_future(release.wait())
    outcome = "still open at the end"
    sent = 0
    try:
        await asyncio.wait({read, released}, timeout=rng.uniform(0, TRICKLE_SECONDS))
        while not release.is_set() and not read.done():
            if trickle and sent < len(HEAD):
                writer.write(HEAD[sent : sent + 1])
                sent += 1
                await writer.drain()
            await asyncio.wait({read, released}, timeout=TRICKLE_SECONDS)
        if read.done():
            outcome = _ending(read)
    except OSError as error:  # ConnectionResetError, BrokenPipeError
        outcome = f"reset ({type(error).__name__} on write)"
    finally:
        read.cancel()
        released.cancel()
        writer.close()
    endings.append(Ending(kind, outcome, time.monotonic() - began))


def _ending(read: asyncio.Future[bytes]) -> str:
    if read.cancelled():
        return "still open at the end"
    error = read.exception()
    if error is not None:
        return f"reset ({type(error).__name__})"
    data = read.result()
    if not data:
        return "closed by the listener"
    first = data.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = first.split()
    return (
        f"answered {parts[1]}"
        if len(parts) > 1 and parts[0].startswith("HTTP/")
        else (f"answered {first[:30]!r}")
    )


async def normal_postbacks(base: str, count: int, rate: float, normal: Normal) -> None:
    """``count`` postbacks at ``rate``/s, each on a new connection."""
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(n: int) -> None:
            began = time.monotonic()
            try:
                async with session.get(load.postback_url(base, "normal-", n)) as response:
                    await response.read()
                    normal.statuses[response.status] += 1
                    if 200 <= response.status < 300:
                        normal.ok += 1
                        normal.latencies.append(time.monotonic() - began)
            except TimeoutError:
                normal.errors["timeout after 10 s"] += 1
            except aiohttp.ClientError as error:
                normal.errors[type(error).__name__] += 1

        tasks = []
        for n in range(1, count + 1):
            tasks.append(asyncio.create_task(one(n)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)


async def slowloris(
    directory: Path, *, slow: int, silent: int, seconds: float, normal: int
) -> list[Check]:
    """Run 5."""
    run = "5 slowloris"
    directory.mkdir(parents=True)
    own_limit = raise_own_files_limit()
    listener = Service(
        "listener",
        directory / "listener.db",
        listener_config(directory, []),
        bench_run.free_port(),
        directory,
        files_soft_limit=FILES_SOFT_LIMIT,
    )
    await listener.start()
    soft, hard = open_files_limit(listener.pid)
    rng = random.Random(5)
    endings: list[Ending] = []
    opened = [0]
    release = asyncio.Event()
    began = time.monotonic()
    clients = [
        asyncio.create_task(slow_client(listener.port, n < slow, release, endings, opened, rng))
        for n in range(slow + silent)
    ]
    try:
        while opened[0] + len(endings) < slow + silent and time.monotonic() - began < 15:
            await asyncio.sleep(0.2)  # all connected (or failed) before the normal postbacks
        connected_in = time.monotonic() - began
        await asyncio.sleep(2.0)
        result = Normal()
        # Sent over the first third of the run; the slow connections stay open until the
        # run's end and at least until every normal postback is answered or timed out.
        rate = max(1.0, normal / max(1.0, seconds / 3))
        await normal_postbacks(listener.base, normal, rate, result)
        await asyncio.sleep(max(0.0, began + seconds - time.monotonic()))
    finally:
        release.set()
        await asyncio.gather(*clients)
    running = kept_running(run, listener)
    await listener.stop(10)
    figures = Figures(slow, silent, seconds, normal, own_limit, soft, hard, connected_in)
    return report(run, figures, endings, result, running)


@dataclass
class Figures:
    """The set-up of a slowloris run and what was seen of the listener."""

    slow: int
    silent: int
    seconds: float
    normal: int
    own_limit: int
    soft: str  # the listener's open-files limits, as /proc/PID/limits shows them
    hard: str
    connected_in: float


def report(
    run: str, f: Figures, endings: list[Ending], result: Normal, running: Check
) -> list[Check]:
    groups: dict[tuple[str, str], list[float]] = {}
    for ending in endings:
        groups.setdefault((ending.kind, ending.outcome), []).append(ending.after)
    print(
        f"\n### 5. Slowloris: {f.slow} connections sending a head 1 byte / "
        f"{TRICKLE_SECONDS:g} s, {f.silent} sending nothing, for {f.seconds:g} s\n",
        flush=True,
    )
    print(
        table(
            ["connection", "what happened", "count", "after s: min", "p50", "max"],
            [
                [
                    kind,
                    outcome,
                    len(times),
                    f"{min(times):.1f}",
                    f"{load.percentile(times, 50):.1f}",
                    f"{max(times):.1f}",
                ]
                for (kind, outcome), times in sorted(groups.items())
            ],
        ),
        flush=True,
    )
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(result.statuses.items()))
    errors = ", ".join(f"{name}: {n}" for name, n in result.errors.most_common()) or "none"
    lat = result.latencies
    rows: list[list[Any]] = [
        ["listener open-files limit, soft / hard (started with soft 1024)", f"{f.soft} / {f.hard}"],
        ["this script's open-files limit", f.own_limit],
        ["slow connections opened within", f"{f.connected_in:.1f} s"],
        ["normal postbacks: answered 2xx / sent", f"{result.ok} / {f.normal}"],
        ["normal postbacks: answers by status", statuses or "none"],
        ["normal postbacks: errors", errors],
        [
            "normal postbacks p50 / max ms",
            f"{load.percentile(lat, 50) * 1000:.1f} / {max(lat, default=0) * 1000:.1f}",
        ],
    ]
    checks = [
        running,
        check(
            run,
            "every normal postback answered 2xx",
            f"{result.ok} of {f.normal}",
            result.ok == f.normal,
            f"{f.normal - result.ok} failed ({errors})",
        ),
        check(
            run,
            "listener raised its open-files soft limit to the hard one",
            f"soft {f.soft}, hard {f.hard}",
            f.soft == f.hard,
            f"soft limit still {f.soft} (hard {f.hard})",
        ),
    ]
    if f.seconds >= JUDGE_SLOW_FROM_SECONDS:
        still = sum(1 for e in endings if e.outcome == "still open at the end")
        checks.append(
            check(
                run,
                f"slow connections ended by the listener within {f.seconds:g} s",
                f"{still} still open",
                still == 0,
                f"{still} of {len(endings)} slow connections still open at the end",
            )
        )
    print_run("5. Slowloris: normal postbacks meanwhile", rows, checks)
    return checks
