"""Exports (docs/support.md) through the real listener and database: for each kind and both
formats the exported rows equal the database's, with a filter; the CLI writes what the API
streams; and streaming a 100,000-row table holds one page, not the table, in memory."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from listener.cli import cli
from store import db, events, reads
from store.read.export import COLUMNS, KINDS, PAGE
from store.read.model import AttemptRow, ConversionValues, DecisionRow, InboundView
from store.records import InboundRequest
from tests.helpers import BASE_CONFIG, Listener

SECOND_CAMPAIGN = (
    BASE_CONFIG
    + """
[[campaigns]]
key = "sports-de"
name = "Sports DE"
traffic_source = "Propeller"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "every sports event"
"""
)

RECORDS = {
    "conversions": ConversionValues,
    "decisions": DecisionRow,
    "deliveries": AttemptRow,
    "inbound": InboundView,
}
TIMES = {
    kind: {item.name for item in fields(record) if item.metadata.get("time")}
    for kind, record in RECORDS.items()
}
JSON_TEXT = {"headers", "reasons", "warnings", "parsed"}

# Each kind's rows straight from the tables, newest first, for one campaign key.
RAW = {
    "conversions": "SELECT c.*, k.key AS campaign FROM conversions c"
    " JOIN campaigns k ON k.id = c.campaign_id WHERE k.key = ? ORDER BY c.id DESC",
    "decisions": "SELECT d.*, c.click_id, k.key AS campaign FROM decisions d"
    " JOIN conversions c ON c.id = d.conversion_id JOIN campaigns k ON k.id = c.campaign_id"
    " WHERE k.key = ? ORDER BY d.conversion_id DESC, d.id",
    "deliveries": "SELECT a.*, d.postback, d.kind, d.verdict, d.reasons, d.conversion_id,"
    " c.click_id, c.type, c.status, k.key AS campaign FROM deliveries a"
    " JOIN decisions d ON d.id = a.decision_id JOIN conversions c ON c.id = d.conversion_id"
    " JOIN campaigns k ON k.id = c.campaign_id WHERE k.key = ? ORDER BY a.id DESC",
    "inbound": "SELECT i.* FROM inbound i JOIN clicks l ON l.id = i.click_id"
    " JOIN campaigns k ON k.id = l.campaign_id WHERE k.key = ? ORDER BY i.id DESC",
}

BOOLEANS = frozenset({"manual"})  # flags: true or false in the export


@pytest.fixture
async def traffic(pw: Listener) -> None:
    await pw.configure(SECOND_CAMPAIGN)
    casino = await pw.click(ref_id="ext-1", sub1='quote " and, comma')
    sports = await pw.click("sports-de", ref_id="ext-2")
    await pw.postback(clickid=casino, type="Deposit", status="pending", sum="10.5", txid="A1")
    await pw.postback(clickid=casino, type="Deposit", status="approved", sum="10.5", txid="A1")
    await pw.postback(clickid=casino, type="Lead", txid="A2")
    await pw.postback(clickid=sports, type="Lead", status="approved", txid="B1")
    await pw.delivered(casino)
    await pw.delivered(sports)


@pytest.fixture
def conn(pw: Listener, traffic: None) -> Iterator[sqlite3.Connection]:
    connection = db.connect(pw.store.path)
    yield connection
    connection.close()


def same(kind: str, name: str, raw: Any, exported: Any, shape: str) -> bool:
    """Whether an exported value is the database's (CSV: its text)."""
    if name in TIMES[kind]:
        if raw is None:
            return exported in ("", None)
        return abs(reads.unix(exported) - raw) < 0.001  # type: ignore[operator]
    if isinstance(raw, int) and name in BOOLEANS:  # SQLite keeps a flag as 0 or 1
        return exported == ("true" if raw else "false") if shape == "csv" else exported == bool(raw)
    if name in JSON_TEXT:
        held = json.loads(exported) if shape == "csv" else exported
        return bool(held == json.loads(raw))
    if shape == "csv":
        return exported == ("" if raw is None else str(raw))
    return bool(exported == raw)


def parsed(text: str, shape: str) -> list[dict[str, Any]]:
    if shape == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("shape", ["csv", "jsonl"])
@pytest.mark.parametrize("kind", KINDS)
async def test_exported_rows_equal_the_database_rows(
    pw: Listener, conn: sqlite3.Connection, kind: str, shape: str
) -> None:
    status, text = await pw.get(f"/api/export/{kind}", format=shape, campaign="casino-fr")
    assert status == 200, text
    rows = parsed(text, shape)
    raw = conn.execute(RAW[kind], ("casino-fr",)).fetchall()
    assert raw and len(rows) == len(raw)
    others = conn.execute(RAW[kind], ("sports-de",)).fetchall()
    assert others  # the filter left rows out
    if shape == "csv":
        assert text.splitlines()[0] == ",".join(COLUMNS[kind])
    for row, stored in zip(rows, raw, strict=True):
        assert list(row) == list(COLUMNS[kind])
        differ = [
            name for name in COLUMNS[kind] if not same(kind, name, stored[name], row[name], shape)
        ]
        assert differ == [], (row, dict(stored))


