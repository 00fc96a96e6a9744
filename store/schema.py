"""The database schema, as migrations stepped by ``PRAGMA user_version``.

Each entry of ``MIGRATIONS`` moves the schema one version up; a new database runs them all,
an older one runs the ones it has not seen. Never edit a released step: add one.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# A step is a script run in one transaction, or a function of the connection and the step's
# number that runs its own transactions (a large copy in batches) and sets the version last.
Migration = str | Callable[[sqlite3.Connection, int], None]

# -- step 8: interned texts -------------------------------------------------------------------
#
# A million postbacks repeat the same few texts: how a request was parsed, its path and
# address, the reasons of a decision, its postback config's name, an event's status. Each
# distinct text is stored once in ``texts`` and the rows keep its id; a decision's time, when
# it is its event's (nearly always), is not stored again. The tables move to stored tables and
# a view with the old name rebuilds every column, so readers keep ``SELECT ... FROM inbound``
# (``decisions``, ``conversion_events``) and get the same columns with the same values; the
# indexes move with the tables and serve the views' queries. Writers write the stored tables
# (store/events.py); the views also take UPDATE and DELETE (INSTEAD OF triggers), so plain
# SQL on them keeps working, but refuse INSERT (its row id would not come back).


@dataclass(frozen=True)
class Compacted:
    """How one table is stored since step 8."""

    stored: str  # the stored table; the old name is a view
    interned: tuple[str, ...]  # columns whose text is in ``texts``, the row keeping its id
    # columns stored NULL when they equal this expression of the stored row ({row}: its name)
    rebuilt: dict[str, str] = field(default_factory=dict)


COMPACTED: dict[str, Compacted] = {
    "conversion_events": Compacted(
        "conversion_event_rows", ("change", "type", "status", "raw_status")
    ),
    "inbound": Compacted(
        "inbound_rows",
        ("method", "path", "remote", "headers", "warnings", "parsed"),
        # a request that made or changed a conversion (stored without a reason) names the
        # conversion's click (since step 14)
        {
            "click_id": "(SELECT click_id FROM conversions"
            " WHERE conversions.id = {row}.conversion_id AND {row}.reason = '')"
        },
    ),
    "decisions": Compacted(
        "decision_rows",
        ("postback", "kind", "reasons", "warnings"),
        {"at": "(SELECT at FROM conversion_events WHERE conversion_events.id = {row}.event_id)"},
    ),
}
STORED: dict[str, str] = {view: table.stored for view, table in COMPACTED.items()}
COPY_BATCH = 20_000  # rows a transaction of the step-8 copy moves
BLOCK_BITS = 15  # a block of rows is 32,768 ids (``in_blocks``; steps 17 and 18 write 15 as is)


def in_blocks(
    table: str, key: str, column: str, alias: str | None = None, matching: str = "= ?"
) -> str:
    """SQL: "the row's ``column`` is the parameter" (or ``matching``, say ``IN ids``), for a
    column indexed by the row's block of ids first (``key >> BLOCK_BITS``, then ``column``:
    schema steps 17 to 19). A random value (a txid, an external id, a network's click id)
    then goes into the newest block, a small part of the index that every new row shares,
    not at a random place in all of it; a look-up reads each block, from the oldest row's to
    the newest's. ``alias`` is the table's name in the query, when it has one."""
    row = alias or table
    return (
        f"{row}.{key} >> {BLOCK_BITS} IN (WITH RECURSIVE block(n) AS"
        f" (SELECT (SELECT min({key}) FROM {table}) >> {BLOCK_BITS} UNION ALL SELECT n + 1"
        f" FROM block WHERE n < (SELECT max({key}) FROM {table}) >> {BLOCK_BITS})"
        f" SELECT n FROM block) AND {row}.{column} {matching}"
    )


BY_TXID = in_blocks("conversions", "id", "txid")  # (on ``conversions`` with no alias)


def by_external_id(alias: str = "clicks") -> str:
    """SQL: "the click's external id is the parameter", read through ``clicks_external_id``
    (schema step 18), a partial index of the clicks that have one."""
    return f"{in_blocks('clicks', 'seq', 'external_id', alias)} AND {alias}.external_id != ''"


# A click recorded at postwatch's /click has its request (``inbound_id``) and postwatch's own
# id, which begins with its time; a click attached to a postback that named an id postwatch
# never saw (``unknown_clicks = "attach:…"``) has neither. Their ids are in two indexes (schema
# step 19): own ids in ``clicks_id``, unique, where each new one lands at the right edge; a
# network's random ids in ``clicks_attached``, by blocks of sequence numbers.


def own_click(alias: str = "clicks", matching: str = "= ?") -> str:
    """SQL: "the click is one postwatch recorded and its id is the parameter" (or
    ``matching``: ``IN ids``, ``= i.click_id``), read through ``clicks_id``."""
    return f"{alias}.inbound_id IS NOT NULL AND {alias}.id {matching}"


def attached_click(alias: str = "clicks", matching: str = "= ?") -> str:
    """SQL: "the click is an attached one and its id is the parameter" (or ``matching``),
    read through ``clicks_attached``, a block at a time."""
    return f"{alias}.inbound_id IS NULL AND {in_blocks('clicks', 'seq', 'id', alias, matching)}"


def by_click_id(alias: str = "clicks", matching: str = "= ?") -> str:
    """SQL: "the click's id is the parameter" (or ``matching``), through both indexes of click
    ids. A parameter in ``matching`` is bound twice, once for each index: pass its value
    twice."""
    return f"({own_click(alias, matching)} OR {attached_click(alias, matching)})"


def text_column(column: str) -> str:
    """The stored column that holds the id of an interned column's text."""
    return f"{column}_text"


def _names(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]


def _stored_table_sql(conn: sqlite3.Connection, view: str) -> str:
    """The stored table of ``view``: the old table's columns in their order, each interned one
    replaced by the id of its text."""
    table = COMPACTED[view]
    references = {
        row[3]: f" REFERENCES {row[2]}({row[4]})"
        for row in conn.execute(f"PRAGMA foreign_key_list({view})")
    }
    parts = []
    for _, name, type_, notnull, default, pk in conn.execute(f"PRAGMA table_info({view})"):
        if name in table.interned:
            part = f"{text_column(name)} INTEGER REFERENCES texts(id)"
        else:
            part = f"{name} {type_}" + (" PRIMARY KEY" if pk else "") + references.get(name, "")
            if default is not None:
                part += f" DEFAULT {default}"
        if notnull and name not in table.rebuilt:
            part += " NOT NULL"
        parts.append(part)
    return f"CREATE TABLE IF NOT EXISTS {table.stored} (\n    " + ",\n    ".join(parts) + "\n)"


def _id_of(value: str) -> str:
    return f"(SELECT id FROM texts WHERE value = {value})"


def _copy_batch(conn: sqlite3.Connection, view: str) -> int:
    """Move the next rows of the old table ``view`` into its stored table; how many moved."""
    table = COMPACTED[view]
    names = _names(conn, view)
    (last,) = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table.stored}").fetchone()
    page = f"FROM {view} WHERE id > ? ORDER BY id LIMIT {COPY_BATCH}"
    for column in table.interned:
        conn.execute(f"INSERT OR IGNORE INTO texts (value) SELECT {column} {page}", (last,))
    targets, values = [], []
    for name in names:
        if name in table.interned:
            targets.append(text_column(name))
            values.append(_id_of(f"{view}.{name}"))
        else:
            targets.append(name)
            rebuilt = table.rebuilt.get(name)
            values.append(
                name if rebuilt is None else f"nullif({name}, {rebuilt.format(row=view)})"
            )
    cursor = conn.execute(
        f"INSERT INTO {table.stored} ({', '.join(targets)}) SELECT {', '.join(values)} {page}",
        (last,),
    )
    return cursor.rowcount


