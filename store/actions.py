"""The schema of the support actions (SPEC §2a): replay, a conversion entered by hand and a
test postback. One migration step, appended to ``store.schema.MIGRATIONS`` as its last."""

from __future__ import annotations

# A replayed request names the inbound row it replays; a conversion entered by hand is marked
# ``manual``; a test postback is kept in its own table, so that it is never a delivery of a
# conversion: the outbox, the totals and Live never read it.
MIGRATION_ACT1 = """
ALTER TABLE inbound ADD COLUMN replay_of INTEGER;
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
"""
