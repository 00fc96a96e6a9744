"""What happens to traffic: inbound requests, clicks, conversions, decisions, deliveries and
sink records. Sync functions of a ``sqlite3.Connection``, run as writer jobs."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from store.attached import AttachedIds
from store.jsontext import dumps
from store.records import Attempt, Click, Conversion, InboundRequest
from store.rows import record_of
from store.schema import attached_click, by_click_id, own_click
from store.timeline import first_id

RESPONSE_LIMIT = 2048  # bytes of an answer kept on a delivery attempt
CACHED_TEXTS = 50_000  # interned texts whose ids a writer keeps in memory


# -- interned texts ---------------------------------------------------------------------------


def _lookup_text(conn: sqlite3.Connection, text: str) -> int:
    """The id of ``text`` in ``texts``, stored now if it is new. INSERT OR IGNORE then the
    look-up: right even when another process stores the same text at the same time."""
    row = conn.execute("SELECT id FROM texts WHERE value = ?", (text,)).fetchone()
    if row is None:
        conn.execute("INSERT OR IGNORE INTO texts (value) VALUES (?)", (text,))
        row = conn.execute("SELECT id FROM texts WHERE value = ?", (text,)).fetchone()
    return int(row[0])


class WriteCache:
    """What one connection knows of what it wrote, so that a postback's texts cost no
    statement: the ids of interned texts it has seen committed, its last event's time, and
    the ids of the clicks attached to postbacks (``AttachedIds``).

    An id looked up in a transaction is trusted only once a later transaction still finds it
    (``confirm``): the first may roll back, wholly or one job's savepoint, and take a newly
    stored text with it. ``texts`` only grows and its ids never change, so a confirmed id stays
    right for every process writing the database."""

    def __init__(self) -> None:
        self._known: dict[str, int] = {}
        self._seen: dict[str, int] = {}  # looked up since the last confirm
        self.last_event: tuple[int, float] | None = None  # this transaction's newest event
        self.attached = AttachedIds()

    def text_id(self, conn: sqlite3.Connection, text: str) -> int:
        known = self._known.get(text)
        if known is not None:
            return known
        found = _lookup_text(conn, text)
        self._seen[text] = found
        return found

    def confirm(self, conn: sqlite3.Connection) -> None:
        """At the start of a transaction: keep the text ids seen since the last one that are
        committed (what this transaction sees of ``texts`` is committed); learn the clicks
        attached since the last one."""
        self.last_event = None
        self.attached.refresh(conn)
        if not self._seen:
            return
        seen, self._seen = self._seen, {}
        if len(self._known) + len(seen) > CACHED_TEXTS:
            self._known.clear()  # a bound, not an LRU: the texts that matter come back at once
        for text, found in seen.items():
            row = conn.execute("SELECT value FROM texts WHERE id = ?", (found,)).fetchone()
            if row is not None and row[0] == text:
                self._known[text] = found


def _cache(conn: sqlite3.Connection) -> WriteCache | None:
    cache: WriteCache | None = getattr(conn, "write_cache", None)
    return cache


def text_id(conn: sqlite3.Connection, text: str) -> int:
    """The id of ``text`` in ``texts`` (stored if new), from the connection's cache when it
    keeps one (``store.db`` connections do)."""
    cache = _cache(conn)
    return _lookup_text(conn, text) if cache is None else cache.text_id(conn, text)


def _maybe_text_id(conn: sqlite3.Connection, text: str | None) -> int | None:
    return None if text is None else text_id(conn, text)


def confirm_write_cache(conn: sqlite3.Connection) -> None:
    """Batch hook: trust the text ids the connection looked up in earlier transactions."""
    cache = _cache(conn)
    if cache is not None:
        cache.confirm(conn)


def end_write_cache(conn: sqlite3.Connection) -> None:
    """Batch hook, once the transaction has ended: the attached ids are no longer known."""
    cache = _cache(conn)
    if cache is not None:
        cache.attached.end()


def _json_id(conn: sqlite3.Connection, value: Any) -> int:
    return text_id(conn, dumps(value))


# -- traffic ----------------------------------------------------------------------------------


def insert_inbound(
    conn: sqlite3.Connection,
    request: InboundRequest,
    *,
    outcome: str,
    reason: str,
    http_status: int,
    warnings: list[str] | None = None,
    parsed: dict[str, Any] | None = None,
    click_id: str | None = None,
    conversion_id: int | None = None,
) -> int:
    cursor = conn.execute(
        "INSERT INTO inbound_rows (received_at, endpoint, method_text, path_text, query, body,"
        " remote_text, headers_text, outcome, reason, http_status, warnings_text, parsed_text,"
        " click_id, conversion_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            request.received_at,
            request.endpoint,
            text_id(conn, request.method),
            text_id(conn, request.path),
            request.query,
            request.body,
            text_id(conn, request.remote),
            _json_id(conn, request.headers),
            outcome,
            reason,
            http_status,
            _json_id(conn, warnings or []),
            _json_id(conn, parsed or {}),
            # the conversion's click, rebuilt by the view (store.schema COMPACTED)
            None if conversion_id is not None and not reason else click_id,
            conversion_id,
        ),
    )
    return int(cursor.lastrowid or 0)


def insert_click(conn: sqlite3.Connection, click: Click, inbound_id: int | None) -> int:
    """Insert a click, recorded at /click (``inbound_id``: its request) or attached to a
    postback (None); its sequence number. An attached click's id is new: its caller looked
    for it first (``get_click``)."""
    cursor = conn.execute(
        "INSERT INTO clicks (id, campaign_id, external_id, params, created_at, inbound_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            click.id,
            click.campaign_id,
            click.external_id,
            dumps(click.params),
            click.created_at,
            inbound_id,
        ),
    )
    cache = _cache(conn)
    if inbound_id is None and cache is not None:
        cache.attached.note(click.id)
    return int(cursor.lastrowid or 0)


def delete_click(conn: sqlite3.Connection, click: Click) -> None:
    conn.execute("DELETE FROM clicks WHERE seq = ?", (click.seq,))


def get_click(conn: sqlite3.Connection, click_id: str) -> Click | None:
    """The click of this id: one postwatch recorded, or one attached to a postback (looked
    up only when the writer's filter of attached ids does not rule it out)."""
    row = conn.execute(f"SELECT * FROM clicks WHERE {own_click()}", (click_id,)).fetchone()
    if row is None:
        cache = _cache(conn)
        if cache is None or cache.attached.may_hold(click_id):
            query = f"SELECT * FROM clicks WHERE {attached_click()}"
            row = conn.execute(query, (click_id,)).fetchone()
    return None if row is None else record_of(row, Click)


def conversion(row: sqlite3.Row) -> Conversion:
    """A conversions row as the record the rule engine reads."""
    return record_of(row, Conversion)


def find_conversion(
    conn: sqlite3.Connection, click: Click, *, txid: str | None, type_: str | None
) -> Conversion | None:
    """The conversion a postback repeats: same click and txid, or (without a txid) the newest
    one of the same click and type."""
    if txid is not None:
        row = conn.execute(
            "SELECT * FROM conversions WHERE click_seq = ? AND txid = ? ORDER BY id DESC LIMIT 1",
            (click.seq, txid),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT * FROM conversions WHERE click_seq = ? AND type IS ? ORDER BY id DESC LIMIT 1",
            (click.seq, type_),
        ).fetchone()
    return None if row is None else conversion(row)


def save_conversion(
    conn: sqlite3.Connection, conversion: Conversion, click: Click, at: float
) -> int:
    """Insert a new conversion (id 0) of ``click`` or update an existing one; return its id."""
    values = (
        conversion.type,
        conversion.status,
        conversion.raw_status,
        conversion.payout,
        conversion.currency,
        conversion.txid,
        at,
    )
    if conversion.id:
        conn.execute(
            "UPDATE conversions SET type = ?, status = ?, raw_status = ?, payout = ?,"
            " currency = ?, txid = ?, updated_at = ? WHERE id = ?",
            (*values, conversion.id),
        )
        return conversion.id
    cursor = conn.execute(
        "INSERT INTO conversions (type, status, raw_status, payout, currency, txid, updated_at,"
        " click_id, click_seq, campaign_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*values, conversion.click_id, click.seq, conversion.campaign_id, at),
    )
    return int(cursor.lastrowid or 0)


def insert_event(
    conn: sqlite3.Connection, conversion: Conversion, inbound_id: int, change: str, at: float
) -> int:
    cursor = conn.execute(
        "INSERT INTO conversion_event_rows (conversion_id, inbound_id, at, change_text,"
        " type_text, status_text, raw_status_text, payout) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            conversion.id,
            inbound_id,
            at,
            text_id(conn, change),
            _maybe_text_id(conn, conversion.type),
            text_id(conn, conversion.status),
            _maybe_text_id(conn, conversion.raw_status),
            conversion.payout,
        ),
    )
    event_id = int(cursor.lastrowid or 0)
    cache = _cache(conn)
    if cache is not None:
        cache.last_event = (event_id, at)
    return event_id