def _view_sql(view: str, names: list[str]) -> str:
    """The view that shows the stored table as the old table ``view`` with columns ``names``."""
    table = COMPACTED[view]
    shown = []
    for name in names:
        rebuilt = table.rebuilt.get(name)
        if name in table.interned:
            shown.append(
                f"(SELECT value FROM texts WHERE texts.id = {table.stored}.{text_column(name)})"
                f" AS {name}"
            )
        elif rebuilt is not None:
            shown.append(f"coalesce({name}, {rebuilt.format(row=table.stored)}) AS {name}")
        else:
            shown.append(name)
    return f"CREATE VIEW {view} AS SELECT {', '.join(shown)} FROM {table.stored}"


def _view_triggers_sql(view: str, names: list[str]) -> list[str]:
    """UPDATE and DELETE on the view change the stored row (texts interned on the way); an
    INSERT is refused, because its row id would not come back to the caller."""
    table = COMPACTED[view]
    sets = ", ".join(
        f"{text_column(n)} = {_id_of(f'NEW.{n}')}" if n in table.interned else f"{n} = NEW.{n}"
        for n in names
    )
    texts = ", ".join(f"(NEW.{n})" for n in table.interned)
    return [
        f"CREATE TRIGGER {view}_update INSTEAD OF UPDATE ON {view} BEGIN"
        f" INSERT OR IGNORE INTO texts (value) VALUES {texts};"
        f" UPDATE {table.stored} SET {sets} WHERE id = OLD.id; END",
        f"CREATE TRIGGER {view}_delete INSTEAD OF DELETE ON {view} BEGIN"
        f" DELETE FROM {table.stored} WHERE id = OLD.id; END",
        f"CREATE TRIGGER {view}_insert INSTEAD OF INSERT ON {view} BEGIN SELECT"
        f" RAISE(ABORT, 'insert {view} rows into {table.stored}, through store/events.py'); END",
    ]


