"""The database: one writer that commits in batches, and a reader.

Every write is a job, a plain function of a ``sqlite3.Connection``. Jobs queue up and one task
runs them on a single aiosqlite connection: whatever queued while the previous batch committed
goes into the next transaction together (group commit); one failing job does not spoil the
others. ``write()`` returns only once the job's batch is committed, so a caller can answer its
HTTP request knowing the data is on disk (WAL).

A batch runs as one call on aiosqlite's thread instead of one thread hop per statement; that
is what makes a few thousand postbacks a second fit on one core.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from store import totals
from store.events import WriteCache, confirm_write_cache, end_write_cache
from store.schema import migrate

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
Hook = Callable[[sqlite3.Connection], None]

MAX_BATCH = 256

log = logging.getLogger("postwatch.store")


class Connection(sqlite3.Connection):
    """A connection that remembers what it wrote: the ids of interned texts (``store.events``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_cache = WriteCache()


def connect(path: str | Path) -> sqlite3.Connection:
    """A plain connection with postwatch's settings, for the CLI and for jobs."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=Connection)
    configure(conn)
    return conn


def configure(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    # Pruned space goes back to the file system (store/retention.py runs the vacuum in
    # steps). SQLite takes this only while the database has no table, and before WAL mode:
    # it applies to new databases; on older ones it waits for a VACUUM (prune --vacuum).
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a commit survives the process dying; only a power cut can lose the
    # last transactions. That is the trade every embedded tracker makes for throughput.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    # References are declared for readers; enforcing them costs a tenth of a postback, and
    # every row that refers to another is written by the same job as its parent.
    conn.execute("PRAGMA foreign_keys = OFF")


# -- the writer's checkpoints ----------------------------------------------------------------
#
# A large database takes random keys (click ids, txids) all over two big indexes: each
# postback dirties a page of each, and SQLite's automatic checkpoint copies those pages from
# the WAL into the database on the commit path, stalling every request of the batch. The
# writer leaves the copying to a thread of its own (a larger page cache, mmap and 1 KiB pages
# were measured too, and did not win: see docs/storage.md).
#
# A checkpoint from another connection cannot end the WAL while commits keep coming (it never
# catches up with the last frame), so the WAL would grow for as long as the load lasts: the
# writer ends it itself, with one passive checkpoint between two batches. That pass holds up
# the next batch, and it costs what it copies and what it syncs: a pass that reaches the WAL's
# end syncs the database file, and SQLite syncs it only then, so without help that one sync
# would write back every page the thread copied since the last one, scattered all over a
# large file (50-75 ms at a million conversions). So the thread syncs the file after each of
# its passes, and once the WAL passes WAL_ASK_BYTES the writer asks it for a pass at once and
# ends the WAL right after that pass: the writer's own pass then copies and syncs only what
# came in during it. Past WAL_LIMIT_BYTES (the thread is stuck, say) the writer ends the WAL
# without waiting.

CHECKPOINT_EVERY = 0.25  # seconds: the checkpointer's passes are at least this far apart
CHECKPOINT_IDLE = 1.0  # seconds: a pass at least this often, with or without commits
WAL_ASK_BYTES = 32 << 20  # the WAL at which the writer asks the thread for a pass at once
WAL_LIMIT_BYTES = 64 << 20  # the WAL at which the writer ends it without waiting


def configure_writer(conn: sqlite3.Connection) -> None:
    """The writer's own settings, on top of ``configure``'s: checkpoints are the
    checkpointer's job (``Checkpointer``), not the commit's."""
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_ASK_BYTES}")


def wal_size(path: Path) -> int:
    """Bytes of the database's WAL file (0 when there is none)."""
    try:
        return os.stat(f"{path}-wal").st_size
    except FileNotFoundError:
        return 0


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int]:
    """A passive checkpoint: never waits for the writer or readers. (frames in the WAL,
    frames copied into the database)"""
    _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames), int(copied)