def last_fired_at(conn: sqlite3.Connection, conversion_id: int, config_id: int) -> float | None:
    row = conn.execute(
        "SELECT max(at) FROM decisions"
        " WHERE conversion_id = ? AND postback_config_id = ? AND verdict = 'fired'",
        (conversion_id, config_id),
    ).fetchone()
    return None if row[0] is None else float(row[0])


def insert_decision(
    conn: sqlite3.Connection,
    *,
    conversion_id: int,
    event_id: int,
    config_id: int,
    postback: str,
    kind: str,
    verdict: str,
    reasons: list[str],
    warnings: list[str],
    at: float,
    request: dict[str, Any] | None = None,
) -> int:
    """``request``: what a skipped decision built but did not send (secrets masked)."""
    # The time of a decision made with its event is the event's: the view rebuilds it.
    cache = _cache(conn)
    stored_at = None if cache is not None and cache.last_event == (event_id, at) else at
    cursor = conn.execute(
        "INSERT INTO decision_rows (conversion_id, event_id, postback_config_id, postback_text,"
        " kind_text, verdict, reasons_text, warnings_text, at, request)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            conversion_id,
            event_id,
            config_id,
            text_id(conn, postback),
            text_id(conn, kind),
            verdict,
            _json_id(conn, reasons),
            _json_id(conn, warnings),
            stored_at,
            None if request is None else dumps(request),
        ),
    )
    return int(cursor.lastrowid or 0)


