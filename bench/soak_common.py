"""What the runs of ``bench/soak.py`` share: checks and tables, the processes they start (and
always stop), configuration files, and reading the databases afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import run as bench_run  # bench/run.py: ports, the postwatch command line, core pinning

LISTENER_CORE = bench_run.LISTENER_CORE
SINK_CORE = bench_run.GENERATOR_CORE


# --- checks and tables --------------------------------------------------------------------


@dataclass
class Check:
    """One verdict: ``ok`` or ``FAILED: <what>``, with the figure it rests on."""

    run: str
    name: str
    figure: str
    failure: str | None = None  # None: ok

    @property
    def verdict(self) -> str:
        return "ok" if self.failure is None else f"FAILED: {self.failure}"


def check(run: str, name: str, figure: str, ok: bool, failure: str) -> Check:
    """A check that passed when ``ok``, else failed with ``failure``."""
    return Check(run, name, figure, None if ok else failure)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table, padded so that it also reads as a table in a terminal."""
    cells = [[str(h) for h in headers], *[[_cell(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(value.ljust(widths[i]) for i, value in enumerate(row)) + " |"

    rule = "| " + " | ".join("-" * width for width in widths) + " |"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "/").replace("\n", " ")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def print_run(title: str, rows: list[list[Any]], checks: list[Check]) -> None:
    """One run's table: its figures, then its checks with their verdicts."""
    print(f"\n### {title}\n", flush=True)
    body = [[name, value, ""] for name, value in rows]
    body += [[c.name, c.figure, c.verdict] for c in checks]
    print(table(["figure", "value", "verdict"], body), flush=True)


# --- processes ----------------------------------------------------------------------------


STARTED: list[subprocess.Popen[bytes]] = []  # every process started: killed at the end


def kill_everything() -> None:
    """SIGKILL every process this script started that still runs (by its own id)."""
    for proc in STARTED:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: it and its children
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def _files_limit(soft: int | None) -> Callable[[], None] | None:
    """A preexec_fn that sets the open-files soft limit (the hard limit stays)."""
    if soft is None:
        return None

    def apply() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))

    return apply


@dataclass
class Service:
    """A ``postwatch serve`` on a database, that can be started, killed and restarted."""

    name: str
    db: Path
    config: Path | None
    port: int
    directory: Path
    core: str = LISTENER_CORE
    files_soft_limit: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    start_seconds: list[float] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> Path:
        return self.directory / f"{self.name}.log"

    def spawn(self) -> None:
        """Start the process (not waiting for it to answer)."""
        command = bench_run.postwatch_command(self.db, self.config, self.port)
        self.starts += 1
        with self.log().open("ab") as out:
            out.write(f"\n--- start {self.starts} at {time.time():.3f}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                bench_run.pinned(self.core, command),
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches only this script, which stops it
                preexec_fn=_files_limit(self.files_soft_limit),
            )
        STARTED.append(self.proc)

    async def start(self, timeout: float = 30.0) -> float:
        """Start and wait until it answers ``/api/health``; the seconds that took."""
        began = time.monotonic()
        self.spawn()
        await self.wait_ready(timeout)
        took = time.monotonic() - began
        self.start_seconds.append(took)
        return took

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited ({self.proc.returncode}); the end of its log:\n"
                        + self.log().read_text(errors="replace")[-2000:]
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.base}/api/health") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer on port {self.port} within {timeout:g} s")

    def exit_code(self) -> int | None:
        """None while it runs; its exit code once it has exited."""
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """SIGKILL, and wait until it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    async def stop(self, timeout: float = 15.0) -> float | None:
        """SIGTERM and wait; the seconds it took to exit, or None when it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                return time.monotonic() - began
            await asyncio.sleep(0.02)
        self.kill()
        return None


def kept_running(run: str, service: Service) -> Check:
    """Whether a service was still running at the end of its run (not crashed, not killed)."""
    code = service.exit_code()
    return check(
        run,
        f"{service.name} kept running",
        "running" if code is None else f"exited ({code})",
        code is None,
        f"{service.name} exited with code {code} during the run; see {service.log()}",
    )


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 when it is gone)."""
    return bench_run.memory_kib(pid).get("VmRSS", 0)


def open_files_limit(pid: int) -> tuple[str, str]:
    """The soft and hard "Max open files" of a running process, from /proc/PID/limits."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                parts = line.split()
                return parts[3], parts[4]
    return "?", "?"


