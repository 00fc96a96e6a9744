"""How postwatch holds up on a large database: fill one through the real listener, then time
the read paths a support person uses (trace over the JSON API, the dashboard attached to it),
the header totals at start, the bytes each conversion costs, and ingest on the full database
against an empty one and against a bare aiohttp handler. Prints the figures; it is not a test.

    .venv/bin/python bench/scale.py [--sizes 1000,100000] [--ingest-seconds 5]

The fill is ``postwatch serve`` taking wrk traffic from bench/scale.lua: postbacks with random
click ids and transaction ids (attached to the bench campaign), and one request in ten a click
with a random external id. A filled file is kept under bench/results/, named by its size and
the schema version, and reused by the next run; delete it to fill again.

Readers are real: traces over HTTP against ``postwatch serve`` on the filled file, and the
dashboard in ``postwatch dash`` mode (attached) driven by Textual's Pilot.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import inspect
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))  # after ROOT: bench/tui.py must not shadow the tui package

import presses  # noqa: E402
from run import (  # noqa: E402
    CONFIG,
    FILTERED,
    GENERATOR_CORE,
    PY,
    RESULTS,
    _figures,
    ensure_wrk,
    free_port,
    percentile,
    postwatch_command,
    read_only,
    server,
    wrk_command,
)

from store import totals  # noqa: E402
from store.schema import MIGRATIONS, STORED  # noqa: E402

CONNECTIONS = 50
SAMPLES = 200  # traces of each kind
SWITCHES = (("2", "campaigns"), ("3", "deliveries"), ("4", "inbound"), ("5", "trace"))
# Filters typed in Live's filter bar (one term each: a space is a key of its own): every
# conversion, those a config filtered, a status none has, and (added) one txid.
FILTERS = ("status=approved", "verdict=filtered", "status=declined", "campaign=bench")
FILTER_ROUNDS = 3  # rounds of the filters, each Enter timed; the median is printed


# --- filling -------------------------------------------------------------------------------


def bench_config(directory: Path, port: int) -> Path:
    """Two conditional postback configs that judge and filter every bench postback: two
    decisions a conversion, no deliveries (the fill stays a fill of the ingest path)."""
    path = directory / "scale.toml"
    path.write_text((CONFIG + FILTERED).replace("PORT", str(port)), encoding="utf-8")
    return path


def count(db: Path, table: str) -> int:
    conn = read_only(db)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def wrk() -> str:
    """wrk's path, installed from Debian first when it is missing (bench/run.py)."""
    found = ensure_wrk()
    assert found is not None, "the scale benchmark needs wrk: apt-get install wrk"
    return found


def wrk_run(port: int, seconds: float, seed: int, mode: str = "clicks") -> dict[str, Any]:
    """One wrk run of bench/scale.lua (random ids) for ``seconds``: postbacks and one click
    in ten (``clicks``), postbacks alone (``noclicks``) or clicks alone (``onlyclicks``)."""
    command = wrk_command(wrk(), "scale.lua", port, seconds, CONNECTIONS, str(seed), mode)
    return _figures(command, seconds + 60)


def counting_run(port: int, seconds: float, prefix: str) -> dict[str, Any]:
    """One wrk run of bench/postbacks.lua (counting click ids, no txid) for ``seconds``."""
    command = wrk_command(wrk(), "postbacks.lua", port, seconds, CONNECTIONS, prefix)
    return _figures(command, seconds + 60)


def schema_mark() -> str:
    """The schema version and a digest of its steps: a cached file made by another schema of
    the same version number (say, before a merge added a step) is not reused."""
    steps = [step if isinstance(step, str) else inspect.getsource(step) for step in MIGRATIONS]
    digest = hashlib.sha256("\0".join(steps).encode()).hexdigest()[:8]
    return f"v{len(MIGRATIONS)}-{digest}"


def cached(size: int) -> Path:
    return RESULTS / f"scale-{size}-{schema_mark()}.db"


