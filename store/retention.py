"""Retention: deleting what is older than a cut, in small transactions, and giving the space
back (``[storage] keep_days``, ``postwatch prune``).

What is deleted, oldest first, each pass walking its table by id:
- a conversion, with its events, decisions and delivery attempts, when the newest of its
  creation, its last update, its last event and its last decision is older than the cut, and
  none of its attempts is still pending (a retry waiting counts: a failed attempt that will be
  retried is followed by a pending one in the same transaction). A conversion whose click is
  old but which got a postback yesterday is kept, and so is everything it needs;
- a click made before the cut that no conversion refers to any more;
- an inbound request received before the cut, unless the conversion it belongs to or the
  click it names is kept (its trace still shows it);
- a sink record received before the cut, and a test postback sent before it.

Each step is one writer job of a few milliseconds (the number of rows a step scans adapts
to keep it there), so postbacks keep being written between, and alongside, the steps. A dry
run reads the same rows with the same conditions and deletes nothing. The header totals
(``store.totals``) are counted before each step deletes and lowered by what it deleted.

The space is given back by ``PRAGMA incremental_vacuum`` in steps, on databases created with
``auto_vacuum = INCREMENTAL`` (every database this version creates); on an older one the freed
pages stay in the file and are reused by new data until a full ``VACUUM``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypedDict, TypeVar

from store import totals
from store.db import Store
from store.read import links
from store.schema import STORED

TARGET_MS = 5.0  # a step's aim: the scan grows by half below half of it, halves above twice
FIRST_SCAN = 50
MIN_SCAN, MAX_SCAN = 10, 1000
VACUUM_PAGES = 256  # pages a vacuum step gives back (1 MiB of 4 KiB pages)
DAY = 86400.0

T = TypeVar("T")


# -- what counts as old -----------------------------------------------------------------------

# A conversion older than the cut :cut, with nothing left to deliver.
_OLD_CONVERSION = """(
    c.created_at < :cut AND c.updated_at < :cut
    AND coalesce((SELECT max(e.at) FROM conversion_events e WHERE e.conversion_id = c.id), 0)
        < :cut
    AND coalesce((SELECT max(d.at) FROM decisions d WHERE d.conversion_id = c.id), 0) < :cut
    AND NOT EXISTS (
        SELECT 1 FROM decisions d JOIN deliveries a ON a.decision_id = d.id
        WHERE d.conversion_id = c.id AND +a.outcome = 'pending'
    )
)"""


def _click_blocked(dry_run: bool) -> str:
    """SQL: a conversion keeps click ``k``. For real, any conversion left does (the old ones
    are gone by then, and one whose delivery just finished is not orphaned); a dry run, which
    deletes nothing, asks whether it would be kept."""
    keeps = f"NOT {_OLD_CONVERSION}" if dry_run else "1"
    return f"EXISTS (SELECT 1 FROM conversions c WHERE c.click_seq = k.seq AND {keeps})"


def _old_click(dry_run: bool) -> str:
    return f"(k.created_at < :cut AND NOT {_click_blocked(dry_run)})"


def _old_inbound(dry_run: bool) -> str:
    conversion_keeps = f"NOT {_OLD_CONVERSION}" if dry_run else "1"
    click_keeps = f"NOT {_old_click(dry_run)}" if dry_run else "1"
    return f"""(
        i.received_at < :cut
        AND NOT EXISTS (
            SELECT 1 FROM conversions c WHERE c.id = i.conversion_id AND {conversion_keeps}
        )
        AND NOT EXISTS (SELECT 1 FROM clicks k WHERE {links.click_of("i")} AND {click_keeps})
    )"""


# -- one step of each pass (sync jobs) ---------------------------------------------------------


@dataclass
class Deleted:
    """Rows deleted (or, in a dry run, that would be)."""

    conversions: int = 0
    conversion_events: int = 0
    decisions: int = 0
    deliveries: int = 0
    clicks: int = 0
    inbound: int = 0
    sink_records: int = 0
    test_postbacks: int = 0

    def add(self, other: Deleted) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Step:
    """One step of a pass: what it deleted, how far it read, whether the pass is done."""

    deleted: Deleted
    after: int  # the last id (rowid) read
    done: bool
    ms: float = 0.0  # time the step took in its transaction
    kept_pending: int = 0  # old conversions kept for an attempt still pending


def _ids(values: list[int]) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"


def _window(
    conn: sqlite3.Connection, table: str, key: str, stamp: str, after: int, scan: int, cut: float
) -> tuple[int, bool] | None:
    """The next ``scan`` rows of ``table`` after ``after`` (by ``key``): the last key, and
    whether the pass is done after them, every one of them being made after the cut (rows are
    walked oldest first, so the rest are newer still). None when no row is left."""
    row = conn.execute(
        f"SELECT max(k), min(s) FROM (SELECT {key} AS k, {stamp} AS s FROM {table}"
        f" WHERE {key} > ? ORDER BY {key} LIMIT ?)",
        (after, scan),
    ).fetchone()
    if row[0] is None:
        return None
    return int(row[0]), float(row[1]) >= cut


class Bounds(TypedDict):
    """The window a step prunes: rows with a key in (``after``, ``last``], made before
    ``cut``."""

    cut: float
    after: int
    last: int


# What a step does with the rows of its window: delete them (or, dry, count them) and say how
# many, with the old conversions it kept for a pending delivery.
Prune = Callable[[sqlite3.Connection, Bounds, bool], tuple["Deleted", int]]


@dataclass(frozen=True)
class Walk:
    """One pass of a prune: its table walked by ``key`` oldest first, ``stamp`` its rows'
    time, ``prune`` what a step does in its window, ``counted`` whether the header totals
    count the table's rows."""

    table: str
    key: str
    stamp: str
    prune: Prune
    counted: bool = True

    def __call__(
        self, conn: sqlite3.Connection, *, cut: float, after: int, scan: int, dry_run: bool
    ) -> Step:
        """One step: prune the next ``scan`` rows after ``after`` (a writer job)."""
        started = time.perf_counter()
        window = _window(conn, self.table, self.key, self.stamp, after, scan, cut)
        if window is None:
            return Step(Deleted(), after, True, _ms(started))
        last, done = window
        if self.counted and not dry_run:
            totals.advance(conn)  # count what is there before deleting (see totals.remove)
        deleted, pending = self.prune(conn, Bounds(cut=cut, after=after, last=last), dry_run)
        return Step(deleted, last, done, _ms(started), kept_pending=pending)


