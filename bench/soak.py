"""Fault and endurance runs of postwatch (make soak), with figures and a verdict per check.

It exits 1 when a check fails. Real ``postwatch serve`` processes, on 127.0.0.1 only.

1. SIGKILL under constant load, restarts on the same database: acknowledged postbacks stored,
   integrity, every fired postback delivered, duplicates at most the attempts in flight.
2. SIGTERM under load: nothing acknowledged lost, no 5xx but 503, no duplicate deliveries.
3. The eight outbound fault classes, one sink each: the first attempt as recorded and when the
   next one is due; a healthy sink's delivery latency with all the faults at once vs. without.
4. Overload memory: postbacks fired at a sink that takes 5 s; the listener's RSS over time.
5. Slowloris: 1 100 slow connections to a listener under ``ulimit -n 1024``, then normal
   postbacks.

Everything started is killed at the end, also on Ctrl-C or an error. The whole run takes
about 7 minutes on 2 cores; ``--quick`` about a minute.

    .venv/bin/python bench/soak.py [--quick] [--runs 1,2,3,4,5] [--kills 20] ...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import run as bench_run
import soak_crash
import soak_faults
import soak_memory
import soak_slowloris
from soak_common import Check, kill_everything, table

RUNS = {"1": "1 SIGKILL", "2": "2 SIGTERM", "3": "3 faults", "4": "4 overload", "5": "5 slowloris"}
RunStep = Callable[[], Coroutine[Any, Any, list[Check]]]


@dataclass
class Plan:
    """The counts and durations of a soak run (the defaults, or ``--quick``'s)."""

    kills: int = 20
    stops: int = 5
    rate: float = 200.0
    gap: float = 5.0
    fault_rate: float = 40.0
    fault_seconds: float = 20.0
    overload_rate: float = 250.0
    overload_seconds: float = 60.0
    slow_connections: int = 1000
    silent_connections: int = 100
    slowloris_seconds: float = 90.0
    normal_postbacks: int = 200


QUICK = Plan(
    kills=4,
    stops=2,
    rate=100.0,
    gap=2.5,
    fault_rate=20.0,
    fault_seconds=4.0,
    overload_rate=250.0,
    overload_seconds=10.0,
    slow_connections=1000,
    silent_connections=100,
    slowloris_seconds=15.0,
    normal_postbacks=50,
)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute: smaller counts")
    parser.add_argument("--runs", default="1,2,3,4,5", help="which runs, e.g. 1,3")
    parser.add_argument("--seed", type=int, default=None, help="for the random kill moments")
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    defaults = Plan()
    counts = parser.add_argument_group("counts (defaults: the full run; --quick lowers them)")
    counts.add_argument("--kills", type=int, help=f"run 1 ({defaults.kills})")
    counts.add_argument("--stops", type=int, help=f"run 2 ({defaults.stops})")
    counts.add_argument("--rate", type=float, help=f"runs 1-2, requests/s ({defaults.rate:g})")
    counts.add_argument(
        "--gap", type=float, help=f"runs 1-2, most seconds between restarts ({defaults.gap:g})"
    )
    counts.add_argument("--fault-rate", type=float, help=f"run 3 ({defaults.fault_rate:g}/s)")
    counts.add_argument("--fault-seconds", type=float, help=f"run 3 ({defaults.fault_seconds:g})")
    counts.add_argument("--overload-rate", type=float, help=f"run 4 ({defaults.overload_rate:g})")
    counts.add_argument(
        "--overload-seconds", type=float, help=f"run 4 ({defaults.overload_seconds:g})"
    )
    counts.add_argument("--slow-connections", type=int, help=f"run 5 ({defaults.slow_connections})")
    counts.add_argument(
        "--silent-connections", type=int, help=f"run 5 ({defaults.silent_connections})"
    )
    counts.add_argument(
        "--slowloris-seconds", type=float, help=f"run 5 ({defaults.slowloris_seconds:g})"
    )
    counts.add_argument("--normal-postbacks", type=int, help=f"run 5 ({defaults.normal_postbacks})")
    args = parser.parse_args(argv)
    plan = Plan(**vars(QUICK)) if args.quick else Plan()
    for name in vars(plan):
        given = getattr(args, name)
        if given is not None:
            setattr(plan, name, given)
    return args, plan


def header(args: argparse.Namespace, plan: Plan, seed: int) -> str:
    lines = [
        "# postwatch soak",
        "",
        f"command: {shlex.join([sys.executable, *sys.argv])}",
        f"commit:  {bench_run.source_version()}",
        f"when:    {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; machine: {bench_run.cpu_model()}, "
        f"{os.cpu_count()} cores, load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()),
        f"seed:    {seed}; runs {args.runs}; "
        + ", ".join(f"{name} {value:g}" for name, value in vars(plan).items()),
    ]
    return "\n".join(lines)


def the_runs(plan: Plan, workdir: Path, rng: random.Random) -> dict[str, RunStep]:
    """Each run by its number, ready to be awaited."""
    return {
        "1": lambda: soak_crash.sigkill(
            workdir / "1-sigkill", plan.kills, plan.rate, plan.gap, rng
        ),
        "2": lambda: soak_crash.sigterm(
            workdir / "2-sigterm", plan.stops, plan.rate, plan.gap, rng
        ),
        "3": lambda: soak_faults.faults(workdir / "3-faults", plan.fault_rate, plan.fault_seconds),
        "4": lambda: soak_memory.overload(
            workdir / "4-overload", plan.overload_rate, plan.overload_seconds
        ),
        "5": lambda: soak_slowloris.slowloris(
            workdir / "5-slowloris",
            slow=plan.slow_connections,
            silent=plan.silent_connections,
            seconds=plan.slowloris_seconds,
            normal=plan.normal_postbacks,
        ),
    }


async def run_all(runs: list[str], plan: Plan, workdir: Path, rng: random.Random) -> list[Check]:
    """The chosen runs in order. A run that breaks down (a listener that does not start, say)
    is one failed check; its processes are stopped and the next run goes on."""
    checks: list[Check] = []
    steps = the_runs(plan, workdir, rng)
    for number in runs:
        try:
            checks += await steps[number]()
        except Exception as error:
            kill_everything()
            print(f"\nrun {number} broke down: {error}", flush=True)
            checks.append(
                Check(
                    RUNS[number], "the run completed", "-", f"{type(error).__name__}: {error}"[:160]
                )
            )
    return checks


def summary(checks: list[Check]) -> str:
    rows = [[c.run, c.name, c.figure, c.verdict] for c in checks]
    return "\n### Summary\n\n" + table(["run", "check", "figure", "verdict"], rows)


def _terminate(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C or SIGTERM: the processes started go first (nothing awaited can hold them up),
    then the runs unwind."""
    kill_everything()
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args, plan = parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    runs = [part.strip() for part in args.runs.split(",") if part.strip()]
    unknown = [part for part in runs if part not in RUNS]
    if unknown:
        print(f"--runs: no run {', '.join(unknown)}; the runs are 1 to 5, e.g. --runs 1,3")
        return 2
    print(header(args, plan, seed), flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):  # asyncio.run then leaves SIGINT to us
        signal.signal(signum, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    began = time.monotonic()
    try:
        checks = asyncio.run(run_all(runs, plan, workdir, random.Random(seed)))
    except KeyboardInterrupt:
        print("\ninterrupted: every process started is being stopped", flush=True)
        return 130
    finally:
        kill_everything()
        if args.keep:
            print(f"\ndatabases and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(summary(checks))
    failed = [c for c in checks if c.failure is not None]
    print(
        f"\n{len(checks) - len(failed)} of {len(checks)} checks ok, {len(failed)} failed; "
        f"{time.monotonic() - began:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
