"""How quickly a support person finds rows and hands them over: the list filters (docs/support.md)
timed from the request to the rows through the JSON API of ``postwatch serve``, and exports
(rows per second, the listener's peak memory) on a given database. Prints the figures; it is
not a test.

    .venv/bin/python bench/find.py --db FILE [--make N] [--repeat 5] [--export conversions]

``--make N`` first fills FILE, when it does not exist, with N synthetic conversions written
straight into the tables (a click, its click and postback requests, the conversion and its
event, two decisions and the attempts of the fired one; one in fifty failed, one in a hundred
with an update), over two campaigns on two traffic sources, through the store's own inserts.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))

from run import (  # noqa: E402
    configured_db,
    free_port,
    memory_kib,
    postwatch_command,
    read_only,
    server,
)

from store import events  # noqa: E402
from store.records import Conversion, InboundRequest  # noqa: E402

CONFIG = """
conversion_types = ["Lead", "Deposit"]

[[offer_sources]]
name = "AffNet"

[[traffic_sources]]
name = "PropellerAds"
postback_url = "http://127.0.0.1:9/sink/propeller?visitor_id={external_id}&payout={payout}"

[[traffic_sources]]
name = "Taboola"
click_id_param = "tblci"
postback_url = "http://127.0.0.1:9/sink/taboola?c={external_id}"

[[campaigns]]
key = "casino-fr"
name = "Casino FR"
traffic_source = "PropellerAds"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "all events"

[[campaigns.postbacks]]
name = "paid deposits"
conditional = true
types = ["Deposit"]
statuses = ["approved"]

[[campaigns]]
key = "sports-de"
name = "Sports DE"
traffic_source = "Taboola"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "all events"