def insert_attempt(
    conn: sqlite3.Connection,
    *,
    decision_id: int,
    attempt: int,
    method: str,
    url: str,
    headers: dict[str, str],
    body: str,
    due_at: float,
    resend_of: int | None = None,
) -> int:
    cursor = conn.execute(
        "INSERT INTO deliveries (decision_id, attempt, resend_of, method, url, headers, body,"
        " outcome, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
        (decision_id, attempt, resend_of, method, url, dumps(headers), body, due_at),
    )
    return int(cursor.lastrowid or 0)


_ATTEMPT = """
    SELECT d.*, p.kind, p.platform, t.success_body, t.failure_body
    FROM deliveries d
    JOIN decision_rows k ON k.id = d.decision_id
    JOIN postback_configs p ON p.id = k.postback_config_id
    JOIN campaigns c ON c.id = p.campaign_id
    JOIN traffic_sources t ON t.id = c.traffic_source_id
"""


def pending_attempts(conn: sqlite3.Connection, after: int = 0) -> list[Attempt]:
    """Every attempt waiting to be sent (the outbox), or those with an id above ``after``."""
    rows = conn.execute(_ATTEMPT + " WHERE d.outcome = 'pending' AND d.id > ?", (after,))
    return [_attempt(row) for row in rows]