def _moved_schema_sql(conn: sqlite3.Connection, view: str) -> list[str]:
    """The old table's indexes and triggers, made on its stored table."""
    rows = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND tbl_name = ?"
        " AND sql IS NOT NULL",
        (view,),
    )
    on = re.compile(rf"\bON\s+\"?{view}\"?(?=\s*\(|\s+(?:BEGIN|FOR|WHEN)\b)", re.I)
    return [on.sub(f"ON {STORED[view]}", str(row[0]), count=1) for row in rows]


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _begin_step(conn: sqlite3.Connection, step: int) -> bool:
    """Begin a write transaction of ``step``; False (and no transaction) when another process
    has finished the step meanwhile."""
    conn.execute("BEGIN IMMEDIATE")
    if _version(conn) == step - 1:
        return True
    conn.execute("ROLLBACK")
    return False


@contextmanager
def _rolled_back_on_error(conn: sqlite3.Connection) -> Iterator[None]:
    """A step's transactions: whatever stops it midway is rolled back, then raised again."""
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _make_view(conn: sqlite3.Connection, view: str, names: list[str]) -> None:
    """The view ``view`` over its stored table, with columns ``names``, and its triggers."""
    conn.execute(_view_sql(view, names))
    for trigger in _view_triggers_sql(view, names):
        conn.execute(trigger)


def intern_texts(conn: sqlite3.Connection, step: int) -> None:
    """Step 8: move the compacted tables to stored tables with interned texts, in batches of
    ``COPY_BATCH`` rows (each its own transaction, so the WAL stays small and a killed
    migration goes on where it stopped), then swap the views in, in one transaction. Two
    processes migrating at once share the work: each batch starts after the last row copied,
    inside its write transaction."""
    with _rolled_back_on_error(conn):
        if not _begin_step(conn, step):
            return
        conn.execute(
            "CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE)"
        )
        for view in COMPACTED:
            conn.execute(_stored_table_sql(conn, view))
        conn.execute("COMMIT")
        for view in COMPACTED:
            moved = COPY_BATCH
            while moved == COPY_BATCH:
                if not _begin_step(conn, step):
                    return
                moved = _copy_batch(conn, view)
                conn.execute("COMMIT")
        if not _begin_step(conn, step):
            return
        for view in COMPACTED:
            while _copy_batch(conn, view) == COPY_BATCH:
                pass  # rows written since (none, unless an older postwatch still runs)
            names, moved_schema = _names(conn, view), _moved_schema_sql(conn, view)
            conn.execute(f"DROP TABLE {view}")
            for sql in moved_schema:
                conn.execute(sql)
            _make_view(conn, view, names)
        conn.execute(f"PRAGMA user_version = {step}")
        conn.execute("COMMIT")


def widened(view: str, column: str, declaration: str) -> Callable[[sqlite3.Connection, int], None]:
    """A step that adds ``column`` to a table stored since step 8: to its stored table, then
    its view and the view's triggers are made again with the new column last."""
    return _remade(view, f"ADD COLUMN {column} {declaration}", column)


