"""The benchmark of the core pipeline (``make bench``): prints figures, asserts nothing.

On a machine with two cores or more the listener is pinned to core 0 and the load generator
to core 1. Three runs, each on a fresh database:

1. throughput: ``postwatch serve`` under 50 connections of postbacks with unique click ids
   (attached to the bench campaign by ``unknown_clicks``), two conditional postback configs
   (Deposit + approved, which fires, and Lead, which filters), so that every postback is
   parsed, stored, judged by the rules and fires one delivery to the built-in sink, all on the
   same core; and again with both configs filtering (the ingest path alone), each such run
   followed by the same load on a bare aiohttp handler that only answers 200: the ratio of the
   two is the cost of postwatch's own work. A virtual machine's speed drifts by ±10% from one
   run to the next, so that pair is run ``--rounds`` times (3) and the round with the median
   ratio is reported, with every round's ratio.
2. end to end: a steady 500 postbacks/s; from each postback's arrival to the sink's receipt
   of each of its deliveries, read from the database (both times come from the listener's
   clock).
3. peak memory of the listener (``VmHWM``).

The figures are printed and written to ``bench/results/latest.json``.

    .venv/bin/python bench/run.py [--duration 10] [--rate 500] [--generator auto|wrk|python]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PY = sys.executable
LISTENER_CORE = "0"
GENERATOR_CORE = "1"

TARGET_RATIO = 0.35
TARGET_P99_MS = 20.0
TARGET_E2E_P50_MS = 20.0
TARGET_E2E_P99_MS = 100.0

CONFIG = """
conversion_types = ["Lead", "Deposit"]

[listener]
unknown_clicks = "attach:bench"

[delivery]
timeout = 10
retry_schedule = [1, 5]

[[offer_sources]]
name = "Bench Network"
default_status = "pending"
duplicates = "update"

[[traffic_sources]]
name = "Bench Traffic"
click_id_param = "ref_id"
postback_url = "http://127.0.0.1:PORT/sink/bench?c={clickid}&p=source"

[[campaigns]]
key = "bench"
name = "Bench"
traffic_source = "Bench Traffic"
offer_source = "Bench Network"

"""
# The CPA buyer's setup: every bench postback (Deposit, approved) fires "paid deposits" once to
# the sink, and "leads" judges it and filters it: rules evaluated, one delivery each.
FIRING = """
[[campaigns.postbacks]]
name = "paid deposits"
conditional = true
types = ["Deposit"]
statuses = ["approved"]
url = "http://127.0.0.1:PORT/sink/bench?c={clickid}&p=paid&status={status}&payout={payout}"

[[campaigns.postbacks]]
name = "leads"
conditional = true
types = ["Lead"]
url = "http://127.0.0.1:PORT/sink/bench?c={clickid}&p=leads"
"""
# Both configs are judged and filter every bench postback: the ingest path alone.
FILTERED = """
[[campaigns.postbacks]]
name = "leads"
conditional = true
types = ["Lead"]
url = "http://127.0.0.1:PORT/sink/bench?c={clickid}&p=leads"

[[campaigns.postbacks]]
name = "declined deposits"
conditional = true
types = ["Deposit"]
statuses = ["declined"]
url = "http://127.0.0.1:PORT/sink/bench?c={clickid}&p=declined"
"""
DELIVERIES_PER_POSTBACK = 1


# --- the machine and the tools ------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    return 0.0


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding ``path`` (ext4, tmpfs…), from /proc/mounts."""
    best, kind = "", "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if (
                len(parts) >= 3
                and str(path.resolve()).startswith(parts[1])
                and len(parts[1]) >= len(best)
            ):
                best, kind = parts[1], parts[2]
    return kind


