"""How the dashboard holds up under load: while its own listener takes ~1,000 postbacks a
second (bench/load.py, paced, in another process), how long a keypress takes to be handled
and drawn, how long a new conversion takes to reach the table, and how much CPU and memory
the dashboard process (listener included) uses. Prints the figures; it is not a test.

    .venv/bin/python bench/tui.py [--rate 1000] [--duration 10] [--size 120x40] [--attached]

The app runs headless (Textual's test driver): everything is computed and composited as in a
terminal, only the final write to the terminal is skipped.

A keypress is one row down and back up, so the table follows new rows between keypresses. A
new conversion counts as shown when the frame that draws the batch it arrived in is drawn,
from the time the listener received it; rows that arrived while the cursor was away count from
their receipt too.

    .venv/bin/python bench/tui.py --screens [--conversions 3000] [--sizes 80x24,120x40,200x50]

times what a user waits for on an idle dashboard attached to ``postwatch serve``, on a database
filled through the real listener (``--db FILE`` reuses a filled file, copied first): the
first switch to each screen, a switch back to a screen shown before, and 50 PageDowns on Live.
Each press is timed twice: until the screen's tables are idle and the app is idle after
(bench/scale.py's measure; the idle check alone sleeps 20 ms or more, and longer while anything
else in the process uses the CPU), and until the last frame before that which changed the
screen (painted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import presses  # noqa: E402
from run import free_port, read_only  # noqa: E402
from textual import events  # noqa: E402
from textual.message import Message  # noqa: E402

from tui.app import PostwatchApp  # noqa: E402
from tui.context import DashOptions  # noqa: E402
from tui.widgets.live_table import LiveTable  # noqa: E402
from tui.widgets.rows import RowTable  # noqa: E402

CONFIG = """
conversion_types = ["Lead", "Deposit"]

[listener]
unknown_clicks = "attach:bench"

[delivery]
timeout = 5

[[offer_sources]]
name = "Network"

[[traffic_sources]]
name = "Source"
postback_url = "http://127.0.0.1:PORT/sink/source?click={clickid}&payout={payout}"

[[campaigns]]
key = "bench"
name = "Bench"
traffic_source = "Source"
offer_source = "Network"

[[campaigns.postbacks]]
name = "all events"
enabled = ENABLED

[[campaigns.postbacks]]
name = "big deposits"
conditional = true
types = ["Deposit"]
min_payout = 1000
"""


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values (run.percentile says 0)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Probe:
    """Timestamps taken from inside the app: when a key's handler moved the cursor, when the
    cursor row was next drawn, and how old each new conversion was when the table drew it."""

    def __init__(self) -> None:
        self.key_sent: float | None = None
        self.key_handled: float | None = None
        self.key_drawn: float | None = None
        self.appear: list[float] = []
        # rows added to the table and not drawn yet: key -> the receipt times of its batch
        # (a batch is drawn in one frame, but only its newest rows fit on the screen)
        self.undrawn: dict[int, list[float]] = {}

    def hook(self, message: Message) -> None:
        waiting = self.key_sent is not None and self.key_handled is None
        if waiting and isinstance(message, RowTable.Highlighted):
            self.key_handled = time.perf_counter()

    def install(self) -> None:
        probe = self
        render_line = RowTable.render_line
        fetched = LiveTable.on_live_table_fetched

        def drawn(table: RowTable, y: int) -> Any:
            strip = render_line(table, y)
            index = round(table.scroll_y) + y - 1
            waiting = probe.key_handled is not None and probe.key_drawn is None
            if waiting and index == table.cursor:
                probe.key_drawn = time.perf_counter()
            if y > 0 and index < len(table.rows) and table.rows[index].key in probe.undrawn:
                now = time.time()
                batch = probe.undrawn[table.rows[index].key]
                probe.appear += [now - created for created in batch]
                batch.clear()  # counted once; its other keys are dropped below
                probe.undrawn = {k: b for k, b in probe.undrawn.items() if b}
            return strip

        def applied(live: LiveTable, message: LiveTable.Fetched) -> None:
            newer = message.fetch.newer or []
            fresh = [row for row in newer if live.table.get(row["id"]) is None]
            fetched(live, message)
            if fresh and live.source.table == "conversions":
                # only the rows the table took (not those it left for "N new")
                shown = [row for row in fresh if live.table.get(row["id"])]
                batch = [row["created_at"] for row in shown]
                probe.undrawn.update((row["id"], batch) for row in shown)

        RowTable.render_line = drawn  # type: ignore[method-assign]
        LiveTable.on_live_table_fetched = applied  # type: ignore[method-assign]


async def prefill(base: str, count: int = 300) -> None:
    """A few hundred conversions, so that the cursor has rows to move over."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for n in range(count):
            params = {"clickid": f"pre-{n}", "type": "Lead"}
            async with session.get(f"{base}/postback", params=params) as response:
                await response.read()