def _conversions(conn: sqlite3.Connection, bounds: Bounds, dry_run: bool) -> tuple[Deleted, int]:
    """The old conversions of the window, with their events, decisions and attempts; and how
    many old ones a pending attempt keeps."""
    ids = [
        int(r[0])
        for r in conn.execute(
            f"SELECT c.id FROM conversions c WHERE c.id > :after AND c.id <= :last"
            f" AND {_OLD_CONVERSION}",
            bounds,
        )
    ]
    (pending,) = conn.execute(
        "SELECT count(*) FROM conversions c WHERE c.id > :after AND c.id <= :last"
        " AND c.created_at < :cut AND c.updated_at < :cut AND EXISTS (SELECT 1 FROM decisions d"
        " JOIN deliveries a ON a.decision_id = d.id"
        " WHERE d.conversion_id = c.id AND +a.outcome = 'pending')",
        bounds,
    ).fetchone()
    return _delete_conversions(conn, ids, dry_run=dry_run), int(pending)


_IN = "IN (SELECT value FROM json_each(?))"


def _delete_conversions(conn: sqlite3.Connection, ids: list[int], *, dry_run: bool) -> Deleted:
    if not ids:
        return Deleted()
    wanted = (_ids(ids),)
    decisions = f"SELECT id FROM decisions WHERE conversion_id {_IN}"
    # The stored tables, not their views: a DELETE through a view reports no rows.
    statements = {
        "deliveries": f"FROM deliveries WHERE decision_id IN ({decisions})",
        "decisions": f"FROM {STORED['decisions']} WHERE conversion_id {_IN}",
        "conversion_events": f"FROM {STORED['conversion_events']} WHERE conversion_id {_IN}",
        "conversions": f"FROM conversions WHERE id {_IN}",
    }
    counts = {
        name: _count_or_delete(conn, sql, wanted, dry_run) for name, sql in statements.items()
    }
    if not dry_run:
        totals.remove(conn, totals.Totals(conversions=counts["conversions"]))
    return Deleted(**counts)