def remade(view: str) -> Callable[[sqlite3.Connection, int], None]:
    """A step that makes the view of a table stored since step 8, and its triggers, again as
    ``COMPACTED`` declares them now (say, a column it rebuilds)."""
    return _remade(view)


def _remade(
    view: str, alter: str | None = None, column: str | None = None
) -> Callable[[sqlite3.Connection, int], None]:
    def step(conn: sqlite3.Connection, number: int) -> None:
        with _rolled_back_on_error(conn):
            if not _begin_step(conn, number):
                return
            names = _names(conn, view) + ([column] if column else [])
            if alter is not None:
                conn.execute(f"ALTER TABLE {STORED[view]} {alter}")
            for trigger in ("update", "delete", "insert"):
                conn.execute(f"DROP TRIGGER IF EXISTS {view}_{trigger}")
            conn.execute(f"DROP VIEW {view}")
            _make_view(conn, view, names)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")

    return step


MIGRATIONS: list[Migration] = [
    # 1: the whole first schema.
    """
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL            -- JSON
    );
    CREATE TABLE conversion_types (
        name TEXT PRIMARY KEY
    );
    CREATE TABLE offer_sources (
        id             INTEGER PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        default_status TEXT NOT NULL DEFAULT 'pending',
        duplicates     TEXT NOT NULL DEFAULT 'update',
        status_aliases TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE traffic_sources (
        id             INTEGER PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        click_id_param TEXT NOT NULL DEFAULT 'ref_id',
        postback_url   TEXT NOT NULL DEFAULT '',
        success_body   TEXT NOT NULL DEFAULT '',
        failure_body   TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE campaigns (
        id                INTEGER PRIMARY KEY,
        key               TEXT NOT NULL UNIQUE,
        name              TEXT NOT NULL,
        traffic_source_id INTEGER NOT NULL REFERENCES traffic_sources(id),
        offer_source_id   INTEGER NOT NULL REFERENCES offer_sources(id),
        offer_url         TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE postback_configs (
        id               INTEGER PRIMARY KEY,
        campaign_id      INTEGER NOT NULL REFERENCES campaigns(id),
        position         INTEGER NOT NULL DEFAULT 0,
        name             TEXT NOT NULL,
        kind             TEXT NOT NULL DEFAULT 's2s',
        url              TEXT NOT NULL DEFAULT '',
        method           TEXT NOT NULL DEFAULT 'GET',
        body             TEXT NOT NULL DEFAULT '',
        enabled          INTEGER NOT NULL DEFAULT 1,
        conditional      INTEGER NOT NULL DEFAULT 0,
        types            TEXT NOT NULL DEFAULT '[]',
        statuses         TEXT NOT NULL DEFAULT '[]',
        min_payout       REAL,
        refire_on_update INTEGER NOT NULL DEFAULT 0,
        platform         TEXT NOT NULL DEFAULT '{}',   -- platform settings (kind != s2s)
        UNIQUE (campaign_id, name)
    );
    CREATE TABLE sinks (
        name       TEXT PRIMARY KEY,
        status     INTEGER NOT NULL DEFAULT 200,
        body       TEXT NOT NULL DEFAULT 'OK',
        delay_ms   INTEGER NOT NULL DEFAULT 0,
        fail_ratio REAL NOT NULL DEFAULT 0
    );
    CREATE TABLE clicks (
        id          TEXT PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        external_id TEXT NOT NULL DEFAULT '',
        params      TEXT NOT NULL DEFAULT '{}',
        created_at  REAL NOT NULL,
        inbound_id  INTEGER
    );
    CREATE INDEX clicks_external_id ON clicks(external_id) WHERE external_id != '';
    CREATE TABLE inbound (
        id          INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        endpoint    TEXT NOT NULL,            -- click | postback
        method      TEXT NOT NULL,
        path        TEXT NOT NULL,
        query       TEXT NOT NULL,
        body        TEXT NOT NULL,
        remote      TEXT NOT NULL,
        headers     TEXT NOT NULL,            -- JSON
        outcome     TEXT NOT NULL,            -- accepted | rejected
        reason      TEXT NOT NULL DEFAULT '',
        http_status INTEGER NOT NULL,
        warnings    TEXT NOT NULL DEFAULT '[]',
        parsed      TEXT NOT NULL DEFAULT '{}',  -- how it was read: aliases, status mapping
        click_id    TEXT,
        conversion_id INTEGER
    );
    CREATE INDEX inbound_click ON inbound(click_id);
    CREATE TABLE conversions (
        id          INTEGER PRIMARY KEY,
        click_id    TEXT NOT NULL REFERENCES clicks(id),
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        type        TEXT,
        status      TEXT NOT NULL,
        raw_status  TEXT,
        payout      REAL,
        currency    TEXT NOT NULL,
        txid        TEXT,
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL
    );
    CREATE INDEX conversions_click ON conversions(click_id);
    CREATE INDEX conversions_txid ON conversions(txid) WHERE txid IS NOT NULL;
    CREATE INDEX conversions_campaign ON conversions(campaign_id, id);
    CREATE TABLE conversion_events (          -- the status history: one row per event
        id            INTEGER PRIMARY KEY,
        conversion_id INTEGER NOT NULL REFERENCES conversions(id),
        inbound_id    INTEGER NOT NULL REFERENCES inbound(id),
        at            REAL NOT NULL,
        change        TEXT NOT NULL,          -- created | updated
        type          TEXT,
        status        TEXT NOT NULL,
        raw_status    TEXT,
        payout        REAL
    );
    CREATE INDEX conversion_events_conversion ON conversion_events(conversion_id);
    CREATE TABLE decisions (
        id                 INTEGER PRIMARY KEY,
        conversion_id      INTEGER NOT NULL REFERENCES conversions(id),
        event_id           INTEGER NOT NULL REFERENCES conversion_events(id),
        postback_config_id INTEGER NOT NULL REFERENCES postback_configs(id),
        postback           TEXT NOT NULL,
        kind               TEXT NOT NULL,
        verdict            TEXT NOT NULL,     -- fired | filtered | skipped
        reasons            TEXT NOT NULL,     -- JSON list of sentences
        warnings           TEXT NOT NULL,     -- JSON list of sentences
        at                 REAL NOT NULL
    );
    CREATE INDEX decisions_conversion ON decisions(conversion_id);
    CREATE INDEX decisions_fired ON decisions(conversion_id, postback_config_id)
        WHERE verdict = 'fired';
    CREATE TABLE deliveries (                 -- one row per attempt
        id           INTEGER PRIMARY KEY,
        decision_id  INTEGER NOT NULL REFERENCES decisions(id),
        attempt      INTEGER NOT NULL,
        resend_of    INTEGER REFERENCES deliveries(id),
        method       TEXT NOT NULL,
        url          TEXT NOT NULL,
        headers      TEXT NOT NULL DEFAULT '{}',
        body         TEXT NOT NULL DEFAULT '',
        outcome      TEXT NOT NULL,           -- pending | retrying | delivered | failed
        due_at       REAL NOT NULL,
        sent_at      REAL,
        duration_ms  REAL,
        http_status  INTEGER,
        response     TEXT,
        error        TEXT
    );
    CREATE INDEX deliveries_decision ON deliveries(decision_id);
    CREATE INDEX deliveries_pending ON deliveries(due_at) WHERE outcome = 'pending';
    CREATE TABLE sink_records (
        id          INTEGER PRIMARY KEY,
        sink        TEXT NOT NULL,
        received_at REAL NOT NULL,
        method      TEXT NOT NULL,
        path        TEXT NOT NULL,
        query       TEXT NOT NULL,
        headers     TEXT NOT NULL,
        body        TEXT NOT NULL,
        http_status INTEGER NOT NULL
    );
    CREATE INDEX sink_records_sink ON sink_records(sink, id);
    """,
    # 2: ad-platform kinds. A sink can answer like an ad platform; a decision keeps the request
    # it built but did not send (say, no access token), secrets masked, for the trace.
    """
    ALTER TABLE sinks ADD COLUMN mimic TEXT NOT NULL DEFAULT '';     -- '' or a platform kind
    ALTER TABLE sinks ADD COLUMN error INTEGER NOT NULL DEFAULT 0;   -- answer the platform's error
    ALTER TABLE decisions ADD COLUMN request TEXT;                   -- JSON, or NULL
    """,
    # 3: a configuration version, bumped by every change to the configuration from any
    # connection or process, so that writers can cache the configuration and notice changes.
    "CREATE TABLE config_version (n INTEGER NOT NULL);\n"
    "INSERT INTO config_version VALUES (0);\n"
    + "".join(
        f"CREATE TRIGGER {table}_{op.lower()}_config AFTER {op} ON {table}"
        " BEGIN UPDATE config_version SET n = n + 1; END;\n"
        for table in (  # frozen: the configuration tables as of version 3
            "settings",
            "conversion_types",
            "offer_sources",
            "traffic_sources",
            "campaigns",
            "postback_configs",
            "sinks",
        )
        for op in ("INSERT", "UPDATE", "DELETE")
    ),
    # 4: a sink can misbehave like a broken target (hang, reset, trickle, close) and send a
    # Retry-After header, so that retries and timeouts can be shown and tested for real.
    """
    ALTER TABLE sinks ADD COLUMN fault TEXT NOT NULL DEFAULT '';
    ALTER TABLE sinks ADD COLUMN retry_after INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: the outbox lease. One database has one delivering listener (README, "Delivery"): the
    # process that holds this row sends; it renews the heartbeat about every second, and another
    # process takes the row over once the heartbeat is stale or its holder is gone.
    """
    CREATE TABLE outbox_lease (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        holder    TEXT NOT NULL,            -- one listener's own id
        pid       INTEGER NOT NULL,
        host      TEXT NOT NULL,            -- the machine's host name
        heartbeat REAL NOT NULL             -- Unix time of the last renewal
    );
    """,
    # 6: the list filters read indexes that grow at their right edge (a low-cardinality key,
    # then the rising id): a postback adds two cheap index entries instead of a filter
    # scanning the table until enough rows match.
    """
    CREATE INDEX inbound_outcome ON inbound(outcome, id);
    CREATE INDEX inbound_endpoint ON inbound(endpoint, id);
    CREATE INDEX deliveries_outcome ON deliveries(outcome, id);
    """,
    # 7: the header totals as counters (store/totals.py), counted once here; from now on the
    # writer adds what each batch inserted and pruning subtracts what it deletes. ``last_*``
    # is the highest id counted so far.
    """
    CREATE TABLE totals (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        clicks          INTEGER NOT NULL,
        conversions     INTEGER NOT NULL,
        inbound         INTEGER NOT NULL,
        rejected        INTEGER NOT NULL,
        postbacks       INTEGER NOT NULL,
        last_click      INTEGER NOT NULL,
        last_conversion INTEGER NOT NULL,
        last_inbound    INTEGER NOT NULL
    );
    INSERT INTO totals SELECT 1,
        (SELECT count(*) FROM clicks),
        (SELECT count(*) FROM conversions),
        (SELECT count(*) FROM inbound),
        (SELECT count(*) FROM inbound WHERE outcome = 'rejected'),
        (SELECT count(*) FROM inbound WHERE endpoint = 'postback'),
        (SELECT coalesce(max(rowid), 0) FROM clicks),
        (SELECT coalesce(max(id), 0) FROM conversions),
        (SELECT coalesce(max(id), 0) FROM inbound);
    """,
    # 8: each distinct text of inbound requests and decisions stored once (see above).
    intern_texts,
    # 9: the list filters (store/read/filters.py). Each index grows at its right edge (a
    # low-cardinality key then the rising id, or a time), so a write adds cheap entries; the
    # postback config's name is matched by the id of its interned text.
    """
    CREATE INDEX conversions_type ON conversions(type, id);
    CREATE INDEX conversions_status ON conversions(status, id);
    CREATE INDEX conversions_created ON conversions(created_at);
    CREATE INDEX decisions_verdict ON decision_rows(verdict, conversion_id);
    CREATE INDEX decisions_postback ON decision_rows(postback_text, conversion_id);
    CREATE INDEX inbound_received ON inbound_rows(received_at);
    CREATE INDEX deliveries_due ON deliveries(due_at);
    """,
    # 10: a replayed request names the row it replays (``replay_of``), on the stored table and
    # its view.
    widened("inbound", "replay_of", "INTEGER"),
    # 11: a conversion entered by hand is marked ``manual``; a test postback is kept in its own
    # table, so that it is never a delivery of a conversion: the outbox, the totals and Live
    # never read it.
    """
    ALTER TABLE conversions ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE test_postbacks (
        id                 INTEGER PRIMARY KEY,
        postback_config_id INTEGER NOT NULL,
        postback           TEXT NOT NULL,
        campaign           TEXT NOT NULL,
        kind               TEXT NOT NULL,
        macro_values       TEXT NOT NULL,    -- JSON: the values the request was built from
        method             TEXT NOT NULL,
        url                TEXT NOT NULL,
        headers            TEXT NOT NULL,    -- JSON
        body               TEXT NOT NULL,
        outcome            TEXT NOT NULL,    -- delivered | failed
        sent_at            REAL NOT NULL,
        duration_ms        REAL NOT NULL,
        http_status        INTEGER,
        response           TEXT,
        error              TEXT
    );
    """,
    # 12: smaller filter indexes (store/read/filters.py). The time indexes of conversions and
    # inbound go: their time grows with the id, and a time's id bound is found by bisection
    # over the id (store/timeline.py). A filter on one of a few fixed values (a conversion's
    # status, a decision's verdict, a request's endpoint) reads a partial index of that
    # value's ids, which holds no copy of the value; fired decisions are already in
    # decisions_fired. Rejected requests have a partial index; accepted ones, nearly all of
    # them, are found by a newest-first walk that checks each row.
    """
    DROP INDEX IF EXISTS conversions_created;
    DROP INDEX IF EXISTS inbound_received;
    DROP INDEX IF EXISTS conversions_status;
    DROP INDEX IF EXISTS decisions_verdict;
    DROP INDEX IF EXISTS inbound_outcome;
    DROP INDEX IF EXISTS inbound_endpoint;
    """
    + "".join(
        f"CREATE INDEX conversions_{status} ON conversions(id) WHERE status = '{status}';\n"
        for status in ("approved", "pending", "declined", "other")  # frozen: Status as of 12
    )
    + "".join(
        f"CREATE INDEX decisions_{verdict} ON decision_rows(conversion_id)"
        f" WHERE verdict = '{verdict}';\n"
        for verdict in ("filtered", "skipped")  # fired: decisions_fired(conversion_id, ...)
    )
    + "".join(
        f"CREATE INDEX inbound_{endpoint}s ON inbound_rows(id) WHERE endpoint = '{endpoint}';\n"
        for endpoint in ("click", "postback")
    )
    + "CREATE INDEX inbound_rejected ON inbound_rows(id) WHERE outcome = 'rejected';\n",
    # 13: a request's click id is indexed only where nothing else links the request: a click's
    # request is the click's ``inbound_id``, and a conversion's requests its events'; the
    # requests stored with a reason (refused ones, ignored duplicates) are found by the click
    # id they name (store/read/links.py). The random click id of every postback no longer
    # lands in a large index.
    """
    DROP INDEX IF EXISTS inbound_click;
    CREATE INDEX inbound_unlinked ON inbound_rows(click_id) WHERE reason != '';
    """,
    # 14: a request that made or changed a conversion is stored without its click id, which
    # is the conversion's: the view rebuilds it (``COMPACTED``). Older rows keep theirs.
    remade("inbound"),
    # 15: a conversion finds its click by the click's sequence number, not its id. Click ids
    # are random (a network's, or postwatch's own), so an index of them takes each new
    # conversion at a random place, and a page of it is written for every postback; the
    # sequence number grows as clicks arrive, and a conversion comes soon after its click, so
    # ``conversions_click_seq`` grows at its right edge. The clicks table is made again with
    # ``seq`` as its INTEGER PRIMARY KEY, the row ids it had (a VACUUM keeps those); a
    # conversion inserted without ``click_seq`` (plain SQL) gets it from its trigger.
    """
    CREATE TABLE clicks_by_seq (
        seq         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        external_id TEXT NOT NULL DEFAULT '',
        params      TEXT NOT NULL DEFAULT '{}',
        created_at  REAL NOT NULL,
        inbound_id  INTEGER
    );
    INSERT INTO clicks_by_seq (seq, id, campaign_id, external_id, params, created_at, inbound_id)
        SELECT rowid, id, campaign_id, external_id, params, created_at, inbound_id FROM clicks
        ORDER BY rowid;
    DROP TABLE clicks;
    ALTER TABLE clicks_by_seq RENAME TO clicks;
    CREATE INDEX clicks_external_id ON clicks(external_id) WHERE external_id != '';
    ALTER TABLE conversions ADD COLUMN click_seq INTEGER;
    UPDATE conversions SET click_seq = (SELECT seq FROM clicks WHERE clicks.id = click_id);
    DROP INDEX conversions_click;
    CREATE INDEX conversions_click_seq ON conversions(click_seq);
    CREATE TRIGGER conversions_click_seq AFTER INSERT ON conversions
        WHEN NEW.click_seq IS NULL BEGIN
            UPDATE conversions SET click_seq = (SELECT seq FROM clicks WHERE id = NEW.click_id)
            WHERE id = NEW.id;
        END;
    """,
    # 16: a request lists its replays (the rows whose ``replay_of`` names it); the partial
    # index holds only replays, so a request that is not one costs it nothing.
    "CREATE INDEX inbound_replays ON inbound_rows(replay_of) WHERE replay_of IS NOT NULL;\n",
    # 17: the txid index is keyed by the conversion's block of 32,768 ids first. Networks'
    # txids are random, so an index of them alone takes each new conversion at a random
    # place, and a page of it is written for every postback; the newest block is a small
    # part of the index that every new conversion shares. A postback finds the conversion
    # it repeats among its click's (``conversions_click_seq``), a look-up by txid alone reads
    # each block (``BY_TXID``).
    """
    DROP INDEX conversions_txid;
    CREATE INDEX conversions_txid ON conversions(id >> 15, txid) WHERE txid IS NOT NULL;
    """,
    # 18: the same for a click's external id, the traffic source's (random) click id, which
    # only a person looks up (a trace, a list's free text): keyed by the click's block of
    # sequence numbers first, then the external id.
    """
    DROP INDEX clicks_external_id;
    CREATE INDEX clicks_external_id ON clicks(seq >> 15, external_id) WHERE external_id != '';
    """,
    # 19: the same for the ids of clicks attached to postbacks (``attached_click``), which are
    # a network's and random; postwatch's own ids, which begin with their time, keep a unique
    # index of their own (``own_click``). A postback that names an id never seen is told so
    # by the writer's filter of attached ids (store/attached.py), not by a look-up in every
    # block. The table is made again: its id is no longer UNIQUE across both kinds, and its
    # sequence numbers are AUTOINCREMENT, never given twice, so that the filter, which reads
    # the clicks added since the number it saw last, misses none. The trigger of plain-SQL
    # conversions finds an attached click by a walk of its index (a trigger takes no WITH).
    """
    CREATE TABLE clicks_step19 (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
        external_id TEXT NOT NULL DEFAULT '',
        params      TEXT NOT NULL DEFAULT '{}',
        created_at  REAL NOT NULL,
        inbound_id  INTEGER
    );
    INSERT INTO clicks_step19 (seq, id, campaign_id, external_id, params, created_at, inbound_id)
        SELECT seq, id, campaign_id, external_id, params, created_at, inbound_id FROM clicks
        ORDER BY seq;
    DROP TRIGGER conversions_click_seq;
    DROP TABLE clicks;
    ALTER TABLE clicks_step19 RENAME TO clicks;
    CREATE UNIQUE INDEX clicks_id ON clicks(id) WHERE inbound_id IS NOT NULL;
    CREATE INDEX clicks_attached ON clicks(seq >> 15, id) WHERE inbound_id IS NULL;
    CREATE INDEX clicks_external_id ON clicks(seq >> 15, external_id) WHERE external_id != '';
    CREATE TRIGGER conversions_click_seq AFTER INSERT ON conversions
        WHEN NEW.click_seq IS NULL BEGIN
            UPDATE conversions SET click_seq = coalesce(
                (SELECT seq FROM clicks WHERE id = NEW.click_id AND inbound_id IS NOT NULL),
                (SELECT max(seq) FROM clicks WHERE id = NEW.click_id AND inbound_id IS NULL))
            WHERE id = NEW.id;
        END;
    """,
]


def migrate(conn: sqlite3.Connection, up_to: int | None = None) -> int:
    """Bring the schema up to the newest version (or to version ``up_to``); return the version
    it had before."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"this database has schema version {version}, newer than this postwatch "
            f"knows ({len(MIGRATIONS)}): upgrade postwatch"
        )
    for step, migration in enumerate(MIGRATIONS[version:up_to], start=version + 1):
        if callable(migration):
            migration(conn, step)
        else:
            conn.executescript(f"BEGIN;\n{migration}\nPRAGMA user_version = {step};\nCOMMIT;")
    return int(version)