def ensure_wrk() -> str | None:
    """wrk's path; installs it from Debian when missing and running as root; else None."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("wrk is missing: trying apt-get install -y wrk …", flush=True)
    for steps in (
        [["apt-get", "install", "-y", "-q", "wrk"]],
        [["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "wrk"]],
    ):
        try:
            if all(_quietly(step, env) for step in steps):
                break
        except (OSError, subprocess.TimeoutExpired):
            continue
    return shutil.which("wrk")


def _quietly(command: list[str], env: dict[str, str]) -> bool:
    done = subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=600
    )
    return done.returncode == 0


def wrk_version(wrk: str) -> str:
    result = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    first = (result.stdout or result.stderr).strip().splitlines()
    return first[0].split("Copyright")[0].strip() if first else "wrk"


def source_version() -> str:
    """The commit measured, and whether the listener or the store differ from it."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "listener", "store"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if not commit:
        return "unknown"
    return commit + (" + uncommitted changes in listener/ or store/" if changed else "")


def machine(generator: str) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "memory_gib": memory_total_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "aiohttp": version("aiohttp"),
        "aiosqlite": version("aiosqlite"),
        "postwatch": version("postwatch"),
        "commit": source_version(),
        "database_filesystem": filesystem_of(RESULTS),
        "generator": generator,
        "load_average_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# --- processes ----------------------------------------------------------------------------


def pinned(core: str, command: list[str]) -> list[str]:
    """``command`` pinned to one core, when the machine has two and taskset exists."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", core, *command]
    return command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 30) -> None:
    """Wait until the server answers HTTP on ``port``; fail with its log if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers HTTP: ready (the bare app has no health route)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer on port {port} within {timeout:g} s")