def _count_or_delete(
    conn: sqlite3.Connection, from_where: str, args: Sequence[object] | Bounds, dry_run: bool
) -> int:
    if dry_run:
        return int(conn.execute(f"SELECT count(*) {from_where}", args).fetchone()[0])
    return int(conn.execute(f"DELETE {from_where}", args).rowcount)


def _clicks(conn: sqlite3.Connection, bounds: Bounds, dry_run: bool) -> tuple[Deleted, int]:
    """The old clicks of the window that no conversion keeps."""
    rowids = [
        int(r[0])
        for r in conn.execute(
            "SELECT k.rowid FROM clicks k WHERE k.rowid > :after AND k.rowid <= :last"
            f" AND {_old_click(dry_run)}",
            bounds,
        )
    ]
    deleted = Deleted()
    if rowids:
        deleted.clicks = _count_or_delete(
            conn, f"FROM clicks WHERE rowid {_IN}", (_ids(rowids),), dry_run
        )
        if not dry_run:
            totals.remove(conn, totals.Totals(clicks=deleted.clicks))
    return deleted, 0


def _inbound(conn: sqlite3.Connection, bounds: Bounds, dry_run: bool) -> tuple[Deleted, int]:
    """The old inbound requests of the window that nothing kept needs."""
    row = conn.execute(
        "SELECT json_group_array(i.id), count(*), coalesce(sum(i.outcome = 'rejected'), 0),"
        " coalesce(sum(i.endpoint = 'postback'), 0) FROM inbound i"
        f" WHERE i.id > :after AND i.id <= :last AND {_old_inbound(dry_run)}",
        bounds,
    ).fetchone()
    deleted = Deleted(inbound=int(row[1]))
    if deleted.inbound and not dry_run:
        conn.execute(f"DELETE FROM {STORED['inbound']} WHERE id {_IN}", (row[0],))
        totals.remove(
            conn, totals.Totals(inbound=deleted.inbound, rejected=row[2], postbacks=row[3])
        )
    return deleted, 0


def _by_age(table: str, stamp: str) -> Prune:
    """A table whose rows go by their own age alone (nothing hangs off them)."""

    def prune(conn: sqlite3.Connection, bounds: Bounds, dry_run: bool) -> tuple[Deleted, int]:
        sql = f"FROM {table} WHERE id > :after AND id <= :last AND {stamp} < :cut"
        return Deleted(**{table: _count_or_delete(conn, sql, bounds, dry_run)}), 0

    return prune


conversions_step = Walk("conversions", "id", "created_at", _conversions)
clicks_step = Walk("clicks", "rowid", "created_at", _clicks)
inbound_step = Walk("inbound", "id", "received_at", _inbound)
# Sink records and test postbacks are not in the header totals.
sink_records_step = Walk(
    "sink_records", "id", "received_at", _by_age("sink_records", "received_at"), counted=False
)
test_postbacks_step = Walk(
    "test_postbacks", "id", "sent_at", _by_age("test_postbacks", "sent_at"), counted=False
)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


