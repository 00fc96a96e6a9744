"""A Python load generator for the benchmark: postbacks with unique click ids.

Two modes, each printing one ``BENCH_JSON {...}`` line with the same keys as the wrk script:

- ``closed``: N connections, each sending its next request as soon as the previous one is
  answered, for a fixed time (the fallback when wrk is missing);
- ``paced``: a fixed schedule of R requests a second for a fixed time (open loop: a slow answer
  does not delay the next request), for the end-to-end run. Latency is counted from the
  scheduled time, so a stalled generator shows up in the figures rather than hiding.

    python bench/load.py closed --base http://127.0.0.1:8080 --connections 50 --duration 10
    python bench/load.py paced --base http://127.0.0.1:8080 --rate 500 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import time
from typing import Any

import aiohttp

QUERY = "type=Deposit&status=approved&sum=50"


def postback_url(base: str, prefix: str, n: int) -> str:
    return f"{base}/postback?clickid={prefix}{n}&{QUERY}"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(max(1, math.ceil(pct / 100 * len(ordered))), len(ordered))
    return ordered[rank - 1]


def summary(latencies: list[float], duration: float, errors: dict[str, int]) -> dict[str, Any]:
    """The figures of one run; latencies in seconds, figures in microseconds."""
    return {
        "requests": len(latencies),
        "duration_us": round(duration * 1e6),
        "p50_us": round(percentile(latencies, 50) * 1e6),
        "p90_us": round(percentile(latencies, 90) * 1e6),
        "p99_us": round(percentile(latencies, 99) * 1e6),
        "max_us": round(max(latencies, default=0.0) * 1e6),
        "mean_us": round(sum(latencies) / len(latencies) * 1e6, 1) if latencies else 0.0,
        **errors,
    }


async def _get(session: aiohttp.ClientSession, url: str, errors: dict[str, int]) -> bool:
    try:
        async with session.get(url) as response:
            await response.read()
            if response.status >= 400:
                errors["status_errors"] += 1
                return False
            return True
    except TimeoutError:
        errors["timeouts"] += 1
    except aiohttp.ClientError:
        errors["read_errors"] += 1
    return False


def _errors() -> dict[str, int]:
    return {
        "connect_errors": 0,
        "read_errors": 0,
        "write_errors": 0,
        "status_errors": 0,
        "timeouts": 0,
    }


async def closed(base: str, prefix: str, connections: int, duration: float) -> dict[str, Any]:
    """``connections`` workers, each one request at a time, for ``duration`` seconds."""
    counter = itertools.count(1)
    latencies: list[float] = []
    errors = _errors()
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + duration

        async def worker() -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                await _get(session, postback_url(base, prefix, next(counter)), errors)
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return summary(latencies, elapsed, errors)


async def paced(base: str, prefix: str, rate: float, duration: float) -> dict[str, Any]:
    """Request n is due at ``start + n / rate``; each one is sent on its own task."""
    total = round(rate * duration)
    latencies: list[float] = []
    errors = _errors()
    max_lag = 0.0
    connector = aiohttp.TCPConnector(limit=1000)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(n: int, due: float) -> None:
            await _get(session, postback_url(base, prefix, n), errors)
            latencies.append(time.perf_counter() - due)

        tasks: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        for n in range(1, total + 1):
            due = started + (n - 1) / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            max_lag = max(max_lag, time.perf_counter() - due)
            task = asyncio.create_task(one(n, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        sent_for = time.perf_counter() - started
        await asyncio.gather(*tasks)
    result = summary(latencies, sent_for, errors)
    result["scheduled"] = total
    result["max_send_lag_us"] = round(max_lag * 1e6)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("closed", "paced"))
    parser.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--prefix", default="py-", help="click id prefix (ids stay unique)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    if args.mode == "closed":
        result = asyncio.run(closed(args.base, args.prefix, args.connections, args.duration))
    else:
        result = asyncio.run(paced(args.base, args.prefix, args.rate, args.duration))
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