def fill(size: int, workdir: Path) -> Path:
    """The database of ``size`` conversions, from the cache or filled now."""
    target = cached(size)
    if target.exists():
        print(f"  {size:,} conversions: cached {target.relative_to(ROOT)}", flush=True)
        return target
    RESULTS.mkdir(parents=True, exist_ok=True)
    db = workdir / f"fill-{size}.db"
    port = free_port()
    config = bench_config(workdir, port)
    started = time.monotonic()
    seed = 1
    rate = 2000.0  # conversions a second, a guess until the first run says
    with server(postwatch_command(db, config, port), port, workdir / "fill.log"):
        while (have := count(db, "conversions")) < size:
            # the first run is short: it measures the rate the rest is planned by
            seconds = min(60.0 if seed > 1 else 10.0, max(1.0, (size - have) / rate))
            wrk_run(port, seconds, seed)
            rate = max(100.0, (count(db, "conversions") - have) / seconds)
            seed += 1
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.move(db, target)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    took = time.monotonic() - started
    print(f"  {size:,} conversions: filled in {took:.0f} s -> {target.relative_to(ROOT)}")
    return target


# --- what the database holds ---------------------------------------------------------------


VIEW_OF = {stored: view for view, stored in STORED.items()}


def bytes_per_conversion(db: Path) -> dict[str, Any]:
    """File size and dbstat's bytes per table (indexes counted with their table; a stored
    table under the name of the view readers use)."""
    conn = read_only(db)
    try:
        conversions = int(conn.execute("SELECT count(*) FROM conversions").fetchone()[0])
        tables = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master"))
        per_table: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            owner = tables.get(name, name)
            owner = VIEW_OF.get(owner, owner)
            per_table[owner] = per_table.get(owner, 0) + int(size)
    finally:
        conn.close()
    file_size = db.stat().st_size
    return {
        "conversions": conversions,
        "file": file_size,
        "per_conversion": file_size / max(1, conversions),
        "tables": {k: v / max(1, conversions) for k, v in sorted(per_table.items())},
    }


def header_totals_ms(db: Path) -> tuple[float, float]:
    """The header totals as the dashboard reads them at start (the kept counters): the first
    time on a freshly opened connection and the best of three after."""
    conn = read_only(db)
    try:
        started = time.perf_counter()
        totals.read(conn)
        first = (time.perf_counter() - started) * 1000
        warm = []
        for _ in range(3):
            started = time.perf_counter()
            totals.read(conn)
            warm.append((time.perf_counter() - started) * 1000)
    finally:
        conn.close()
    return first, min(warm)


# --- traces over HTTP ----------------------------------------------------------------------


def sample_ids(db: Path, rng: random.Random) -> dict[str, list[str]]:
    """Ids to trace: click ids, external ids and txids spread over the whole file."""
    conn = read_only(db)
    try:
        (top,) = conn.execute("SELECT max(id) FROM conversions").fetchone()
        ids = [rng.randint(1, top) for _ in range(SAMPLES)]
        marks = ", ".join("?" for _ in ids)
        rows = conn.execute(
            f"SELECT click_id, txid FROM conversions WHERE id IN ({marks})", ids
        ).fetchall()
        (clicks,) = conn.execute("SELECT max(rowid) FROM clicks").fetchone()
        external = [
            str(row[0])
            for row in conn.execute(
                "SELECT external_id FROM clicks WHERE rowid IN"
                f" ({', '.join('?' for _ in ids)}) AND external_id != ''",
                [rng.randint(1, clicks) for _ in ids],
            )
        ]
    finally:
        conn.close()
    return {
        "click id": [str(r[0]) for r in rows],
        "external id": external or ["none"],
        "txid": [str(r[1]) for r in rows if r[1]],
        "unknown id": [f"nobody-{n}" for n in range(SAMPLES)],
    }