async def press(app: PostwatchApp, probe: Probe, key: str) -> tuple[float, float]:
    """Send a key as the terminal would; return (handled, drawn) latencies in ms."""
    probe.key_sent = time.perf_counter()
    probe.key_handled = probe.key_drawn = None
    app.post_message(events.Key(key, None))
    deadline = probe.key_sent + 2
    while probe.key_drawn is None and time.perf_counter() < deadline:
        await asyncio.sleep(0.001)
    sent = probe.key_sent
    probe.key_sent = None
    handled = (probe.key_handled or math.inf) - sent
    drawn = (probe.key_drawn or math.inf) - sent
    return handled * 1000, drawn * 1000


async def keypresses(
    app: PostwatchApp, probe: Probe, count: int, gap: float
) -> list[tuple[float, float]]:
    results = []
    for _ in range(count):
        # down then up: the cursor leaves the first row and comes back (following again)
        results.append(await press(app, probe, "down"))
        results.append(await press(app, probe, "up"))
        await asyncio.sleep(gap)
    return results


def summary(name: str, values: list[float], unit: str = "ms") -> str:
    finite = [v for v in values if math.isfinite(v)]
    missing = len(values) - len(finite)
    text = (
        f"{name:<44} p50 {percentile(finite, 50):7.1f} {unit}   p95 {percentile(finite, 95):7.1f}"
        f" {unit}   max {max(finite, default=math.nan):7.1f} {unit}   (n={len(finite)})"
    )
    return text + (f"  {missing} never seen" if missing else "")


async def start_serve(db: Path, config: Path, port: int) -> asyncio.subprocess.Process:
    """``postwatch serve`` in its own process; returns once it answers."""
    import aiohttp

    serve = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from tui.cli import main; main()",
        "serve",
        "--db",
        str(db),
        "--port",
        str(port),
        "--config",
        str(config),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"http://127.0.0.1:{port}/api/health") as response:
                    if response.status == 200:
                        return serve
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("postwatch serve did not start")