@contextlib.contextmanager
def server(
    command: list[str], port: int, log: Path, core: str = LISTENER_CORE
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server pinned to a core (the listener's unless told); always stop it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(pinned(core, command), stdout=out, stderr=out)
    try:
        wait_ready(proc, port, log)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def core_busy_seconds(core: str) -> float:
    """Time the core spent on anything but idle and I/O wait, from /proc/stat."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if name == f"cpu{core}":
                ticks = [int(value) for value in values]
                return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return 0.0


@contextlib.contextmanager
def cpu_use(pid: int, figures: dict[str, Any]) -> Iterator[None]:
    """Add to ``figures`` the server's CPU use during the block, and what else kept its core
    busy (other processes competing with the run make its figures low)."""
    wall, own, core = time.monotonic(), process_cpu_seconds(pid), core_busy_seconds(LISTENER_CORE)
    yield
    wall = time.monotonic() - wall
    own = process_cpu_seconds(pid) - own
    core = core_busy_seconds(LISTENER_CORE) - core
    figures["server_cpu_pct"] = round(own / wall * 100, 1)
    figures["other_cpu_on_core_pct"] = round(max(0.0, core - own) / wall * 100, 1)
    figures["server_cpu_seconds"] = round(own, 2)


def memory_kib(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS of a process, in KiB."""
    figures: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                figures[name] = int(value.split()[0])
    return figures


# --- load ---------------------------------------------------------------------------------


@dataclass
class Generator:
    """The load generator in use: wrk, or the Python one."""

    wrk: str | None
    connections: int

    @property
    def name(self) -> str:
        return wrk_version(self.wrk) if self.wrk else "python (bench/load.py, aiohttp)"

    def closed(self, port: int, prefix: str, duration: float) -> dict[str, Any]:
        """``connections`` connections sending back to back for ``duration`` seconds."""
        if self.wrk:
            command = wrk_command(
                self.wrk, "postbacks.lua", port, duration, self.connections, prefix
            )
        else:
            command = [
                PY,
                str(BENCH / "load.py"),
                "closed",
                f"--base=http://127.0.0.1:{port}",
                f"--prefix={prefix}",
                f"--connections={self.connections}",
                f"--duration={duration}",
            ]
        return _figures(command, duration + 60)


def wrk_command(
    wrk: str, script: str, port: int, seconds: float, connections: int, *args: str
) -> list[str]:
    """wrk on one thread with ``connections`` connections for ``seconds`` (whole, at least
    one), running the bench script ``script`` with ``args``."""
    return [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / script),
        f"http://127.0.0.1:{port}",
        "--",
        *args,
    ]


def paced(port: int, prefix: str, rate: float, duration: float) -> dict[str, Any]:
    """A fixed schedule of ``rate`` postbacks a second (bench/load.py)."""
    command = [
        PY,
        str(BENCH / "load.py"),
        "paced",
        f"--base=http://127.0.0.1:{port}",
        f"--prefix={prefix}",
        f"--rate={rate}",
        f"--duration={duration}",
    ]
    return _figures(command, duration + 60)


def _figures(command: list[str], timeout: float) -> dict[str, Any]:
    """Run a generator pinned to its core; its ``BENCH_JSON`` line, with rates added."""
    result = subprocess.run(
        pinned(GENERATOR_CORE, command), capture_output=True, text=True, timeout=timeout
    )
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            figures: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            seconds = figures["duration_us"] / 1e6
            figures["per_second"] = round(figures["requests"] / seconds, 1) if seconds else 0.0
            figures["errors"] = sum(
                figures[key]
                for key in ("connect_errors", "read_errors", "write_errors", "status_errors")
            ) + figures.get("timeouts", 0)
            return figures
    raise RuntimeError(
        f"the load generator printed no figures (exit {result.returncode}):\n"
        f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )


# --- the database after a run -------------------------------------------------------------


def read_only(db: Path) -> sqlite3.Connection:
    """A connection that only reads ``db`` (and never migrates it)."""
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def configured_db(path: Path, config: str) -> sqlite3.Connection:
    """A database at ``path`` in the newest schema with the configuration ``config`` (TOML)
    applied, for a bench that writes its rows straight into the tables."""
    from store import workspace
    from store.config import parse
    from store.db import connect
    from store.schema import migrate

    conn = connect(path)
    migrate(conn)
    workspace.apply_workspace(conn, parse(config))
    conn.commit()
    return conn


def read_db(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def pending_deliveries(db: Path) -> int:
    with contextlib.closing(read_db(db)) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM deliveries WHERE outcome = 'pending'"
        ).fetchone()
        return int(count)


def wait_drained(db: Path, timeout: float = 180) -> float:
    """Wait until no delivery attempt is pending; the seconds it took."""
    started = time.monotonic()
    while pending_deliveries(db) and time.monotonic() - started < timeout:
        time.sleep(0.1)
    return round(time.monotonic() - started, 2)


def outcomes(db: Path, prefix: str) -> dict[str, int]:
    """Postbacks and delivery attempts of the click ids with ``prefix``, by outcome."""
    like = prefix + "%"
    with contextlib.closing(read_db(db)) as conn:
        counts = {
            f"inbound_{outcome}": int(n)
            for outcome, n in conn.execute(
                "SELECT outcome, count(*) FROM inbound"
                " WHERE endpoint = 'postback' AND click_id LIKE ? GROUP BY outcome",
                (like,),
            )
        }
        counts.update(
            {
                f"deliveries_{outcome}": int(n)
                for outcome, n in conn.execute(
                    "SELECT d.outcome, count(*) FROM deliveries d"
                    " JOIN decisions k ON k.id = d.decision_id"
                    " JOIN conversions c ON c.id = k.conversion_id"
                    " WHERE c.click_id LIKE ? GROUP BY d.outcome",
                    (like,),
                )
            }
        )
        counts.update(
            {
                f"decisions_{verdict}": int(n)
                for verdict, n in conn.execute(
                    "SELECT k.verdict, count(*) FROM decisions k"
                    " JOIN conversions c ON c.id = k.conversion_id"
                    " WHERE c.click_id LIKE ? GROUP BY k.verdict",
                    (like,),
                )
            }
        )
    return counts


def sink_count_between(db: Path, start: float, end: float) -> int:
    with contextlib.closing(read_db(db)) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM sink_records"
            " WHERE sink = 'bench' AND received_at BETWEEN ? AND ?",
            (start, end),
        ).fetchone()
        return int(count)