def raise_own_files_limit() -> int:
    """This script holds many connections at once: its soft limit goes up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- configuration files ------------------------------------------------------------------


def listener_config(
    directory: Path,
    postbacks: list[tuple[str, str]],
    *,
    timeout: float = 10,
    retry_schedule: tuple[float, ...] = (1, 2, 5),
    failure_body: str = "",
    statuses: str = '["approved"]',
) -> Path:
    """A listener's TOML: campaign ``soak`` (unknown click ids are attached to it) whose
    postback configs (name, URL) fire for approved Deposits."""
    schedule = ", ".join(f"{s:g}" for s in retry_schedule)
    text = f"""
conversion_types = ["Lead", "Deposit"]

[listener]
unknown_clicks = "attach:soak"

[delivery]
timeout = {timeout:g}
retry_schedule = [{schedule}]

[[offer_sources]]
name = "Soak Network"
default_status = "pending"
duplicates = "update"

[[traffic_sources]]
name = "Soak Traffic"
click_id_param = "ref_id"
postback_url = ""
failure_body = "{failure_body}"

[[campaigns]]
key = "soak"
name = "Soak"
traffic_source = "Soak Traffic"
offer_source = "Soak Network"
"""
    for name, url in postbacks:
        text += f"""
[[campaigns.postbacks]]
name = "{name}"
conditional = true
types = ["Deposit"]
statuses = {statuses}
url = "{url}"
"""
    path = directory / "listener.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sink_config(directory: Path, name: str, sinks: list[dict[str, Any]]) -> Path:
    """A sink process's TOML: only ``[[sinks]]`` tables."""
    text = ""
    for sink in sinks:
        text += "\n[[sinks]]\n"
        for key, value in sink.items():
            text += f"{key} = {_toml(value)}\n"
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


# --- the databases ------------------------------------------------------------------------


def read_db(db: Path) -> sqlite3.Connection:
    return bench_run.read_db(db)


def scalar(db: Path, sql: str, params: tuple[Any, ...] = ()) -> int:
    with contextlib.closing(read_db(db)) as conn:
        (value,) = conn.execute(sql, params).fetchone()
        return int(value or 0)


def pending(db: Path) -> int:
    """Delivery attempts still pending (the outbox)."""
    return scalar(db, "SELECT count(*) FROM deliveries WHERE outcome = 'pending'")


async def wait_settled(db: Path, timeout: float, due_within: float | None = None) -> float:
    """Wait until no attempt is pending (or, with ``due_within``, none is due within that many
    seconds); the seconds it took (``timeout`` when it did not settle)."""
    began = time.monotonic()
    sql = "SELECT count(*) FROM deliveries WHERE outcome = 'pending'"
    while time.monotonic() - began < timeout:
        if due_within is None:
            left = scalar(db, sql)
        else:
            left = scalar(db, sql + " AND due_at <= ?", (time.time() + due_within,))
        if not left:
            break
        await asyncio.sleep(0.25)
    return time.monotonic() - began


def integrity(db: Path) -> str:
    with contextlib.closing(read_db(db)) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(row[0]) for row in rows)[:200]


def sink_receipts(sink_db: Path, sink: str, key: str = "c") -> dict[str, list[float]]:
    """What a sink received, by the value of one query parameter: its receipt times."""
    receipts: dict[str, list[float]] = {}
    with contextlib.closing(read_db(sink_db)) as conn:
        for query, received_at in conn.execute(
            "SELECT query, received_at FROM sink_records WHERE sink = ?", (sink,)
        ):
            value = parse_qs(query).get(key, [""])[0]
            receipts.setdefault(value, []).append(float(received_at))
    return receipts


def fired_click_ids(db: Path, postback: str | None = None) -> set[str]:
    """Click ids of the conversions with a fired decision (of one postback config)."""
    sql = (
        "SELECT DISTINCT c.click_id FROM decisions k JOIN conversions c ON c.id = k.conversion_id"
        " WHERE k.verdict = 'fired'"
    )
    params: tuple[Any, ...] = ()
    if postback is not None:
        sql += " AND k.postback = ?"
        params = (postback,)
    with contextlib.closing(read_db(db)) as conn:
        return {str(row[0]) for row in conn.execute(sql, params)}


def arrivals(db: Path, prefix: str) -> dict[str, float]:
    """When each accepted postback of click ids starting with ``prefix`` arrived."""
    with contextlib.closing(read_db(db)) as conn:
        return {
            str(click_id): float(at)
            for click_id, at in conn.execute(
                "SELECT click_id, min(received_at) FROM inbound WHERE endpoint = 'postback'"
                " AND outcome = 'accepted' AND click_id LIKE ? GROUP BY click_id",
                (prefix + "%",),
            )
        }