def due_attempts(
    conn: sqlite3.Connection,
    *,
    until: float,
    after: tuple[float, int] | None = None,
    limit: int = 500,
) -> list[Attempt]:
    """One page of the outbox: pending attempts due by ``until``, soonest due first (then by
    id), after the page key ``after`` (the due time and id of the previous page's last row).
    Read through the ``deliveries_pending`` index, so a large backlog costs one page."""
    due_at, delivery_id = after if after is not None else (float("-inf"), 0)
    rows = conn.execute(
        _ATTEMPT + " WHERE d.outcome = 'pending' AND d.due_at <= ?"
        " AND (d.due_at > ? OR (d.due_at = ? AND d.id > ?))"
        " ORDER BY d.due_at, d.id LIMIT ?",
        (until, due_at, due_at, delivery_id, limit),
    )
    return [_attempt(row) for row in rows]


def attempt_outcome(conn: sqlite3.Connection, delivery_id: int) -> str | None:
    """The outcome recorded on an attempt, or None when there is no such attempt."""
    row = conn.execute("SELECT outcome FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
    return None if row is None else str(row[0])


def load_attempt(conn: sqlite3.Connection, delivery_id: int) -> Attempt | None:
    row = conn.execute(_ATTEMPT + " WHERE d.id = ?", (delivery_id,)).fetchone()
    return None if row is None else _attempt(row)


def _attempt(row: sqlite3.Row) -> Attempt:
    return record_of(row, Attempt)


def finish_attempt(
    conn: sqlite3.Connection,
    delivery_id: int,
    *,
    outcome: str,
    sent_at: float,
    duration_ms: float,
    http_status: int | None,
    response: str | None,
    error: str | None,
) -> None:
    conn.execute(
        "UPDATE deliveries SET outcome = ?, sent_at = ?, duration_ms = ?, http_status = ?,"
        " response = ?, error = ? WHERE id = ?",
        (
            outcome,
            sent_at,
            duration_ms,
            http_status,
            None
            if response is None
            else response.encode()[:RESPONSE_LIMIT].decode(errors="ignore"),
            error,
            delivery_id,
        ),
    )


def repeat_attempt(
    conn: sqlite3.Connection, delivery_id: int, *, due_at: float, resend_of: int | None = None
) -> int | None:
    """A new pending attempt with the same request as delivery ``delivery_id``, numbered next
    for its decision; None when there is no such delivery."""
    cursor = conn.execute(
        "INSERT INTO deliveries (decision_id, attempt, resend_of, method, url, headers, body,"
        " outcome, due_at)"
        " SELECT decision_id,"
        " (SELECT max(attempt) + 1 FROM deliveries WHERE decision_id = d.decision_id),"
        " ?, method, url, headers, body, 'pending', ? FROM deliveries d WHERE id = ?",
        (resend_of, due_at, delivery_id),
    )
    return cursor.lastrowid if cursor.rowcount else None


def insert_sink_record(
    conn: sqlite3.Connection,
    sink: str,
    request: InboundRequest,
    http_status: int,
) -> int:
    cursor = conn.execute(
        "INSERT INTO sink_records (sink, received_at, method, path, query, headers, body,"
        " http_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            sink,
            request.received_at,
            request.method,
            request.path,
            request.query,
            dumps(request.headers),
            request.body,
            http_status,
        ),
    )
    return int(cursor.lastrowid or 0)


# -- the outbox lease ------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxLease:
    """Who delivers for the database: one row, renewed by its holder about every second."""

    holder: str
    pid: int
    host: str
    heartbeat: float


