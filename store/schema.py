"""The database schema, as migrations stepped by ``PRAGMA user_version``.

Each entry of ``MIGRATIONS`` moves the schema one version up; a new database runs them all,
an older one runs the ones it has not seen. Never edit a released step: add one.
"""

from __future__ import annotations

import sqlite3

from store.actions import MIGRATION_ACT1

MIGRATIONS: list[str] = [
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
    # 5: the outbox lease. One database has one delivering listener (SPEC §7): the process
    # that holds this row sends; it renews the heartbeat about every second, and another
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
    # step 8: replay_of on inbound, manual on conversions, the test_postbacks table
    # (store/actions.py)
    MIGRATION_ACT1,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to the newest version; return the version it had before."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"this database has schema version {version}, newer than this postwatch "
            f"knows ({len(MIGRATIONS)}): upgrade postwatch"
        )
    for step, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {step};\nCOMMIT;")
    return int(version)