async def run(
    rate: float, duration: float, size: tuple[int, int], attached: bool, deliveries: bool
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="postwatch-bench-tui-"))
    port = free_port()
    config = workdir / "bench.toml"
    text = CONFIG.replace("PORT", str(port)).replace("ENABLED", "true" if deliveries else "false")
    config.write_text(text, encoding="utf-8")
    db = workdir / "bench.db"
    serve = None
    if attached:
        serve = await start_serve(db, config, port)
        options = DashOptions(db=db, attached=True, listener_url=f"http://127.0.0.1:{port}")
    else:
        options = DashOptions(db=db, host="127.0.0.1", port=port, config=config)
    app = PostwatchApp(options)
    probe = Probe()
    probe.install()
    where = "attached to `postwatch serve` in another process" if attached else "listener inside"
    outbound = "each delivered to the built-in sink" if deliveries else "filtered, none sent"
    print(
        f"postwatch dashboard ({where}), {size[0]}x{size[1]}: {rate:g} postbacks/s for "
        f"{duration:g} s, {outbound}"
    )
    try:
        async with app.run_test(size=size, message_hook=probe.hook) as pilot:
            await app.wait_ready()
            await prefill(f"http://127.0.0.1:{port}")
            await pilot.pause(0.5)
            rss_start = rss_mib()
            idle = await keypresses(app, probe, 10, 0.05)

            load = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "bench" / "load.py"),
                "paced",
                "--base",
                f"http://127.0.0.1:{port}",
                "--prefix",
                "bench-",
                "--rate",
                str(rate),
                "--duration",
                str(duration),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            await asyncio.sleep(1.0)  # let the load reach its rate
            probe.appear.clear()
            probe.undrawn.clear()
            busy: list[tuple[float, float]] = []
            rss_samples: list[float] = []
            started = time.monotonic()
            cpu_start = time.process_time()
            while time.monotonic() - started < duration - 1.5:
                busy += await keypresses(app, probe, 3, 0.1)
                rss_samples.append(rss_mib())
            appear = list(probe.appear)
            cpu = (time.process_time() - cpu_start) / (time.monotonic() - started)
            undrawn = len(probe.undrawn)  # one key a row
            output, _ = await load.communicate()
            stats = app.stats
            await pilot.pause(1.0)
            window = len(app.screen.query_one(RowTable))
    finally:
        if serve is not None:
            serve.terminate()
            await serve.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    loaded: dict[str, Any] = {}
    for line in output.decode().splitlines():
        if line.startswith("BENCH_JSON "):
            loaded = json.loads(line.removeprefix("BENCH_JSON "))
    sent = loaded.get("requests", 0)
    failed = sum(
        loaded.get(k, 0) for k in ("connect_errors", "read_errors", "status_errors", "timeouts")
    )
    seconds = loaded.get("duration_us", 0) / 1e6
    print(
        f"load: {sent} postbacks sent in {seconds:.1f} s ({failed} errors; generator lag up to"
        f" {loaded.get('max_send_lag_us', 0) / 1000:.0f} ms), answered p50"
        f" {loaded.get('p50_us', 0) / 1000:.1f} ms p99 {loaded.get('p99_us', 0) / 1000:.1f} ms;"
        f" the dashboard counted {stats.postbacks - 300} of them"
    )
    print(summary("keypress handled (idle)", [h for h, _ in idle]))
    print(summary("keypress handled and redrawn (idle)", [d for _, d in idle]))
    print(summary("keypress handled (under load)", [h for h, _ in busy]))
    print(summary("keypress handled and redrawn (under load)", [d for _, d in busy]))
    print(summary("new conversion drawn (from receipt)", [a * 1000 for a in appear]))
    if undrawn:
        print(f"{'':<44} {undrawn} added to the table but not drawn when the load ended")

    what = "dashboard + listener" if not attached else "dashboard"
    print(f"{'CPU (' + what + ', all threads) under load':<44} {cpu:.0%} of a core")
    print(
        f"{'memory (RSS, ' + what + ')':<44} start {rss_start:6.1f} MiB   during load "
        f"{min(rss_samples, default=math.nan):6.1f}..{max(rss_samples, default=math.nan):6.1f}"
        f" MiB   peak {peak_rss_mib():6.1f} MiB"
    )
    print(f"{'rows held by the live table':<44} {window} (window {LiveTable.WINDOW})")


# --- screens: switching and paging on an idle dashboard --------------------------------------

SWITCHES = (("2", "campaigns"), ("3", "deliveries"), ("4", "inbound"), ("5", "trace"))


async def fill(base: str, count: int, concurrency: int = 20) -> None:
    """``count`` conversions through the listener: random-looking click ids attached to the
    bench campaign, one in four a Deposit."""
    import aiohttp

    async with aiohttp.ClientSession() as session:

        async def send(numbers: range) -> None:
            for n in numbers:
                params = {
                    "clickid": f"fill-{n:06d}-{(n * 2654435761) % 1000003:07d}",
                    "type": "Deposit" if n % 4 == 0 else "Lead",
                    "payout": str(n % 2000),
                    "txid": f"tx-{n}",
                }
                async with session.get(f"{base}/postback", params=params) as response:
                    await response.read()

        await asyncio.gather(*(send(range(i, count, concurrency)) for i in range(concurrency)))