class Checkpointer:
    """Copies the WAL into the database from a thread and a connection of its own, woken by
    commits (``nudge``), so that commits do not wait for it; syncs the file after each pass,
    so that the writer's pass that ends the WAL has only its own pages to sync."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoints = 0  # passes done
        self._wake = threading.Event()
        self._hurry = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-checkpointer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def nudge(self) -> None:
        """Something was committed: copy it soon."""
        self._wake.set()

    def hurry(self) -> None:
        """Start the next pass now, without the pause between passes."""
        self._hurry.set()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self.hurry()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        file = os.open(self.path, os.O_RDONLY)
        synced = 0
        try:
            while not self._stop.is_set():
                self._wake.wait(CHECKPOINT_IDLE)
                self._wake.clear()
                try:
                    _, copied = _checkpoint(conn)
                    if copied > 0 and copied != synced:  # (the count starts again with the WAL)
                        _sync(file)
                        synced = copied
                except (sqlite3.Error, OSError) as error:  # say, the disk is full: try again
                    log.warning("checkpoint of %s failed: %s", self.path, error)
                self.checkpoints += 1
                self._hurry.wait(CHECKPOINT_EVERY)  # let commits gather into the next pass
                self._hurry.clear()
        finally:
            os.close(file)
            conn.close()


_sync = getattr(os, "fdatasync", os.fsync)  # the data, not the file's times


@dataclass
class Hooks:
    """What runs in every batch's transaction besides its jobs: ``before`` them, and
    ``after`` them (just before the commit, seeing what the jobs wrote); and once it has
    ended, committed or rolled back (``ended``)."""

    before: list[Hook] = field(default_factory=list)
    after: list[Hook] = field(default_factory=list)
    ended: list[Hook] = field(default_factory=list)


def _run_batch(conn: sqlite3.Connection, jobs: list[Job], hooks: Hooks) -> list[tuple[bool, Any]]:
    """Run jobs in one transaction, between the hooks. Savepoints cost a tenth of a postback's
    time, so the batch first runs without them; only when a job fails is it run again with each
    job in its own savepoint, so that the failing job's writes alone are undone. Jobs touch
    nothing but the database, so running one twice (the first time rolled back) is safe."""
    try:
        return _transaction(conn, jobs, hooks, isolated=False)
    except _JobFailed:
        return _transaction(conn, jobs, hooks, isolated=True)


class _JobFailed(Exception):
    pass


def _transaction(
    conn: sqlite3.Connection, jobs: list[Job], hooks: Hooks, *, isolated: bool
) -> list[tuple[bool, Any]]:
    results: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for hook in hooks.before:
            hook(conn)
        for job in jobs:
            if not isolated:
                try:
                    results.append((True, job(conn)))
                except Exception as error:
                    raise _JobFailed from error
                continue
            conn.execute("SAVEPOINT job")
            try:
                results.append((True, job(conn)))
            except Exception as error:  # one job's failure is reported to its caller only
                conn.execute("ROLLBACK TO job")
                results.append((False, error))
            conn.execute("RELEASE job")
        for hook in hooks.after:
            hook(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        for hook in hooks.ended:
            hook(conn)
    return results


async def _on_thread(db: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(connection, *args)`` on the aiosqlite connection's own thread."""
    result: T = await db._execute(fn, db._conn, *args)  # type: ignore[no-untyped-call]
    return result


async def _open(path: str | Path) -> aiosqlite.Connection:
    db = await aiosqlite.connect(path, isolation_level=None, factory=Connection)
    try:
        await _on_thread(db, configure)
    except BaseException:
        await db.close()  # its thread would keep the process alive
        raise
    return db


class DatabaseError(Exception):
    """The database file cannot be opened or written: the message names it and says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"cannot open the database {path}: {reason}; check that the file and its folder "
            "exist and are writable, or choose another with --db"
        )


class NoDatabase(Exception):
    """No database where one must be already (to read it, or to attach to it)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no database at {path}: start `postwatch serve --db {path}` first")


def require(path: Path) -> None:
    """Raise ``NoDatabase`` unless a database file is at ``path``."""
    if not path.exists():
        raise NoDatabase(path)