StepJob = Callable[..., Step]
# In this order: a click is free once its conversions are gone, an inbound request once its
# click and conversion are.
PASSES: tuple[Walk, ...] = (
    conversions_step,
    clicks_step,
    inbound_step,
    sink_records_step,
    test_postbacks_step,
)


# -- giving the space back ---------------------------------------------------------------------


def incremental(conn: sqlite3.Connection) -> bool:
    """Whether the database gives freed pages back to the file system in steps."""
    return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2


def free_pages(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA freelist_count").fetchone()[0])


def vacuum_step(conn: sqlite3.Connection, pages: int = VACUUM_PAGES) -> int:
    """Give up to ``pages`` free pages back; return how many are still free. (Each statement
    frees one page: Python's sqlite3 steps a statement without result columns only once.)"""
    for _ in range(min(pages, free_pages(conn))):
        conn.execute("PRAGMA incremental_vacuum(1)")
    return free_pages(conn)


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the file without waiting for anyone, so that a vacuumed file
    shrinks on disk now rather than at the next automatic checkpoint."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def size_on_disk(path: Path) -> int:
    """The database's bytes on disk: its file and its WAL."""
    names = (path, Path(f"{path}-wal"))
    return sum(name.stat().st_size for name in names if name.exists())


# -- running a prune through the writer --------------------------------------------------------


@dataclass
class Pruned:
    """What one prune did."""

    cut: float
    dry_run: bool
    deleted: Deleted = field(default_factory=Deleted)
    kept_pending: int = 0
    step_ms: list[float] = field(default_factory=list)  # each step's time in its transaction
    size_before: int = 0
    size_after: int = 0
    incremental: bool = True  # whether the file gives space back (else freed pages stay)
    free_bytes: int = 0  # freed pages left inside the file (not incremental)

    @property
    def given_back(self) -> int:
        return max(0, self.size_before - self.size_after)

    @property
    def steps(self) -> int:
        return len(self.step_ms)

    @property
    def longest_ms(self) -> float:
        return max(self.step_ms, default=0.0)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.step_ms) if self.step_ms else 0.0

    def took(self, step_ms: float) -> None:
        self.step_ms.append(step_ms)