def trace_timings(port: int, ids: dict[str, list[str]], started: list[str]) -> dict[str, float]:
    """p99 in ms of ``GET /api/trace/{id}`` for each kind of id, one request at a time, after
    the click ids of ``started``, traced first and shown on a line of their own: on the
    million, a listener's first half second answers a few traces in 6-14 ms (the same with the
    garbage collector off), and later ones with other ids in 2-5 ms."""
    result: dict[str, float] = {}
    for kind, values in {"click id, the first traces after start": started, **ids}.items():
        took = []
        for value in values:
            began = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/trace/{value}") as answer:
                body = json.loads(answer.read())
            took.append((time.perf_counter() - began) * 1000)
            if kind != "unknown id":
                assert body["click"] is not None, f"trace of {kind} {value} found no click"
        result[kind] = percentile(took, 99)
    return result


# --- the dashboard, attached ---------------------------------------------------------------


def _grew(values: list[float], size: int) -> bool:
    return len(values) > size


def _filtered(app: Any, typed: str) -> bool:
    """Live shows the rows of the filter bar's ``typed`` ("" none), its table idle."""
    shown = app.screen.live.source.found_text  # (free text is shown as q=...)
    return shown in (typed, f"q={typed}" if typed else "") and presses.tables_idle(app)


def _filter_name(typed: str, txid: str) -> str:
    return "a txid (free text)" if typed == txid else typed


async def dashboard_timings(db: Path, port: int, txid: str) -> dict[str, Any]:
    """Down on Live (the detail of the next conversion, read and formatted; ms), and as
    (settled, painted) ms: the first switch to each other screen (until its tables show their
    first rows), the median and the slowest of 50 PageDowns on Live (until the page is read
    and drawn), and Enter on Live's filter bar for each of ``FILTERS`` and ``txid`` (until
    the rows of the filter are shown; the median of ``FILTER_ROUNDS`` rounds)."""
    from rich.text import Text

    from tui.app import PostwatchApp
    from tui.context import DashOptions
    from tui.screens.live import LiveScreen

    details: list[float] = []
    read_detail = LiveScreen.read_detail

    async def timed(screen: LiveScreen, key: int) -> Text | None:
        started = time.perf_counter()
        try:
            return await read_detail(screen, key)
        finally:
            details.append((time.perf_counter() - started) * 1000)

    LiveScreen.read_detail = timed  # type: ignore[method-assign, assignment]
    presses.FRAMES.install()
    options = DashOptions(db=db, attached=True, listener_url=f"http://127.0.0.1:{port}")
    app = PostwatchApp(options)
    result: dict[str, Any] = {}
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await app.wait_ready()
            await presses.settle(
                pilot, lambda: presses.tables_idle(app) and presses.built(app), limit=30.0
            )
            for _ in range(20):
                count_before = len(details)
                await pilot.press("down")
                await presses.settle(pilot, partial(_grew, details, count_before), limit=2.0)
            result["Live: detail of the next conversion (Down), p99"] = percentile(details, 99)
            for key, name in SWITCHES:
                shown = partial(presses.shown, app, name)
                result[f"first switch to {name.title()}"] = await presses.timed_press(
                    pilot, key, shown
                )
            # Trace's id field has the focus, and "1" would be typed into it: leave it first.
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("1")
            await presses.settle(pilot, partial(presses.shown, app, "live"))
            assert app.current_mode == "live", f"PageDown would run on {app.current_mode}"
            paged = [
                await presses.timed_press(pilot, "pagedown", partial(presses.tables_idle, app))
                for _ in range(50)
            ]
            result["PageDown x50 on Live, median press"] = (
                percentile([p[0] for p in paged], 50),
                percentile([p[1] for p in paged], 50),
            )
            result["PageDown x50 on Live, slowest press"] = (
                max(p[0] for p in paged),
                max(p[1] for p in paged),
            )
            await pilot.press("home")
            entered: dict[str, list[tuple[float, float]]] = {}
            for _ in range(FILTER_ROUNDS):
                for typed in (*FILTERS, txid):
                    await pilot.press("slash", *typed)
                    applied = partial(_filtered, app, typed)
                    timed_enter = await presses.timed_press(pilot, "enter", applied)
                    entered.setdefault(_filter_name(typed, txid), []).append(timed_enter)
                    await pilot.press("x")
                    await presses.settle(pilot, partial(_filtered, app, ""))
            for name, times in entered.items():
                result[f"filter bar on Live: {name}, median of {FILTER_ROUNDS}"] = (
                    statistics.median(t[0] for t in times),
                    statistics.median(t[1] for t in times),
                )
    finally:
        LiveScreen.read_detail = read_detail  # type: ignore[method-assign]
    return result