class Store:
    """The database of one postwatch workspace."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        # Every batch counts what it added for the header totals: once per batch, not a
        # trigger per row (three trigger updates per postback cost ingest a tenth); the
        # text ids a batch stored are trusted once a later batch still finds them, and the
        # filter of attached click ids within a batch only.
        self._hooks = Hooks(
            before=[confirm_write_cache], after=[totals.advance], ended=[end_write_cache]
        )
        self.checkpointer: Checkpointer | None = None
        self._asked: int | None = None  # the thread's passes when the writer asked for one
        self.batches = 0

    async def open(self) -> Store:
        """Open (or create) the database; raise ``DatabaseError`` naming the path and the
        cause when it cannot be opened for writing, with nothing left running."""
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            reason = f"its folder {folder} cannot be made ({error.strerror or error})"
            raise DatabaseError(self.path, reason) from error
        try:
            self._writer = await _open(self.path)
            await _on_thread(self._writer, migrate)
            await _on_thread(self._writer, configure_writer)
            self._reader = await _open(self.path)
        except (OSError, sqlite3.Error) as error:
            await self.close()
            raise DatabaseError(self.path, str(error)) from error
        self.checkpointer = Checkpointer(self.path)
        self.checkpointer.start()
        self._task = asyncio.create_task(self._drain(), name="store-writer")
        return self

    async def close(self) -> None:
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
            self.checkpointer = None
        for db in (self._writer, self._reader):
            if db is not None:
                await db.close()
        self._writer = self._reader = None

    async def __aenter__(self) -> Store:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def write(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run ``job`` in the next batch: await the result, which comes once the batch is
        committed. (A future rather than a coroutine: one step less on every request.)"""
        if self._task is None:
            raise RuntimeError("the store is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return future

    async def learn_attached_ids(self) -> None:
        """Read the ids of the clicks attached to postbacks into the writer's filter
        (store/attached.py), so that a postback naming a new id costs no look-up in every
        block of them. The listener does it as it starts."""
        assert self._writer is not None, "the store is not open"
        await _on_thread(self._writer, lambda conn: conn.write_cache.attached.learn(conn))

    def before_each_batch(self, hook: Hook) -> None:
        """Run ``hook(connection)`` at the start of every batch's transaction, before its jobs
        (say, to refresh what the jobs read from a cache)."""
        self._hooks.before.append(hook)

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``query`` on the reader connection."""
        assert self._reader is not None, "the store is not open"
        return await _on_thread(self._reader, query)

    async def _gather(self) -> None:
        """Before a batch starts, let the event loop take in the requests that have already
        arrived, so that they join it: under load a batch then holds every waiting request and
        one commit serves them all. A pass costs one turn of the loop; an idle one stops it."""
        for _ in range(3):
            waiting = self._queue.qsize()
            await asyncio.sleep(0)
            if self._queue.qsize() == waiting:
                return

    async def _after_commit(self) -> None:
        """Wake the checkpointer; end the WAL here once it has grown past WAL_ASK_BYTES and the
        thread has made the pass asked of it (or at once past WAL_LIMIT_BYTES)."""
        checkpointer = self.checkpointer
        if checkpointer is None or self._writer is None:
            return
        checkpointer.nudge()
        size = wal_size(self.path)
        if size <= WAL_ASK_BYTES:
            return
        if self._asked is None:
            self._asked = checkpointer.checkpoints
            checkpointer.hurry()
            return
        if checkpointer.checkpoints == self._asked and size <= WAL_LIMIT_BYTES:
            return  # the thread's pass is still copying
        self._asked = None
        try:
            await _on_thread(self._writer, _checkpoint)
        except sqlite3.Error as error:  # say, the disk is full: the next batch tries again
            log.warning("checkpoint of %s failed: %s", self.path, error)

    async def _drain(self) -> None:
        assert self._writer is not None
        stopping = False
        while not stopping:
            item = await self._queue.get()
            await self._gather()
            batch: list[tuple[Job, asyncio.Future[Any]]] = []
            while item is not None:
                batch.append(item)
                if len(batch) >= MAX_BATCH or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            stopping = item is None
            if not batch:
                continue
            try:
                results = await _on_thread(
                    self._writer, _run_batch, [job for job, _ in batch], self._hooks
                )
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
            await self._after_commit()  # the batch is answered while this runs