async def test_a_decisions_export_keeps_the_decisions_a_verdict_names(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    status, text = await pw.get("/api/export/decisions", format="jsonl", verdict="filtered")
    assert status == 200
    rows = parsed(text, "jsonl")
    stored = conn.execute(
        "SELECT id FROM decisions WHERE verdict = 'filtered' ORDER BY conversion_id DESC, id"
    ).fetchall()
    assert [row["id"] for row in rows] == [row[0] for row in stored] and rows


async def test_the_cli_writes_what_the_api_streams(
    pw: Listener, traffic: None, tmp_path: Path
) -> None:
    for kind in KINDS:
        _, streamed = await pw.get(f"/api/export/{kind}", format="jsonl", type="Deposit")
        out = tmp_path / f"{kind}.jsonl"
        result = CliRunner().invoke(
            cli,
            [
                "export",
                kind,
                "--format",
                "jsonl",
                "--type",
                "Deposit",
                "-o",
                str(out),
                "--db",
                str(pw.store.path),
            ],
        )
        assert result.exit_code == 0, result.output
        assert out.read_text(encoding="utf-8") == streamed and streamed
    result = CliRunner().invoke(
        cli, ["export", "conversions", "--limit", "2", "--db", str(pw.store.path)]
    )
    assert result.exit_code == 0
    _, streamed = await pw.get("/api/export/conversions", limit="2")
    assert result.output == streamed and len(result.output.splitlines()) == 3


async def test_a_bad_export_is_refused_before_any_row(pw: Listener, traffic: None) -> None:
    for path, params, words in [
        ("/api/export/clicks", {}, ["'clicks'", "conversions, decisions, deliveries, inbound"]),
        ("/api/export/inbound", {"format": "xml"}, ["format", "'xml'", "csv, jsonl"]),
        ("/api/export/deliveries", {"status": "paid"}, ["status", "'paid'", "approved"]),
        ("/api/export/conversions", {"campaign": "nope"}, ["'nope'", "casino-fr"]),
    ]:
        status, body = await pw.get(path, **params)
        assert status == 400, body
        assert all(word in body["error"] for word in words), body
    result = CliRunner().invoke(
        cli, ["export", "inbound", "--since", "soon", "--db", str(pw.store.path)]
    )
    assert result.exit_code == 2 and "since 'soon' is not a time" in result.output


# -- constant memory ------------------------------------------------------------------------

ROWS = 100_000


def fill_inbound(path: Path, rows: int) -> None:
    """``rows`` inbound requests written straight through the store's insert (an export
    reads the table, not how rows came to be in it)."""
    connection = db.connect(path)
    now = time.time()
    headers = {"User-Agent": "x"}
    connection.execute("BEGIN")
    for n in range(rows):
        query = f"clickid=c{n}&type=Deposit&status=approved&sum=10&txid=T{n}"
        request = InboundRequest(
            now - rows + n, "postback", "GET", "/postback", query, "", "127.0.0.1", headers
        )
        events.insert_inbound(
            connection, request, outcome="accepted", reason="", http_status=200, click_id=f"c{n}"
        )
    connection.execute("COMMIT")
    connection.close()


def resident() -> int:
    """This process's resident memory, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def streamed_growth(pw: Listener, limit: int | None) -> tuple[int, int]:
    """Stream an inbound export (the listener runs in this process) and read it chunk by
    chunk: the rows received and the most the resident memory grew meanwhile."""
    params = {"format": "csv"} | ({"limit": str(limit)} if limit else {})
    lines = 0
    before = peak = resident()
    async with pw.session.get(pw.base + "/api/export/inbound", params=params) as answer:
        assert answer.status == 200
        async for chunk in answer.content.iter_chunked(64 * 1024):
            lines += chunk.count(b"\n")
            peak = max(peak, resident())
    return lines - 1, peak - before


async def test_an_export_streams_in_constant_memory(pw: Listener) -> None:
    fill_inbound(pw.store.path, ROWS)
    small_rows, small_growth = await streamed_growth(pw, 10 * PAGE)
    rows, growth = await streamed_growth(pw, None)
    assert (small_rows, rows) == (10 * PAGE, ROWS)
    # the export is ~18 MB of CSV from ~200 MB of row objects: holding them would show
    assert growth < 24 * 1024 * 1024, growth
    assert growth < small_growth + 12 * 1024 * 1024, (growth, small_growth)
