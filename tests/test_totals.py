"""The header's totals are kept by the database (schema step 6), not counted at start: they
follow every insert and delete, start from the rows an older database already holds, and
the dashboard reads the kept row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store import db, views
from store.schema import MIGRATIONS, migrate
from tests.helpers import Listener


def counted(conn: sqlite3.Connection) -> tuple[int, int, int, int, int]:
    """The totals counted from scratch, as the header showed them before step 6."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM clicks), (SELECT count(*) FROM conversions),"
        " (SELECT count(*) FROM inbound),"
        " (SELECT count(*) FROM inbound WHERE outcome = 'rejected'),"
        " (SELECT count(*) FROM inbound WHERE endpoint = 'postback')"
    ).fetchone()
    return (row[0], row[1], row[2], row[3], row[4])


def kept(conn: sqlite3.Connection) -> tuple[int, int, int, int, int]:
    t = views.totals(conn)
    return (t.clicks, t.conversions, t.inbound, t.rejected, t.postbacks)


async def test_totals_follow_traffic_and_deletes(pw: Listener) -> None:
    click = await pw.click(ref_id="ext-1")
    await pw.postback(clickid=click, type="Deposit", status="pending", txid="a")
    await pw.postback(clickid=click, type="Deposit", status="approved", txid="a")
    await pw.postback(clickid=click, type="Lead", txid="b")
    await pw.postback(clickid="nobody", type="Deposit")  # rejected: unknown click
    await pw.get("/wrong-path")
    conn = db.connect(pw.store.path)
    try:
        assert kept(conn) == counted(conn) == (1, 2, 6, 2, 4)
        # pruning deletes old rows: the totals go down with them
        conn.execute("DELETE FROM inbound WHERE outcome = 'rejected'")
        conn.execute("DELETE FROM conversions WHERE txid = 'b'")
        assert kept(conn) == counted(conn) == (1, 1, 4, 0, 3)
    finally:
        conn.close()


async def test_the_dashboard_reads_the_kept_row(pw: Listener) -> None:
    await pw.click()
    conn = db.connect(pw.store.path)
    try:
        conn.execute("UPDATE totals SET clicks = 1000000, conversions = 500000")
        totals = views.totals(conn)
        assert (totals.clicks, totals.conversions) == (1000000, 500000)
        assert views.count_since(conn, None) == totals
    finally:
        conn.close()


def test_an_older_database_starts_from_its_rows(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "old.db")
    try:
        for step, script in enumerate(MIGRATIONS[:5], start=1):  # a version 5 database
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {step};\nCOMMIT;")
        conn.executescript(
            """
            INSERT INTO traffic_sources (name) VALUES ('t');
            INSERT INTO offer_sources (name) VALUES ('o');
            INSERT INTO campaigns (key, name, traffic_source_id, offer_source_id)
                VALUES ('c', 'C', 1, 1);
            INSERT INTO clicks (id, campaign_id, created_at) VALUES ('k1', 1, 0), ('k2', 1, 0);
            INSERT INTO inbound (received_at, endpoint, method, path, query, body, remote,
                headers, outcome, http_status) VALUES
                (0, 'postback', 'GET', '/postback', '', '', '', '{}', 'accepted', 200),
                (0, 'postback', 'GET', '/postback', '', '', '', '{}', 'rejected', 404),
                (0, 'click', 'GET', '/click/c', '', '', '', '{}', 'accepted', 200);
            INSERT INTO conversions (click_id, campaign_id, status, currency, created_at,
                updated_at) VALUES ('k1', 1, 'approved', 'USD', 0, 0);
            """
        )
        assert migrate(conn) == 5
        assert kept(conn) == counted(conn) == (2, 1, 3, 1, 2)
    finally:
        conn.close()