def next_scan(scan: int, ms: float) -> int:
    """The next step's scan size: aim at ``TARGET_MS`` per step."""
    if ms < TARGET_MS / 2:
        return min(MAX_SCAN, scan + scan // 2)
    if ms > TARGET_MS * 2:
        return max(MIN_SCAN, scan // 2)
    return scan


async def _run(store: Store, job: Callable[[sqlite3.Connection], T], *, dry_run: bool) -> T:
    """A step through the writer, or, in a dry run (which only reads), on the reader."""
    if dry_run:
        return await store.read(job)
    return await store.write(job)


async def _pass(store: Store, job: StepJob, pruned: Pruned) -> None:
    after, scan = 0, FIRST_SCAN
    while True:
        step = await _run(
            store,
            partial(job, cut=pruned.cut, after=after, scan=scan, dry_run=pruned.dry_run),
            dry_run=pruned.dry_run,
        )
        pruned.deleted.add(step.deleted)
        pruned.kept_pending += step.kept_pending
        pruned.took(step.ms)
        if step.done:
            return
        after, scan = step.after, next_scan(scan, step.ms)


def _timed_vacuum_step(conn: sqlite3.Connection) -> tuple[int, float]:
    started = time.perf_counter()
    left = vacuum_step(conn)
    return left, _ms(started)


async def _give_back(store: Store, pruned: Pruned) -> None:
    """Vacuum in steps until no page is free, then checkpoint so that the file shrinks."""
    while True:
        left, ms = await store.write(_timed_vacuum_step)
        pruned.took(ms)
        if not left:
            break
    await store.read(checkpoint)


def page_size(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA page_size").fetchone()[0])


async def prune(store: Store, cut: float, *, dry_run: bool = False) -> Pruned:
    """Delete what is older than ``cut`` (Unix time) in small writer jobs, then give the space
    back in steps; a dry run only counts, on the reader, and changes nothing."""
    pruned = Pruned(cut=cut, dry_run=dry_run, size_before=size_on_disk(store.path))
    for job in PASSES:
        await _pass(store, job, pruned)
    pruned.incremental = await store.read(incremental)
    if not dry_run and pruned.incremental:
        await _give_back(store, pruned)
    if not pruned.incremental:
        pruned.free_bytes = await store.read(free_pages) * await store.read(page_size)
    pruned.size_after = size_on_disk(store.path)
    return pruned


def cut_for(days: float, now: float) -> float:
    """The cut of "older than ``days`` days" at ``now``."""
    return now - days * DAY


async def keep(
    store: Store,
    keep_days: int,
    *,
    delivering: Callable[[], bool],
    report: Callable[[Pruned], None],
    failed: Callable[[Exception], None],
    clock: Callable[[], float] = time.time,
    every: float = 3600.0,
    tick: float = 1.0,
) -> None:
    """Prune what is older than ``keep_days`` once as soon as this process delivers (holds the
    outbox lease), then every ``every`` seconds, reporting each prune (or why it failed: the
    next one is tried at the next time); until cancelled."""
    last: float | None = None
    while True:
        now = time.monotonic()
        if delivering() and (last is None or now - last >= every):
            last = now
            try:
                report(await prune(store, cut_for(keep_days, clock())))
            except (sqlite3.Error, OSError) as error:
                failed(error)
        await asyncio.sleep(tick)


# -- saying what was done ----------------------------------------------------------------------

AGE_UNITS = {"d": DAY, "h": 3600.0, "m": 60.0}


def parse_age(text: str) -> float:
    """An age as ``prune --older-than`` takes it, in seconds: ``30d``, ``12h``, ``90m``, or a
    bare number of days. Raises ``ValueError`` with a sentence naming the value."""
    value = text.strip().lower()
    unit = AGE_UNITS["d"]
    if value[-1:] in AGE_UNITS:
        unit = AGE_UNITS[value[-1]]
        value = value[:-1]
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0 or number == float("inf"):
        raise ValueError(
            f"{text!r} is not an age: write a number of days (30 or 30d), hours (12h) or "
            "minutes (90m)"
        )
    return number * unit


def size_text(size: float) -> str:
    """Bytes as a person reads them: 512 B, 96.0 KiB, 1.3 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def describe(pruned: Pruned) -> list[str]:
    """What a prune did (or, dry, would do), in a few lines."""
    d = pruned.deleted
    cut = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(pruned.cut))
    verb = "would delete" if pruned.dry_run else "deleted"
    lines = [
        f"{verb} what is older than {cut}: {d.conversions} conversions ({d.conversion_events}"
        f" events, {d.decisions} decisions, {d.deliveries} delivery attempts), {d.clicks}"
        f" clicks, {d.inbound} inbound requests, {d.sink_records} sink records,"
        f" {d.test_postbacks} test postbacks"
    ]
    if pruned.kept_pending:
        lines.append(
            f"kept {pruned.kept_pending} old conversions whose delivery is still pending or"
            " retrying (with their clicks and requests)"
        )
    if pruned.dry_run:
        lines.append("dry run: nothing was changed")
        return lines
    lines.append(
        f"{pruned.steps} transactions of {pruned.median_ms:.1f} ms (median), the longest"
        f" {pruned.longest_ms:.1f} ms"
    )
    if pruned.incremental:
        lines.append(
            f"space given back: {size_text(pruned.given_back)} (database and WAL"
            f" {size_text(pruned.size_before)} -> {size_text(pruned.size_after)})"
        )
    else:
        lines.append(
            f"this database was created without incremental vacuum: the"
            f" {size_text(pruned.free_bytes)} free inside it are reused by new data but not"
            " given back; run postwatch prune --vacuum once (with the listener stopped) to"
            " rewrite it so that every prune gives its space back"
        )
    return lines