def end_to_end(db: Path, prefix: str, sink_db: Path | None = None) -> dict[str, Any]:
    """Per delivery of a postback with ``prefix``: sink receipt minus the postback's arrival,
    and the part of it spent before the attempt was sent. The sink's records are in
    ``sink_db`` when another process served the sink (same machine, same clock)."""
    with contextlib.closing(read_db(sink_db or db)) as conn:
        receipts = conn.execute(
            "SELECT query, received_at FROM sink_records WHERE sink = 'bench'"
        ).fetchall()
    with contextlib.closing(read_db(db)) as conn:
        arrivals = {
            click_id: received_at
            for click_id, received_at in conn.execute(
                "SELECT click_id, received_at FROM inbound"
                " WHERE endpoint = 'postback' AND outcome = 'accepted' AND click_id LIKE ?",
                (prefix + "%",),
            )
        }
        sends = conn.execute(
            "SELECT c.click_id, d.sent_at FROM deliveries d"
            " JOIN decisions k ON k.id = d.decision_id"
            " JOIN conversions c ON c.id = k.conversion_id"
            " WHERE c.click_id LIKE ? AND d.sent_at IS NOT NULL",
            (prefix + "%",),
        ).fetchall()
    total: list[float] = []
    for query, received_at in receipts:
        click_id = parse_qs(query).get("c", [""])[0]
        if click_id in arrivals:
            total.append(received_at - arrivals[click_id])
    queued = [sent_at - arrivals[click_id] for click_id, sent_at in sends if click_id in arrivals]
    return {
        "postbacks": len(arrivals),
        "sink_receipts": len(total),
        "p50_ms": ms(percentile(total, 50)),
        "p99_ms": ms(percentile(total, 99)),
        "max_ms": ms(max(total, default=0.0)),
        "until_sent_p50_ms": ms(percentile(queued, 50)),
        "until_sent_p99_ms": ms(percentile(queued, 99)),
    }


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(max(1, math.ceil(pct / 100 * len(ordered))), len(ordered))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# --- the runs -----------------------------------------------------------------------------


@dataclass
class Options:
    duration: float
    warmup: float
    connections: int
    rate: float
    e2e_duration: float
    sweep_duration: float
    workdir: Path
    rounds: int = 3
    notes: list[str] = field(default_factory=list)


def postwatch_command(db: Path, config: Path | None, port: int) -> list[str]:
    entry = Path(PY).parent / "postwatch"
    base = [str(entry)] if entry.exists() else [PY, "-c", "from tui.cli import main; main()"]
    options = ["--db", str(db), "--host", "127.0.0.1", "--port", str(port)]
    if config is not None:
        options += ["--config", str(config)]
    return [*base, "serve", *options]


def bench_config(directory: Path, port: int, postbacks: str = FIRING) -> Path:
    path = directory / "bench.toml"
    path.write_text((CONFIG + postbacks).replace("PORT", str(port)), encoding="utf-8")
    return path


def postwatch_run(opts: Options, generator: Generator, name: str, postbacks: str) -> dict[str, Any]:
    """postwatch under the closed-loop load, on a fresh database."""
    directory = opts.workdir / name
    directory.mkdir()
    db = directory / "bench.db"
    port = free_port()
    command = postwatch_command(db, bench_config(directory, port, postbacks), port)
    with server(command, port, directory / "serve.log") as proc:
        generator.closed(port, "warm-", opts.warmup)
        started = time.time()
        use: dict[str, Any] = {}
        with cpu_use(proc.pid, use):
            figures = generator.closed(port, "tp-", opts.duration)
        ended = time.time()
        figures.update(use)
        backlog = pending_deliveries(db)
        delivered_during = sink_count_between(db, started, ended)
        drain_s = wait_drained(db)
        counts = outcomes(db, "tp-")
        memory = memory_kib(proc.pid)
    figures.update(
        {
            "deliveries_to_sink_per_second_during_run": round(
                delivered_during / (ended - started), 1
            ),
            "pending_deliveries_at_end": backlog,
            "drain_seconds": drain_s,
            "memory_kib": memory,
            **counts,
        }
    )
    return figures