[[campaigns.postbacks]]
name = "paid deposits"
conditional = true
types = ["Deposit"]
statuses = ["approved"]
"""

STATUSES = ("approved", "pending", "declined")


def make(path: Path, count: int) -> None:
    """Fill a new database with ``count`` synthetic conversions (see the module docstring)."""
    conn = configured_db(path, CONFIG)
    configs = {
        (row["campaign_id"], row["name"]): row["id"]
        for row in conn.execute("SELECT id, campaign_id, name FROM postback_configs")
    }
    campaigns = [row[0] for row in conn.execute("SELECT id FROM campaigns ORDER BY id")]
    start = time.time() - count * 2
    with conn:
        for n in range(count):
            _one(conn, n, start + n * 2, campaigns[0 if n % 5 else 1], configs)
    conn.close()


def _one(conn: Any, n: int, at: float, campaign: int, configs: dict[tuple[int, str], int]) -> None:
    click, external, txid = f"c{n:09d}", f"ext-{n}", f"tx-{n}"
    type_ = "Deposit" if n % 3 else "Lead"
    status = STATUSES[(n // 3) % 3]
    query = f"clickid={click}&type={type_}&status={status}&sum=10&txid={txid}"
    arrived = InboundRequest(
        at,
        "click",
        "GET",
        f"/click/c{campaign}",
        f"ref_id={external}&sub1=banner-{n % 50}",
        "",
        "127.0.0.1",
        {},
    )
    inbound_click = events.insert_inbound(
        conn, arrived, outcome="accepted", reason="", http_status=200, click_id=click
    )
    conn.execute(
        "INSERT INTO clicks (id, campaign_id, external_id, params, created_at, inbound_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (click, campaign, external, json.dumps({"sub1": f"banner-{n % 50}"}), at, inbound_click),
    )
    conversion = conn.execute(
        "INSERT INTO conversions (click_id, campaign_id, type, status, raw_status, payout,"
        " currency, txid, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 10, 'USD', ?, ?, ?)",
        (click, campaign, type_, status, status, txid, at + 1, at + 1),
    ).lastrowid
    updates = 2 if n % 100 == 0 else 1
    for e in range(updates):
        shown = status if e == updates - 1 else "pending"
        arrived = InboundRequest(
            at + 1 + e,
            "postback",
            "GET",
            "/postback",
            query.replace(f"status={status}", f"status={shown}"),
            "",
            "127.0.0.1",
            {},
        )
        inbound = events.insert_inbound(
            conn,
            arrived,
            outcome="accepted",
            reason="",
            http_status=200,
            click_id=click,
            conversion_id=conversion,
        )
        state = Conversion(conversion, click, campaign, type_, shown, shown, 10, "USD", txid)
        change = "updated" if e else "created"
        event = events.insert_event(conn, state, inbound, change, at + 1 + e)
        paid = type_ == "Deposit" and shown == "approved"
        for name, fired in (("all events", e == 0), ("paid deposits", paid)):
            verdict = "fired" if fired else ("skipped" if name == "all events" else "filtered")
            decision = events.insert_decision(
                conn,
                conversion_id=conversion,
                event_id=event,
                config_id=configs[(campaign, name)],
                postback=name,
                kind="s2s",
                verdict=verdict,
                reasons=[],
                warnings=[],
                at=at + 1 + e,
            )
            if fired:
                outcome = "failed" if n % 50 == 0 else "delivered"
                conn.execute(
                    "INSERT INTO deliveries (decision_id, attempt, method, url, outcome, due_at,"
                    " sent_at, duration_ms, http_status, response) VALUES (?, 1, 'GET', ?, ?, ?,"
                    " ?, 3, ?, 'OK')",
                    (
                        decision,
                        f"http://127.0.0.1:9/sink/propeller?visitor_id={external}&payout=10",
                        outcome,
                        at + 1 + e,
                        at + 1 + e,
                        500 if outcome == "failed" else 200,
                    ),
                )


def sample(path: Path) -> dict[str, str]:
    """Values to filter by, taken from the database: the newest, a middle and the oldest."""
    conn = read_only(path)
    conn.row_factory = sqlite3.Row
    newest = conn.execute("SELECT * FROM conversions ORDER BY id DESC LIMIT 1").fetchone()
    oldest = conn.execute("SELECT * FROM conversions ORDER BY id LIMIT 1").fetchone()
    click = conn.execute("SELECT * FROM clicks WHERE id = ?", (oldest["click_id"],)).fetchone()
    middle = conn.execute(
        "SELECT created_at FROM conversions WHERE id >= (SELECT max(id) / 2 FROM conversions)"
        " ORDER BY id LIMIT 1"
    ).fetchone()
    campaign = conn.execute(
        "SELECT k.key, k.name, t.name AS traffic_source FROM campaigns k"
        " JOIN traffic_sources t ON t.id = k.traffic_source_id ORDER BY k.id DESC LIMIT 1"
    ).fetchone()
    postback = conn.execute(  # a conditional config: its fired decisions are the fewer
        "SELECT name FROM postback_configs ORDER BY conditional DESC, id DESC LIMIT 1"
    ).fetchone()
    conn.close()
    return {
        "new_txid": str(newest["txid"]),
        "old_txid": str(oldest["txid"]),
        "old_external": str(click["external_id"]),
        "middle": str(middle[0]),
        "campaign": str(campaign["key"]),
        "campaign_name": str(campaign["name"]),
        "traffic_source": str(campaign["traffic_source"]),
        "postback": str(postback["name"]),
    }


def cases(values: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """(list path, filter) pairs a support person would type."""
    since = values["middle"]
    return [
        ("/api/conversions", {}),
        ("/api/conversions", {"campaign": values["campaign"]}),
        ("/api/conversions", {"campaign": values["campaign_name"], "status": "approved"}),
        ("/api/conversions", {"traffic_source": values["traffic_source"]}),
        ("/api/conversions", {"type": "Lead"}),
        ("/api/conversions", {"status": "declined"}),
        ("/api/conversions", {"verdict": "filtered"}),
        ("/api/conversions", {"postback": values["postback"], "verdict": "fired"}),
        ("/api/conversions", {"outcome": "failed"}),
        ("/api/conversions", {"q": values["old_txid"]}),
        ("/api/conversions", {"q": values["old_external"]}),
        ("/api/conversions", {"q": "banner-7"}),
        ("/api/conversions", {"since": since, "type": "Deposit"}),
        ("/api/conversions", {"until": since, "status": "approved"}),
        ("/api/deliveries", {}),
        ("/api/deliveries", {"outcome": "failed"}),
        ("/api/deliveries", {"campaign": values["campaign"]}),
        ("/api/deliveries", {"postback": values["postback"]}),
        ("/api/deliveries", {"q": values["old_txid"]}),
        ("/api/deliveries", {"since": since, "outcome": "failed"}),
        ("/api/inbound", {}),
        ("/api/inbound", {"endpoint": "click", "campaign": values["campaign"]}),
        ("/api/inbound", {"type": "Lead"}),
        ("/api/inbound", {"type": "Deposit", "verdict": "fired"}),
        ("/api/inbound", {"q": values["old_external"]}),
        ("/api/inbound", {"q": "status=declined"}),
        ("/api/inbound", {"since": since, "until": since}),
    ]


def get(url: str) -> tuple[float, int]:
    """Seconds from the request to the whole answer, and the rows in it."""
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as answer:
        rows = json.loads(answer.read())
    return time.perf_counter() - began, len(rows)


def stream(url: str) -> Iterator[bytes]:
    with urllib.request.urlopen(url, timeout=600) as answer:
        while chunk := answer.read(64 * 1024):
            yield chunk


def export(base: str, kind: str, pid: int) -> dict[str, Any]:
    """Stream one export: rows, seconds, rows per second, the listener's memory."""
    before = memory_kib(pid)
    began = time.perf_counter()
    lines = 0
    size = 0
    for chunk in stream(f"{base}/api/export/{kind}?format=csv"):
        lines += chunk.count(b"\n")
        size += len(chunk)
    took = time.perf_counter() - began
    after = memory_kib(pid)
    rows = max(0, lines - 1)
    return {
        "kind": kind,
        "rows": rows,
        "mb": round(size / 1e6, 1),
        "seconds": round(took, 2),
        "rows_per_s": round(rows / took) if took else 0,
        "rss_before_mib": round(before.get("VmRSS", 0) / 1024, 1),
        "peak_rss_mib": round(after.get("VmHWM", 0) / 1024, 1),
        "peak_before_mib": round(before.get("VmHWM", 0) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="The database to run on.")
    parser.add_argument("--make", type=int, help="Fill a new database with N conversions.")
    parser.add_argument("--repeat", type=int, default=5, help="Requests per filter (median).")
    parser.add_argument(
        "--export", default="conversions,deliveries", help="Kinds to export (comma-separated)."
    )
    opts = parser.parse_args()
    if opts.make and not opts.db.exists():
        began = time.perf_counter()
        make(opts.db, opts.make)
        took = time.perf_counter() - began
        print(f"filled {opts.db} with {opts.make} conversions in {took:.1f} s")
    values = sample(opts.db)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryDirectory() as scratch,
        server(postwatch_command(opts.db, None, port), port, Path(scratch) / "serve.log") as proc,
    ):
        print(f"\n{'list':18} {'filter':58} {'first ms':>9} {'median ms':>10} {'rows':>5}")
        for path, params in cases(values):
            url = f"{base}{path}?" + urllib.parse.urlencode({**params, "limit": "100"})
            first, rows = get(url)
            times = [get(url)[0] for _ in range(opts.repeat)]
            shown = urllib.parse.urlencode(params)[:58] or "(none)"
            print(
                f"{path:18} {shown:58} {first * 1000:9.1f} "
                f"{statistics.median(times) * 1000:10.1f} {rows:5d}"
            )
        print()
        for kind in opts.export.split(","):
            print(json.dumps(export(base, kind.strip(), proc.pid)))


if __name__ == "__main__":
    main()
