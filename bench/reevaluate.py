"""The dry run of a re-evaluation: one campaign over N conversions (default 100,000).

Fills a fresh database by direct SQL inserts (a click, a conversion, its event and one
decision per postback config each, as the pipeline leaves them), then times the dry run the
API and the CLI run after two rule changes, and prints the figures (SPEC §2a asks for at most
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

from listener.reevaluate import Selection, reevaluate
from store import workspace
from store.config import parse
from store.db import connect
from store.schema import migrate

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
    workspace.apply_workspace(conn, parse(CONFIG.replace("STATUSES", '"approved"')))
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
    conn.execute(
        "INSERT INTO conversion_events (id, conversion_id, inbound_id, at, change, type,"
        " status, raw_status, payout) SELECT id, id, 0, created_at, 'created', type, status,"
        " raw_status, payout FROM conversions"
    )
    # As the pipeline leaves them: a conversion's decisions side by side, in config order.
    fired = json.dumps(["not conditional: fires for every conversion"])
    conn.execute(
        "INSERT INTO decisions (conversion_id, event_id, postback_config_id, postback, kind,"
        " verdict, reasons, warnings, at)"
        " SELECT e.id, e.id, p.id, p.name, 's2s',"
        " CASE WHEN p.name = 'all events' THEN 'fired' ELSE 'filtered' END,"
        " CASE WHEN p.name = 'all events' THEN ? ELSE"
        " json_array('status ''' || e.status || ''' is not one of: approved') END, '[]', e.at"
        " FROM conversion_events e JOIN postback_configs p ON p.campaign_id = ?"
        " ORDER BY e.id, p.position",
        (fired, campaign_id),
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
        conn = connect(Path(folder) / "bench.db")
        migrate(conn)
        started = time.perf_counter()
        fill(conn, count)
        print(f"filled {count:,} conversions in {time.perf_counter() - started:.1f} s")
        print(dry_run(conn, '"approved", "pending"'))
        print(dry_run(conn, '"approved", "pending", "declined"'))
        conn.close()


if __name__ == "__main__":
    main()