def bare_run(opts: Options, generator: Generator, name: str) -> dict[str, Any]:
    """The bare aiohttp handler under the same load."""
    port = free_port()
    command = [PY, str(BENCH / "bare.py"), str(port)]
    with server(command, port, opts.workdir / f"{name}.log") as proc:
        generator.closed(port, "warm-", opts.warmup)
        use: dict[str, Any] = {}
        with cpu_use(proc.pid, use):
            figures = generator.closed(port, "bare-", opts.duration)
        return {**figures, **use}


def throughput(opts: Options, generator: Generator) -> dict[str, Any]:
    """postwatch with deliveries; then rounds of postwatch with every decision filtered, each
    followed by the bare handler. The round with the median ratio is the one reported: both of
    its runs share the machine's speed of the moment."""
    firing = postwatch_run(opts, generator, "firing", FIRING)
    rounds = [
        (
            postwatch_run(opts, generator, f"filtered-{n}", FILTERED),
            bare_run(opts, generator, f"bare-{n}"),
        )
        for n in range(1, opts.rounds + 1)
    ]
    rounds.sort(key=lambda pair: pair[0]["per_second"] / max(pair[1]["per_second"], 1))
    filtered, bare = rounds[len(rounds) // 2]

    def ratio(figures: dict[str, Any], key: str = "per_second") -> float:
        return round(figures[key] / bare[key], 3) if bare[key] else 0.0

    for figures in (firing, filtered, bare):
        cpu = figures.get("server_cpu_seconds", 0.0)
        figures["per_cpu_second"] = round(figures["requests"] / cpu, 1) if cpu else 0.0
    return {
        "postwatch": firing,
        "postwatch_filtered": filtered,
        "bare": bare,
        "ratio": ratio(firing),
        "ratio_filtered": ratio(filtered),
        "ratio_filtered_rounds": [
            round(f["per_second"] / max(b["per_second"], 1), 3) for f, b in rounds
        ],
        # Requests per CPU-second of the server: steadier when something else shares the core.
        "ratio_per_cpu_second": ratio(firing, "per_cpu_second"),
        "ratio_filtered_per_cpu_second": ratio(filtered, "per_cpu_second"),
    }


def steady(
    opts: Options, rate: float, duration: float, *, external_sink: bool = False
) -> dict[str, Any]:
    """A fixed rate of postbacks, all fired to the sink; arrival to sink receipt. With
    ``external_sink`` the sink is a second postwatch process on the generator's core, as a
    traffic source would be another machine: the listener's core then carries only its own
    share of each delivery."""
    name = f"end_to_end_{rate:g}" + ("_external_sink" if external_sink else "")
    directory = opts.workdir / name
    directory.mkdir()
    db = directory / "bench.db"
    port = free_port()
    sink_db = directory / "sink.db" if external_sink else None
    sink_port = free_port() if external_sink else port
    config = bench_config(directory, sink_port)
    with contextlib.ExitStack() as stack:
        if sink_db is not None:
            sink_command = postwatch_command(sink_db, None, sink_port)
            stack.enter_context(
                server(sink_command, sink_port, directory / "sink.log", GENERATOR_CORE)
            )
        proc = stack.enter_context(
            server(postwatch_command(db, config, port), port, directory / "serve.log")
        )
        paced(port, "warm-", rate, min(opts.warmup, 2.0))
        wait_drained(db)
        use: dict[str, Any] = {}
        with cpu_use(proc.pid, use):
            client = paced(port, "e2e-", rate, duration)
        drain_s = wait_drained(db)
        counts = outcomes(db, "e2e-")
        latency = end_to_end(db, "e2e-", sink_db)
        memory = memory_kib(proc.pid)
    return {
        "rate": rate,
        "duration": duration,
        "sink": "second postwatch process, generator core" if external_sink else "in process",
        "client": client,
        "drain_seconds": drain_s,
        "memory_kib": memory,
        **use,
        **counts,
        **latency,
    }


def meets_e2e(figures: dict[str, Any]) -> bool:
    expected = figures.get("inbound_accepted", 0) * DELIVERIES_PER_POSTBACK
    all_delivered = figures.get("deliveries_delivered", 0) == expected == figures["sink_receipts"]
    return bool(
        expected > 0
        and all_delivered
        and figures["p50_ms"] <= TARGET_E2E_P50_MS
        and figures["p99_ms"] <= TARGET_E2E_P99_MS
    )


def sweep(opts: Options, rates: list[float]) -> list[dict[str, Any]]:
    """Shorter end-to-end runs at lower rates, highest first, until one meets the targets:
    the steady rate this machine sustains within them."""
    runs = []
    for rate in sorted(rates, reverse=True):
        print(f"  end to end at {rate:g} postbacks/s …", flush=True)
        figures = steady(opts, rate, opts.sweep_duration)
        runs.append(figures)
        if meets_e2e(figures):
            break
    return runs


# --- report -------------------------------------------------------------------------------


def mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def report(result: dict[str, Any]) -> str:
    m = result["machine"]
    tp = result["throughput"]
    pw, filtered, bare = tp["postwatch"], tp["postwatch_filtered"], tp["bare"]
    e2e = result["end_to_end"]
    peak = result["peak_memory_mib"]
    accepted = e2e.get("inbound_accepted", 0)
    expected = accepted * DELIVERIES_PER_POSTBACK
    delivered = e2e.get("deliveries_delivered", 0)
    lines = [
        f"machine     {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}"
        f" (load average before: {m['load_average_before']})",
        f"            Python {m['python']}, SQLite {m['sqlite']}, aiohttp {m['aiohttp']}, "
        f"aiosqlite {m['aiosqlite']}, database on {m['database_filesystem']}; "
        f"postwatch {m['commit']}",
        f"load        {m['generator']}; listener on core {LISTENER_CORE}, generator on core "
        f"{GENERATOR_CORE}",
        "",
        f"throughput  {result['options']['connections']} connections, "
        f"{result['options']['duration']:g} s, unique click ids, two postback configs judged",
        f"  {'':<34}{'per second':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>7}"
        f"{'cpu %':>7}{'other %':>8}{'ratio':>7}",
        _row("postwatch, 1 delivery each (a)", pw, tp["ratio"]),
        _row("postwatch, both filtered (b)", filtered, tp["ratio_filtered"]),
        _row("bare aiohttp, answers 200", bare, None),
        f"  (b) and bare ran as {len(tp['ratio_filtered_rounds'])} rounds, back to back; ratios "
        + ", ".join(f"{r:.3f}" for r in tp["ratio_filtered_rounds"])
        + ": the median round is shown",
        f"  targets: ratio >= {TARGET_RATIO}: (a) {mark(tp['ratio'] >= TARGET_RATIO)}, "
        f"(b) {mark(tp['ratio_filtered'] >= TARGET_RATIO)}; p99 <= {TARGET_P99_MS:g} ms: "
        f"(a) {mark(pw['p99_us'] / 1000 <= TARGET_P99_MS)}, "
        f"(b) {mark(filtered['p99_us'] / 1000 <= TARGET_P99_MS)}",
        f"  per CPU-second of the listener: ratio (a) {tp['ratio_per_cpu_second']:.3f}, "
        f"(b) {tp['ratio_filtered_per_cpu_second']:.3f} (cpu %: the server's use of core "
        f"{LISTENER_CORE}; other %: anything else on that core during the run)",
        f"  (a) sends its deliveries to the built-in sink of the same process, on the same core:"
        f" {pw['deliveries_to_sink_per_second_during_run']:g} sink receipts/s during the run,"
        f" {pw['pending_deliveries_at_end']} attempts pending at its end, drained in"
        f" {pw['drain_seconds']:g} s; {pw.get('deliveries_delivered', 0)} delivered for"
        f" {pw.get('inbound_accepted', 0)} postbacks",
        "",
        f"end to end  {e2e['rate']:g} postbacks/s for {result['options']['e2e_duration']:g} s, "
        f"1 delivery each to the built-in sink (sent {e2e['client']['requests']}, "
        f"{e2e['client']['errors']} errors, client p99 {e2e['client']['p99_us'] / 1000:.2f} ms)",
        f"  arrival -> sink receipt  p50 {e2e['p50_ms']:.2f} ms (target <= "
        f"{TARGET_E2E_P50_MS:g}: {mark(e2e['p50_ms'] <= TARGET_E2E_P50_MS)})   "
        f"p99 {e2e['p99_ms']:.2f} ms (target <= {TARGET_E2E_P99_MS:g}: "
        f"{mark(e2e['p99_ms'] <= TARGET_E2E_P99_MS)})   max {e2e['max_ms']:.2f} ms",
        f"  arrival -> attempt sent  p50 {e2e['until_sent_p50_ms']:.2f} ms   "
        f"p99 {e2e['until_sent_p99_ms']:.2f} ms",
        f"  delivered {delivered} of {expected} ({accepted} postbacks x "
        f"{DELIVERIES_PER_POSTBACK}), sink receipts {e2e['sink_receipts']}: "
        f"{mark(delivered == expected == e2e['sink_receipts'] > 0)}; listener CPU "
        f"{e2e.get('server_cpu_pct', 0):.0f}% of core {LISTENER_CORE}, other "
        f"{e2e.get('other_cpu_on_core_pct', 0):.0f}%",
        *_sweep_lines(result["end_to_end_lower_rates"]),
        *_external_lines(result["end_to_end_external_sink"]),
        *_warnings(result),
        "",
        f"peak memory (VmHWM)  {max(peak.values()):.1f} MiB  ("
        + ", ".join(f"{name} run {mib:.1f}" for name, mib in peak.items())
        + ")",
    ]
    return "\n".join(lines)


def _warnings(result: dict[str, Any]) -> list[str]:
    """What makes this run's figures untrustworthy, in plain words."""
    tp = result["throughput"]
    lines = []
    bare = tp["bare"]
    if bare.get("server_cpu_pct", 100) + bare.get("other_cpu_on_core_pct", 0) < 90:
        lines.append(
            f"  WARNING: the bare server used only {bare['server_cpu_pct']:.0f}% of its core: "
            "the load generator was the limit, so the ratios overstate postwatch"
        )
    runs = {
        "throughput (a)": tp["postwatch"],
        "throughput (b)": tp["postwatch_filtered"],
        "bare": tp["bare"],
        "end to end": result["end_to_end"],
        **{f"end to end {r['rate']:g}/s": r for r in result["end_to_end_lower_rates"]},
        "end to end, sink apart": result["end_to_end_external_sink"],
    }
    busy = {name: f["other_cpu_on_core_pct"] for name, f in runs.items()}
    noisy = {name: pct for name, pct in busy.items() if pct > 10}
    if noisy:
        lines.append(
            f"  WARNING: other processes used core {LISTENER_CORE} during "
            + ", ".join(f"{name} ({pct:.0f}%)" for name, pct in noisy.items())
            + ": those figures are low; rerun on a quiet machine"
        )
    return ["", *lines] if lines else []


def _external_lines(figures: dict[str, Any]) -> list[str]:
    verdict = "meets both targets" if meets_e2e(figures) else "MISS"
    return [
        f"  same rate, sink in a second postwatch process on core {GENERATOR_CORE} (the listener "
        "only sends):",
        f"  {figures['rate']:>6g}/s  p50 {figures['p50_ms']:>8.2f} ms  p99 "
        f"{figures['p99_ms']:>8.2f} ms  listener CPU {figures.get('server_cpu_pct', 0):>3.0f}%"
        f" (other {figures.get('other_cpu_on_core_pct', 0):.0f}%)  delivered "
        f"{figures.get('deliveries_delivered', 0)}, sink receipts {figures['sink_receipts']}  "
        f"{verdict}",
    ]


def _sweep_lines(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return []
    lines = ["  targets missed: lower rates, 5 s each (arrival -> sink receipt)"]
    for figures in runs:
        lines.append(
            f"  {figures['rate']:>6g}/s  p50 {figures['p50_ms']:>8.2f} ms  p99 "
            f"{figures['p99_ms']:>8.2f} ms  listener CPU {figures.get('server_cpu_pct', 0):>3.0f}%"
            f" (other {figures.get('other_cpu_on_core_pct', 0):.0f}%)"
            f"  {'meets both targets' if meets_e2e(figures) else 'MISS'}"
        )
    return lines


def _row(label: str, figures: dict[str, Any], ratio: float | None) -> str:
    return (
        f"  {label:<34}{figures['per_second']:>11.1f}{figures['p50_us'] / 1000:>9.2f}"
        f"{figures['p99_us'] / 1000:>9.2f}{figures['max_us'] / 1000:>9.2f}{figures['errors']:>7}"
        f"{figures.get('server_cpu_pct', 0):>7.0f}{figures.get('other_cpu_on_core_pct', 0):>8.0f}"
        + (f"{ratio:>7.3f}" if ratio is not None else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the throughput")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (b) and bare")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, default=500.0, help="postbacks/s, end to end")
    parser.add_argument("--e2e-duration", type=float, default=10.0)
    parser.add_argument(
        "--sweep",
        default="400,300,200,100",
        help="lower rates tried, 5 s each, when the end-to-end targets are missed ('' for none)",
    )
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    args = parser.parse_args()

    wrk = None if args.generator == "python" else ensure_wrk()
    if args.generator == "wrk" and wrk is None:
        sys.exit("wrk is not installed and could not be installed: use --generator python")
    generator = Generator(wrk, args.connections)
    info = machine(generator.name)  # before the runs: the load average is the machine's own
    RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=RESULTS))
    opts = Options(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        rate=args.rate,
        e2e_duration=args.e2e_duration,
        sweep_duration=5.0,
        workdir=workdir,
        rounds=max(1, args.rounds),
    )
    try:
        print(f"throughput: postwatch, then bare aiohttp ({generator.name}) …", flush=True)
        tp = throughput(opts, generator)
        print(f"end to end at {args.rate:g} postbacks/s …", flush=True)
        e2e = steady(opts, args.rate, args.e2e_duration)
        rates = [float(rate) for rate in args.sweep.split(",") if rate.strip()]
        lower = [] if meets_e2e(e2e) else sweep(opts, [r for r in rates if r < args.rate])
        print(f"end to end at {args.rate:g} postbacks/s, sink in a second process …", flush=True)
        external = steady(opts, args.rate, args.e2e_duration, external_sink=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": info,
        "options": {
            "duration": args.duration,
            "warmup": args.warmup,
            "connections": args.connections,
            "rate": args.rate,
            "e2e_duration": args.e2e_duration,
            "rounds": opts.rounds,
        },
        "targets": {
            "ratio_min": TARGET_RATIO,
            "p99_ms_max": TARGET_P99_MS,
            "e2e_p50_ms_max": TARGET_E2E_P50_MS,
            "e2e_p99_ms_max": TARGET_E2E_P99_MS,
        },
        "throughput": tp,
        "end_to_end": e2e,
        "end_to_end_lower_rates": lower,
        "end_to_end_external_sink": external,
        "peak_memory_mib": {
            "throughput (a)": tp["postwatch"]["memory_kib"].get("VmHWM", 0) / 1024,
            "throughput (b)": tp["postwatch_filtered"]["memory_kib"].get("VmHWM", 0) / 1024,
            "end-to-end": e2e["memory_kib"].get("VmHWM", 0) / 1024,
            "end-to-end, sink apart": external["memory_kib"].get("VmHWM", 0) / 1024,
        },
    }
    print()
    print(report(result))
    out = RESULTS / "latest.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"\nwritten to {out.relative_to(ROOT)}"
        + (f"; files kept in {workdir}" if args.keep else "")
    )


if __name__ == "__main__":
    main()