def _ms(value: float | tuple[float, float]) -> str:
    """One figure in ms, or "settled / painted" for a timed keypress."""
    if isinstance(value, tuple):
        return f"{value[0]:.0f} / {value[1]:.0f}"
    return f"{value:.0f}"


# --- ingest --------------------------------------------------------------------------------


def copy_a_page_at_a_time(source: Path, target: Path) -> None:
    """Copy ``source`` in 4 KiB writes, as SQLite writes its pages, so that the copy sits in
    the page cache as a file postwatch wrote would. shutil.copyfile leaves it in large folios,
    which the kernel (6.x, ext4) writes back whole when one page of them changes: random keys
    then cost a tenth more (0.74 of an empty database against 0.83, in the same run)."""
    with source.open("rb") as src, target.open("wb") as dst:
        while page := src.read(4096):
            dst.write(page)


def ingest(db: Path | None, workdir: Path, seconds: float, kind: str) -> dict[str, Any]:
    """Requests a second (and p99) of ``postwatch serve`` on a copy of ``db`` (or an empty
    database), of one of ``INGEST_KINDS``."""
    target = workdir / "ingest.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    if db is not None:
        copy_a_page_at_a_time(db, target)
        os.sync()  # the copy's dirty pages would be written back during the run's checkpoints
    port = free_port()
    config = bench_config(workdir, port)
    with server(postwatch_command(target, config, port), port, workdir / "ingest.log"):
        if kind == "counting ids":
            figures = counting_run(port, seconds, f"c{random.randrange(1 << 30)}-")
        else:
            figures = wrk_run(port, seconds, random.randrange(1 << 30), INGEST_KINDS[kind])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    return figures


def bare(workdir: Path, seconds: float) -> dict[str, Any]:
    port = free_port()
    with server([PY, str(BENCH / "bare.py"), str(port)], port, workdir / "bare.log"):
        return wrk_run(port, seconds, 1, "noclicks")


# --- the run -------------------------------------------------------------------------------


def measure(db: Path, workdir: Path) -> dict[str, Any]:
    size = count(db, "conversions")
    copy = workdir / "read.db"
    shutil.copyfile(db, copy)  # the readers' server migrates and writes samples: not the cache
    figures: dict[str, Any] = {"size": size}
    figures["bytes"] = bytes_per_conversion(db)
    figures["header_first_ms"], figures["header_warm_ms"] = header_totals_ms(copy)
    port = free_port()
    config = bench_config(workdir, port)
    with server(postwatch_command(copy, config, port), port, workdir / "read.log"):
        ids = sample_ids(copy, random.Random(size))
        started = sample_ids(copy, random.Random(size + 1))["click id"]
        figures["trace"] = trace_timings(port, ids, started)
        figures["dash"] = asyncio.run(dashboard_timings(copy, port, ids["txid"][0]))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    return figures