def process_exists(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return False
    return True


def lease_is_free(
    lease: OutboxLease | None,
    *,
    holder: str,
    host: str,
    now: float,
    stale_after: float,
    alive: bool,
) -> bool:
    """Whether ``holder`` may take (or keep) the lease: nobody holds it, it holds it already,
    its holder has not renewed it for ``stale_after`` seconds, or its holder is a process on
    this machine that no longer exists (``alive`` False), so a restart after a kill takes over
    at once."""
    if lease is None or lease.holder == holder:
        return True
    if now - lease.heartbeat > stale_after:
        return True
    return lease.host == host and not alive


def current_lease(conn: sqlite3.Connection) -> OutboxLease | None:
    row = conn.execute("SELECT holder, pid, host, heartbeat FROM outbox_lease").fetchone()
    if row is None:
        return None
    return OutboxLease(row["holder"], row["pid"], row["host"], row["heartbeat"])


def take_lease(
    conn: sqlite3.Connection,
    *,
    holder: str,
    pid: int,
    host: str,
    now: float,
    stale_after: float,
) -> OutboxLease:
    """Take or renew the outbox lease for ``holder`` when it is free; return whoever holds it
    now. Run as a writer job: the transaction is BEGIN IMMEDIATE, so two processes cannot both
    take it."""
    lease = current_lease(conn)
    alive = lease is not None and (lease.host != host or process_exists(lease.pid))
    if not lease_is_free(
        lease, holder=holder, host=host, now=now, stale_after=stale_after, alive=alive
    ):
        assert lease is not None
        return lease
    conn.execute(
        "INSERT INTO outbox_lease (id, holder, pid, host, heartbeat) VALUES (1, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, pid = excluded.pid,"
        " host = excluded.host, heartbeat = excluded.heartbeat",
        (holder, pid, host, now),
    )
    return OutboxLease(holder, pid, host, now)


def release_lease(conn: sqlite3.Connection, holder: str) -> None:
    """Give the lease up (on a clean shutdown), so that the next listener takes it at once."""
    conn.execute("DELETE FROM outbox_lease WHERE holder = ?", (holder,))


# -- the support actions: replay, conversions by hand, test postbacks ---------------------------


def latest_inbound_id(conn: sqlite3.Connection) -> int:
    """The newest inbound row's id. In a writer job, right after a step that stored one
    request, that request's row: the writer is the only one inserting."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM inbound").fetchone()[0])


def mark_replay(conn: sqlite3.Connection, inbound_id: int, replay_of: int) -> None:
    """Link a replayed request to the inbound row it replays."""
    # the stored table: through the view, every column would be written again
    conn.execute("UPDATE inbound_rows SET replay_of = ? WHERE id = ?", (replay_of, inbound_id))


def mark_manual(conn: sqlite3.Connection, conversion_id: int) -> None:
    """Mark a conversion as entered by hand."""
    conn.execute("UPDATE conversions SET manual = 1 WHERE id = ?", (conversion_id,))


@dataclass(frozen=True)
class TestPostback:
    """One test postback of a postback config: what was sent and what the target answered."""

    postback_config_id: int
    postback: str
    campaign: str
    kind: str
    macro_values: dict[str, str]
    method: str
    url: str
    headers: dict[str, str]
    body: str
    outcome: str
    sent_at: float
    duration_ms: float
    http_status: int | None
    response: str | None
    error: str | None


def insert_test_postback(conn: sqlite3.Connection, test: TestPostback) -> int:
    """Store a test postback (never a delivery: the outbox and the totals do not read it)."""
    cursor = conn.execute(
        "INSERT INTO test_postbacks (postback_config_id, postback, campaign, kind, macro_values,"
        " method, url, headers, body, outcome, sent_at, duration_ms, http_status, response,"
        " error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            test.postback_config_id,
            test.postback,
            test.campaign,
            test.kind,
            dumps(test.macro_values),
            test.method,
            test.url,
            dumps(test.headers),
            test.body,
            test.outcome,
            test.sent_at,
            test.duration_ms,
            test.http_status,
            None
            if test.response is None
            else test.response.encode()[:RESPONSE_LIMIT].decode(errors="ignore"),
            test.error,
        ),
    )
    return int(cursor.lastrowid or 0)


# -- recover and re-evaluate -----------------------------------------------------------------

REEVALUATED = "reevaluated"  # the change of a conversion event made by a re-evaluation
NO_REQUEST = 0  # the inbound id of an event that no request made (a re-evaluation)


def recoverable_deliveries(
    conn: sqlite3.Connection,
    *,
    since: float,
    traffic_source: str | None = None,
    postback: str | None = None,
    campaign: str | None = None,
) -> list[int]:
    """The ids of the failed attempts since ``since`` (when they were sent) that recover
    resends, oldest first: the last attempt of their decision (none came after: not resent,
    not retried), of a decision that never delivered. ``postback`` is a config's name or
    id, ``campaign`` a campaign's key or name. Read through the ``deliveries_outcome`` index."""
    where = [
        "d.outcome = 'failed'",
        "coalesce(d.sent_at, d.due_at) >= ?",
        "d.id = (SELECT max(id) FROM deliveries WHERE decision_id = d.decision_id)",
        "NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.decision_id = d.decision_id"
        " AND x.outcome = 'delivered')",
    ]
    values: list[Any] = [since]
    if traffic_source is not None:
        where.append("t.name = ?")
        values.append(traffic_source)
    if postback is not None:
        where.append("(p.name = ? OR CAST(p.id AS TEXT) = ?)")
        values += [postback, postback]
    if campaign is not None:
        where.append("(c.key = ? OR c.name = ?)")
        values += [campaign, campaign]
    rows = conn.execute(
        "SELECT d.id FROM deliveries d"
        " JOIN decisions k ON k.id = d.decision_id"
        " JOIN postback_configs p ON p.id = k.postback_config_id"
        " JOIN campaigns c ON c.id = p.campaign_id"
        " JOIN traffic_sources t ON t.id = c.traffic_source_id"
        f" WHERE {' AND '.join(where)} ORDER BY d.id",
        values,
    )
    return [int(row[0]) for row in rows]


_CONVERSION_COLUMNS = "id, click_id, campaign_id, type, status, raw_status, payout, currency, txid"


@dataclass(frozen=True)
class Chosen:
    """Conversions of a campaign (id), created in [since, until) (Unix seconds), or among
    ``ids``: every part given must hold."""

    campaign_id: int | None = None
    since: float | None = None
    until: float | None = None
    ids: Sequence[int] = ()

    def where(self) -> tuple[list[str], list[Any]]:
        """The conditions on ``conversions`` and their values."""
        where: list[str] = []
        values: list[Any] = []
        if self.campaign_id is not None:
            where.append("campaign_id = ?")
            values.append(self.campaign_id)
        # the id bounds of the time range (store.timeline), then the exact condition
        if self.since is not None:
            where.append(f"id >= {first_id('conversions', 'created_at', '>=')}")
            where.append("+created_at >= ?")
            values += [self.since, self.since, self.since]
        if self.until is not None:
            where.append(f"id < {first_id('conversions', 'created_at', '>=')}")
            where.append("+created_at < ?")
            values += [self.until, self.until, self.until]
        if self.ids:
            where.append(f"id IN {_in(self.ids)}")
            values += list(self.ids)
        return where or ["1"], values


def conversion_count(conn: sqlite3.Connection, chosen: Chosen) -> int:
    """How many conversions ``chosen`` holds."""
    where, values = chosen.where()
    sql = f"SELECT count(*) FROM conversions WHERE {' AND '.join(where)}"
    return int(conn.execute(sql, values).fetchone()[0])


def rule_values(
    conn: sqlite3.Connection, chosen: Chosen, limit: int
) -> list[tuple[int, str | None, str, float | None]]:
    """The distinct (campaign id, type, status, payout) of the chosen conversions, at most
    ``limit`` of them: what a rule reads of a conversion."""
    where, values = chosen.where()
    cursor = conn.execute(
        "SELECT DISTINCT campaign_id, type, status, payout FROM conversions"
        f" WHERE {' AND '.join(where)} LIMIT ?",
        (*values, limit),
    )
    cursor.row_factory = None
    return cursor.fetchall()


# A verdict the current rules give a postback config for a conversion of these values, as
# one that fired before or not (see ``expected_verdicts``).
ExpectedVerdict = tuple[int, str | None, str, float | None, int, bool, str]


@contextmanager
def expected_verdicts(
    conn: sqlite3.Connection, verdicts: Iterable[ExpectedVerdict]
) -> Iterator[None]:
    """Meanwhile, ``verdicts`` (campaign id, type, status, payout, postback config id, whether
    it fired before, verdict) are the temporary table ``expected_verdicts``, which only this
    connection sees, for ``conversion_page(changing=True)``; it is dropped after."""
    conn.execute(
        "CREATE TEMP TABLE expected_verdicts (campaign_id INTEGER NOT NULL, type TEXT,"
        " status TEXT NOT NULL, payout REAL, postback_config_id INTEGER NOT NULL,"
        " fired INTEGER NOT NULL, verdict TEXT NOT NULL)"
    )
    try:
        conn.execute(
            "CREATE INDEX temp.expected_verdicts_values"
            " ON expected_verdicts (campaign_id, type, status, payout)"
        )
        conn.executemany("INSERT INTO expected_verdicts VALUES (?, ?, ?, ?, ?, ?, ?)", verdicts)
        yield
    finally:
        conn.execute("DROP TABLE temp.expected_verdicts")


# A conversion of which a postback config's expected verdict is not its latest decision's
# (or it has none). Whether the config fired before reads the decisions_fired index alone;
# the latest decision is the config's highest id in decisions_conversion, looked up only
# when it may be the expected one (a config that never fired has no latest that fired).
_CHANGING = (
    "EXISTS (SELECT 1 FROM expected_verdicts e WHERE e.campaign_id = conversions.campaign_id"
    " AND e.type IS conversions.type AND e.status = conversions.status"
    " AND e.payout IS conversions.payout"
    " AND e.fired = EXISTS (SELECT 1 FROM decision_rows f WHERE f.conversion_id = conversions.id"
    " AND f.postback_config_id = e.postback_config_id AND f.verdict = 'fired')"
    " AND (e.verdict = 'fired' AND NOT e.fired OR e.verdict IS NOT (SELECT d.verdict"
    " FROM decision_rows d WHERE d.conversion_id = conversions.id"
    " AND d.postback_config_id = e.postback_config_id ORDER BY d.id DESC LIMIT 1)))"
)


def conversion_page(
    conn: sqlite3.Connection,
    chosen: Chosen,
    *,
    after: int,
    limit: int,
    changing: bool = False,
) -> list[tuple[Any, ...]]:
    """One page of the chosen conversions in id order, above ``after``; with ``changing``,
    only those that an expected verdict (``expected_verdicts``) would change. Plain rows in
    the field order of ``Conversion`` (``Conversion(*row)``): a page is large, and a
    re-evaluation makes the record of few of them."""
    where, values = chosen.where()
    if changing:
        where.append(_CHANGING)
    cursor = conn.execute(
        f"SELECT {_CONVERSION_COLUMNS} FROM conversions WHERE id > ? AND {' AND '.join(where)}"
        " ORDER BY id LIMIT ?",
        (after, *values, limit),
    )
    cursor.row_factory = None
    return cursor.fetchall()


class PastDecision(NamedTuple):
    """What a conversion's decisions for one postback config say so far: the latest one
    (its id, verdict, and whether its reasons end with the ``marked`` sentence) and when the
    config last fired (None: never)."""

    decision_id: int
    verdict: str
    marked: bool
    fired_at: float | None


def _in(ids: Sequence[Any]) -> str:
    return f"({', '.join('?' * len(ids))})"


class PastDecisions:
    """The past decisions of a page of conversions, kept as the rows read (a page holds
    thousands): ``get`` makes the record of one. ``fired`` holds, for each config that fired
    for a conversion, the row of its last fired decision; ``fired_at`` reads its time (the
    event's when the row stores none), which only a decision that may change needs."""

    def __init__(
        self,
        latest: dict[tuple[int, int], tuple[Any, ...]],
        fired: dict[tuple[int, int], tuple[Any, ...]],
        conn: sqlite3.Connection | None = None,
    ):
        self.latest = latest
        self.fired = fired
        self._conn = conn

    def fired_at(self, key: tuple[int, int]) -> float | None:
        """When the config last fired for the conversion (None: never)."""
        row = self.fired.get(key)
        if row is None:
            return None
        if row[5] is not None or self._conn is None:
            return None if row[5] is None else float(row[5])
        found = self._conn.execute(
            "SELECT at FROM conversion_event_rows WHERE id = ?", (row[6],)
        ).fetchone()
        return None if found is None else float(found[0])

    def get(self, key: tuple[int, int]) -> PastDecision | None:
        row = self.latest.get(key)
        if row is None:
            return None
        return PastDecision(row[2], row[3], bool(row[4]), self.fired_at(key))


def past_decisions(
    conn: sqlite3.Connection, conversion_ids: Sequence[int], marked: str
) -> PastDecisions:
    """For each (conversion id, postback config id) of these conversions (ids ascending),
    what its decisions say so far; ``marked``: a sentence whose place at the end of the
    reasons is worth knowing. One statement, in the ``decisions_conversion`` index's order
    (by conversion, then by id: a decision is inserted with its event, so by event too).
    Ids close together (one campaign's page) are read as a range, one seek instead of one per
    id; the few other rows in it are skipped."""
    if not conversion_ids:
        return PastDecisions({}, {}, conn)
    # The stored table (schema step 8), not its view: a skipped row alone reads its reasons'
    # text; the time (stored NULL when it is its event's) is read later, and only for a
    # decision that may change (``PastDecisions.fired_at``).
    columns = (
        "conversion_id, postback_config_id, id, verdict,"
        " verdict = 'skipped' AND"
        " (SELECT substr(value, -length(?)) FROM texts WHERE id = reasons_text) = ?,"
        " at, event_id"
    )
    end = json.dumps(marked) + "]"  # the reasons end with "<marked>"]
    low, high = conversion_ids[0], conversion_ids[-1]
    if high - low < 2 * len(conversion_ids):
        where, values = "conversion_id BETWEEN ? AND ?", [low, high]
    else:
        where, values = f"conversion_id IN {_in(conversion_ids)}", list(conversion_ids)
    cursor = conn.execute(
        f"SELECT {columns} FROM decision_rows WHERE {where} ORDER BY conversion_id, id",
        [end, end, *values],
    )
    cursor.row_factory = None
    rows = cursor.fetchall()
    if high - low + 1 != len(conversion_ids):  # a range of exactly these ids has no other
        wanted = set(conversion_ids)
        rows = [row for row in rows if row[0] in wanted]
    # By event: of a config's rows for a conversion, the last one is the latest (and the
    # last fired one, when it last fired).
    latest = {(row[0], row[1]): row for row in rows}
    fired = {(row[0], row[1]): row for row in rows if row[3] == "fired"}
    return PastDecisions(latest, fired, conn)


def decision_reasons(conn: sqlite3.Connection, decision_ids: Sequence[int]) -> dict[int, list[str]]:
    """The reasons of these decisions, by id."""
    if not decision_ids:
        return {}
    rows = conn.execute(
        f"SELECT id, reasons FROM decisions WHERE id IN {_in(decision_ids)}", list(decision_ids)
    )
    return {row[0]: json.loads(row[1]) for row in rows}


def clicks_by_id(conn: sqlite3.Connection, click_ids: Sequence[str]) -> dict[str, Click]:
    """The clicks of these ids, by id."""
    if not click_ids:
        return {}
    matching = f"IN {_in(click_ids)}"
    rows = conn.execute(
        f"SELECT * FROM clicks WHERE {by_click_id(matching=matching)}", [*click_ids, *click_ids]
    )
    return {row["id"]: record_of(row, Click) for row in rows}


def delivered_at(
    conn: sqlite3.Connection, conversion_ids: Sequence[int]
) -> dict[tuple[int, int], float]:
    """For each (conversion id, postback config id) of these conversions that was ever
    delivered, when it last was."""
    if not conversion_ids:
        return {}
    cursor = conn.execute(
        "SELECT k.conversion_id, k.postback_config_id, max(d.sent_at) FROM decisions k"
        " JOIN deliveries d ON d.decision_id = k.id"
        f" WHERE k.conversion_id IN {_in(conversion_ids)} AND d.outcome = 'delivered'"
        " GROUP BY k.conversion_id, k.postback_config_id",
        list(conversion_ids),
    )
    cursor.row_factory = None
    return {(conversion, config): float(at) for conversion, config, at in cursor}