async def screens_run(
    db: Path, port: int, size: tuple[int, int], frames: presses.Frames
) -> dict[str, tuple[float, float]]:
    options = DashOptions(db=db, attached=True, listener_url=f"http://127.0.0.1:{port}")
    app = PostwatchApp(options)
    result: dict[str, tuple[float, float]] = {}
    async with app.run_test(size=size) as pilot:
        await app.wait_ready()
        await presses.settle(
            pilot, lambda: presses.built(app) and presses.tables_idle(app), limit=30.0
        )
        await pilot.pause(0.5)
        for round_name in ("first switch to", "switch back to"):
            for key, name in SWITCHES:
                shown = partial(presses.shown, app, name)
                result[f"{round_name} {name.title()}"] = await presses.timed_press(
                    pilot, key, shown, frames
                )
            await pilot.press("escape")  # out of Trace's id field, where 1 is typed
            await pilot.pause()
            shown = partial(presses.shown, app, "live")
            result[f"{round_name} Live"] = await presses.timed_press(pilot, "1", shown, frames)
        idle = partial(presses.tables_idle, app)
        paged = [await presses.timed_press(pilot, "pagedown", idle, frames) for _ in range(50)]
        result["PageDown x50 on Live, median"] = (
            percentile([p[0] for p in paged], 50),
            percentile([p[1] for p in paged], 50),
        )
        result["PageDown x50 on Live, slowest"] = (
            max(p[0] for p in paged),
            max(p[1] for p in paged),
        )
    return result


async def screens(conversions: int, sizes: list[tuple[int, int]], reuse: Path | None) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="postwatch-bench-screens-"))
    port = free_port()
    config = workdir / "bench.toml"
    config.write_text(CONFIG.replace("PORT", str(port)).replace("ENABLED", "true"), "utf-8")
    db = workdir / "bench.db"
    if reuse is not None:
        shutil.copyfile(reuse, db)
    frames = presses.Frames()
    frames.install()
    serve = await start_serve(db, config, port)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    try:
        if reuse is None:
            started = time.monotonic()
            await fill(f"http://127.0.0.1:{port}", conversions)
            took = time.monotonic() - started
            print(f"filled {conversions} conversions through the listener in {took:.1f} s")
        await delivered(db)
        for size in sizes:
            results[f"{size[0]}x{size[1]}"] = await screens_run(db, port, size, frames)
    finally:
        serve.terminate()
        await serve.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print_screens(results)


async def delivered(db: Path, limit: float = 60.0) -> None:
    """Wait until the listener has sent every delivery (at most ``limit`` seconds): the
    dashboard is timed idle, not while the outbox still changes what it shows."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with closing(read_only(db)) as conn:
            (pending,) = conn.execute(
                "SELECT count(*) FROM deliveries WHERE outcome = 'pending'"
            ).fetchone()
        if not pending:
            return
        await asyncio.sleep(0.2)
    print(f"deliveries still pending after {limit:.0f} s: the first size is timed while they go")


def print_screens(results: dict[str, dict[str, tuple[float, float]]]) -> None:
    sizes = list(results)
    print(f"{'ms: settled / painted':<34}" + "".join(f"{size:>17}" for size in sizes))
    for name in results[sizes[0]]:
        cells = [f"{results[s][name][0]:6.0f} / {results[s][name][1]:4.0f}" for s in sizes]
        print(f"{name:<34}" + "".join(f"{cell:>17}" for cell in cells))
    print("BENCH_JSON " + json.dumps(results))


def size_of(text: str) -> tuple[int, int]:
    width, height = (int(part) for part in text.lower().split("x"))
    return width, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="postbacks a second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--size", default="120x40", help="terminal size, WxH")
    parser.add_argument(
        "--attached", action="store_true", help="listener in its own process (postwatch dash)"
    )
    parser.add_argument(
        "--deliveries", action="store_true", help="deliver every postback to the built-in sink"
    )
    parser.add_argument(
        "--screens", action="store_true", help="time switching screens and PageDown instead"
    )
    parser.add_argument("--conversions", type=int, default=3000, help="with --screens")
    parser.add_argument("--sizes", default="80x24,120x40,200x50", help="with --screens")
    parser.add_argument("--db", type=Path, help="with --screens: a filled database to copy")
    args = parser.parse_args()
    if args.screens:
        sizes = [size_of(text) for text in args.sizes.split(",")]
        asyncio.run(screens(args.conversions, sizes, args.db))
        return
    width, height = size_of(args.size)
    asyncio.run(run(args.rate, args.duration, (width, height), args.attached, args.deliveries))


if __name__ == "__main__":
    main()