def table(results: list[dict[str, Any]]) -> None:
    """The issue's table, one column per size."""
    sizes = [f"{r['size']:,}" for r in results]
    print(f"\n{'':<64}" + "".join(f"{s:>14}" for s in sizes))

    def line(name: str, values: list[str]) -> None:
        print(f"{name:<64}" + "".join(f"{v:>14}" for v in values))

    for kind in results[0]["trace"]:
        line(f"trace by {kind} (API), p99 ms", [f"{r['trace'][kind]:.1f}" for r in results])
    for name in results[0]["dash"]:
        timed = isinstance(results[0]["dash"][name], tuple)
        label = f"{name} ms" + (", settled / painted" if timed else "")
        line(label, [_ms(r["dash"][name]) for r in results])
    line("bytes per conversion (file)", [f"{r['bytes']['per_conversion']:.0f}" for r in results])
    for name, share in results[-1]["bytes"]["tables"].items():
        if share >= 5 or name == "texts":  # the growing tables, and the interned texts
            shares = [f"{r['bytes']['tables'].get(name, 0):.1f}" for r in results]
            line(f"  {name} (with its indexes)", shares)
    line("header totals at start, first read ms", [f"{r['header_first_ms']:.0f}" for r in results])
    line("header totals at start, warm ms", [f"{r['header_warm_ms']:.1f}" for r in results])


# What ingest is timed with: postbacks with random click ids (attached) and txids, postbacks
# with counting click ids and no txid (bench/postbacks.lua), and clicks with a random external
# id (the scale.lua mode of each).
INGEST_KINDS = {"random ids": "noclicks", "counting ids": "", "clicks": "onlyclicks"}
INGEST_CASES: dict[str, tuple[bool, str]] = {  # name: (on the full database, kind)
    f"{size} database, {kind}": (size == "full", kind)
    for kind in INGEST_KINDS
    for size in ("empty", "full")
}


def ingest_table(workdir: Path, largest: Path, seconds: float, rounds: int) -> None:
    """Interleaved rounds (the order reversed every other round), so that the machine's
    drift spreads over every case; the ratios are of the rounds' means."""
    runs: dict[str, list[dict[str, Any]]] = {"bare aiohttp handler": []}
    runs.update({name: [] for name in INGEST_CASES})
    for n in range(rounds):
        order = list(runs) if n % 2 == 0 else list(runs)[::-1]
        for name in order:
            if name in INGEST_CASES:
                full, kind = INGEST_CASES[name]
                figures = ingest(largest if full else None, workdir, seconds, kind)
            else:
                figures = bare(workdir, seconds)
            runs[name].append(figures)
    rate = {name: statistics.mean(f["per_second"] for f in done) for name, done in runs.items()}
    print(
        f"\ningest, {rounds} interleaved rounds of {seconds:g} s, wrk -c{CONNECTIONS} on core"
        f" {GENERATOR_CORE}, full database {count(largest, 'conversions'):,} conversions:"
    )
    base = rate["bare aiohttp handler"]
    for name, done in runs.items():
        p99 = max(f["p99_us"] for f in done) / 1000
        each = ", ".join(f"{f['per_second']:,.0f}" for f in done)
        errors = sum(f["errors"] for f in done)
        print(
            f"  {name:<30} {rate[name]:>8,.0f}/s ({each})  p99 <= {p99:5.1f} ms"
            f"  {rate[name] / base:.2f} of bare, {errors} errors"
        )
    for kind in INGEST_KINDS:
        ratio = rate[f"full database, {kind}"] / rate[f"empty database, {kind}"]
        print(f"  full vs empty, {kind}: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="conversions, comma-separated")
    parser.add_argument("--ingest-seconds", type=float, default=5.0)
    parser.add_argument("--ingest-rounds", type=int, default=2)
    parser.add_argument("--no-ingest", action="store_true", help="skip the ingest runs")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="postwatch-scale-"))
    try:
        print(f"postwatch at scale, schema {schema_mark()}:")
        files = [fill(size, workdir) for size in sizes]
        results = [measure(db, workdir) for db in files]
        table(results)
        if not args.no_ingest:
            ingest_table(workdir, files[-1], args.ingest_seconds, args.ingest_rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
