"""The dry run of a re-evaluation: one campaign over N conversions (default 100,000).

Fills a fresh database by direct SQL inserts (a click, a conversion, its event and one
decision per postback config each, as the pipeline leaves them), then times the dry run the
API and the CLI run after two rule changes, and prints the figures (the target is at most
1 s at 100,000): one that flips one conversion in a hundred (a typical rule change: every
conversion is decided, few requests are built), and one that flips every conversion (each
flipped decision's request is built, as the real run would send it).

    python bench/reevaluate.py [--conversions N]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from run import configured_db

from listener.reevaluate import Selection, reevaluate
from store import events, workspace
from store.config import parse

CONFIG = """
conversion_types = ["Lead", "Deposit"]
[[offer_sources]]
name = "AffNet"
[[traffic_sources]]
name = "Receiver"
postback_url = "http://127.0.0.1:9/pb?c={clickid}"
[[campaigns]]
key = "bench"
traffic_source = "Receiver"
offer_source = "AffNet"
[[campaigns.postbacks]]
name = "all events"
[[campaigns.postbacks]]
name = "paid deposits"
conditional = true
types = ["Deposit"]
statuses = [STATUSES]
"""


def fill(conn: sqlite3.Connection, count: int) -> None:
    """``count`` deposits of campaign ``bench`` (one in a hundred pending, the rest
    declined): ``all events`` fired, ``paid deposits`` filtered (it wants approved)."""
    campaign_id = conn.execute("SELECT id FROM campaigns WHERE key = 'bench'").fetchone()[0]
    at = time.time() - 3600
    conn.executemany(
        "INSERT INTO clicks (id, campaign_id, external_id, params, created_at)"
        " VALUES (?, ?, '', '{}', ?)",
        ((f"c{n}", campaign_id, at) for n in range(count)),
    )
    # One in a hundred pending, the rest declined.
    conn.executemany(
        "INSERT INTO conversions (id, click_id, campaign_id, type, status, raw_status, payout,"
        " currency, txid, created_at, updated_at) VALUES (?, ?, ?, 'Deposit', ?, ?, 10, 'USD',"
        " NULL, ?, ?)",
        (
            (n + 1, f"c{n}", campaign_id, s, s, at, at)
            for n in range(count)
            for s in ("pending" if n % 100 == 0 else "declined",)
        ),
    )
    # The stored tables behind the views (store/schema.py step 8), texts interned once.
    text = {value: events.text_id(conn, value) for value in ("created", "Deposit", "s2s", "[]")}
    status = {value: events.text_id(conn, value) for value in ("pending", "declined")}
    names = {value: events.text_id(conn, value) for value in ("all events", "paid deposits")}
    fired = events.text_id(conn, json.dumps(["not conditional: fires for every conversion"]))
    filtered = {
        value: events.text_id(conn, json.dumps([f"status '{value}' is not one of: approved"]))
        for value in status
    }
    conn.execute(
        "INSERT INTO conversion_event_rows (id, conversion_id, inbound_id, at, change_text,"
        " type_text, status_text, raw_status_text, payout) SELECT id, id, 0, created_at, ?, ?,"
        " CASE status WHEN 'pending' THEN ? ELSE ? END,"
        " CASE status WHEN 'pending' THEN ? ELSE ? END, payout FROM conversions",
        (text["created"], text["Deposit"], *status.values(), *status.values()),
    )
    # As the pipeline leaves them: a conversion's decisions side by side, in config order,
    # their time the event's (stored NULL).
    conn.execute(
        "INSERT INTO decision_rows (conversion_id, event_id, postback_config_id, postback_text,"
        " kind_text, verdict, reasons_text, warnings_text, at)"
        " SELECT c.id, c.id, p.id, CASE WHEN p.name = 'all events' THEN ? ELSE ? END, ?,"
        " CASE WHEN p.name = 'all events' THEN 'fired' ELSE 'filtered' END,"
        " CASE WHEN p.name = 'all events' THEN ? WHEN c.status = 'pending' THEN ? ELSE ? END,"
        " ?, NULL FROM conversions c JOIN postback_configs p ON p.campaign_id = ?"
        " ORDER BY c.id, p.position",
        (
            *names.values(),
            text["s2s"],
            fired,
            *filtered.values(),
            text["[]"],
            campaign_id,
        ),
    )
    conn.commit()


def dry_run(conn: sqlite3.Connection, statuses: str) -> str:
    """Set ``paid deposits``' statuses, time a dry run of the campaign, and say the figure."""
    workspace.apply_workspace(conn, parse(CONFIG.replace("STATUSES", statuses)))
    conn.commit()
    started, cpu = time.perf_counter(), time.process_time()
    found = reevaluate(conn, Selection(campaign="bench"), at=time.time(), dry_run=True)
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    # The CPU time too: on a shared machine the wall time also counts other processes' turns.
    return (
        f"dry-run re-evaluation of one campaign over {found.conversions:,} conversions: "
        f"{took:.3f} s ({cpu:.3f} s CPU), {len(found.changes):,} decisions would change"
        " (target <= 1 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversions", type=int, default=100_000)
    count = parser.parse_args().conversions
    with tempfile.TemporaryDirectory() as folder:
        conn = configured_db(Path(folder) / "bench.db", CONFIG.replace("STATUSES", '"approved"'))
        started = time.perf_counter()
        fill(conn, count)
        print(f"filled {count:,} conversions in {time.perf_counter() - started:.1f} s")
        print(dry_run(conn, '"approved", "pending"'))
        print(dry_run(conn, '"approved", "pending", "declined"'))
        conn.close()


if __name__ == "__main__":
    main()
