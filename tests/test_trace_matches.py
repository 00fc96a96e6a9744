"""Trace matches (docs/support.md): an external id or a transaction id on several clicks traces the
newest and lists them all, and a transaction id's trace focuses on its conversion, in the
JSON API, the plain ``postwatch trace`` output and the Markdown ticket."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

from listener.cli import cli
from tests.helpers import BASE_CONFIG, Listener

SECOND_CAMPAIGN = (
    BASE_CONFIG
    + """
[[campaigns]]
key = "sports-de"
name = "Sports DE"
traffic_source = "Propeller"
offer_source = "AffNet"
"""
)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


async def test_an_external_id_on_two_clicks_traces_the_newest_and_lists_both(
    pw: Listener,
) -> None:
    await pw.configure(SECOND_CAMPAIGN)
    older = await pw.click(ref_id="dup-ext")
    newer = await pw.click("sports-de", ref_id="dup-ext")
    await pw.postback(clickid=older, type="Lead", txid="L1")
    trace = await pw.trace("dup-ext")
    assert trace["click"]["id"] == newer
    assert [(m["click_id"], m["campaign"]) for m in trace["matches"]] == [
        (newer, "sports-de"),
        (older, "casino-fr"),
    ]
    assert all(m["created_at"].endswith("Z") for m in trace["matches"])
    assert trace["matches"][0]["created_at"] == trace["click"]["created_at"]
    assert trace["traced"] == "dup-ext" and trace["focus"] is None

    code, out = run("trace", "dup-ext", "--db", str(pw.store.path))
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "2 clicks match 'dup-ext' — showing the newest"
    assert lines[1].startswith(f"  click {newer}: campaign 'sports-de', ")
    assert lines[1].endswith("(shown)")
    assert lines[2].startswith(f"  click {older}: campaign 'casino-fr', ")
    assert f"click {newer}: campaign 'sports-de'" in lines[3]

    status, ticket = await pw.get("/api/trace/dup-ext", format="markdown")
    assert status == 200
    assert "2 clicks match `dup-ext` — showing the newest:" in ticket
    assert f"- `{older}`: campaign `casino-fr`" in ticket


async def test_a_click_id_matches_one_click_and_says_nothing_more(pw: Listener) -> None:
    clickid = await pw.click(ref_id="only-one")
    trace = await pw.trace(clickid)
    assert [m["click_id"] for m in trace["matches"]] == [clickid]
    assert trace["focus"] is None
    by_external = await pw.trace("only-one")
    assert [m["click_id"] for m in by_external["matches"]] == [clickid]
    code, out = run("trace", "only-one", "--db", str(pw.store.path))
    assert code == 0
    assert out.splitlines()[0].endswith(
        f"click {clickid}: campaign 'casino-fr', external id only-one"
    )
    assert "match" not in out


async def conversions_of_one_click(pw: Listener, count: int) -> tuple[str, list[int]]:
    clickid = await pw.click(ref_id="ext-many")
    for n in range(count):
        status, _ = await pw.postback(clickid=clickid, type="Lead", status="approved", txid=f"T{n}")
        assert status == 200
    await pw.delivered(clickid)
    trace = await pw.trace(clickid)
    return clickid, [conversion["id"] for conversion in trace["conversions"]]


async def test_a_txid_trace_focuses_on_its_conversion(pw: Listener) -> None:
    clickid, ids = await conversions_of_one_click(pw, 4)
    trace = await pw.trace("T2")
    assert trace["click"]["id"] == clickid
    assert trace["focus"] == ids[2]
    assert [c["id"] for c in trace["conversions"]] == ids  # the JSON keeps the whole click

    code, out = run("trace", "T2", "--db", str(pw.store.path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        f"transaction id 'T2' is conversion #{ids[2]}; the click's 3 other conversions are "
        f"not shown (postwatch trace {clickid} shows them)"
    )
    shown = [line for line in lines if line.lstrip().startswith("conversion #")]
    assert shown == [
        f"    conversion #{ids[2]} created: type Lead, status approved"
        " (sent as 'approved'), no payout, txid T2"
    ]
    assert "txid=T1" not in out and "txid=T2" in out
    assert [line for line in lines if "click " + clickid in line]  # the click is still told

    code, ticket = run("trace", "T2", "--markdown", "--db", str(pw.store.path))
    assert code == 0
    assert f"Transaction id `T2` is conversion #{ids[2]}." in ticket
    assert f"## Conversion #{ids[2]}:" in ticket
    assert f"## Conversion #{ids[1]}:" not in ticket and "txid=T3" not in ticket


async def test_a_txid_on_two_clicks_traces_the_newest_conversions_click(pw: Listener) -> None:
    first = await pw.click(ref_id="a")
    second = await pw.click(ref_id="b")
    await pw.postback(clickid=second, type="Lead", txid="SHARED")
    await pw.postback(clickid=first, type="Lead", txid="SHARED")
    trace = await pw.trace("SHARED")
    assert trace["click"]["id"] == first  # the newest conversion with the txid is first's
    assert [m["click_id"] for m in trace["matches"]] == [first, second]
    (focused,) = [c for c in trace["conversions"] if c["id"] == trace["focus"]]
    assert focused["txid"] == "SHARED"
    code, out = run("trace", "SHARED", "--db", str(pw.store.path))
    assert code == 0
    assert out.splitlines()[0] == "2 clicks match 'SHARED' — showing the newest"
    assert out.splitlines()[3].startswith(f"transaction id 'SHARED' is conversion #{focused['id']}")


async def test_a_trace_with_matches_reads_back_from_its_json(pw: Listener) -> None:
    from store import reads

    first = await pw.click(ref_id="dup")
    await pw.click(ref_id="dup")
    await pw.postback(clickid=first, type="Lead", txid="X")
    data: Any = await pw.trace("dup")
    assert reads.as_json(reads.trace_from_json(data)) == data
    data = await pw.trace("X")
    assert data["focus"] is not None
    assert reads.as_json(reads.trace_from_json(data)) == data


async def test_another_of_the_clicks_a_txid_matches_is_traced_with_its_own_conversion(
    pw: Listener,
) -> None:
    from listener.story import story
    from store import db
    from store.read import queries

    first = await pw.click(ref_id="a")
    second = await pw.click(ref_id="b")
    await pw.postback(clickid=second, type="Lead", txid="SHARED")
    await pw.postback(clickid=first, type="Lead", txid="SHARED")
    conn = db.connect(pw.store.path)
    try:
        newest = queries.trace(conn, "SHARED")
        other = queries.trace(conn, "SHARED", second)
        unknown = queries.trace(conn, "SHARED", "not-one-of-them")
    finally:
        conn.close()
    assert newest.click is not None and newest.click.id == first
    assert other.click is not None and other.click.id == second
    assert other.matches == newest.matches  # the same clicks listed
    assert other.focused is not None and other.focused.txid == "SHARED"
    assert other.focus != newest.focus
    lines = story(other, focused=True)
    assert lines[0] == f"2 clicks match 'SHARED' — showing click {second}"
    assert lines[1].startswith(f"  click {first}: ") and not lines[1].endswith("(shown)")
    assert lines[2].startswith(f"  click {second}: ") and lines[2].endswith("(shown)")
    assert unknown.click is not None and unknown.click.id == first  # not a match: the newest


async def test_a_txid_is_found_in_every_block_of_conversion_ids(pw: Listener) -> None:
    """The txid index is keyed by the conversion's block of 32,768 ids first (schema step
    17): a look-up by txid reads the oldest block, the newest and every one between."""
    from store import db

    clicks = [await pw.click(ref_id=f"block-{n}") for n in range(3)]
    conn = db.connect(pw.store.path)
    try:
        for click, skipped_to in zip(clicks, (None, 70_000, 140_000), strict=True):
            if skipped_to is not None:  # the next conversion's id is two blocks on
                conn.execute(
                    "INSERT INTO conversions (id, click_id, campaign_id, status, currency,"
                    " created_at, updated_at) SELECT ?, click_id, campaign_id, status,"
                    " currency, created_at, updated_at FROM conversions WHERE id = 1",
                    (skipped_to,),
                )
            await pw.postback(clickid=click, type="Lead", txid="SPREAD")
        rows = conn.execute("SELECT id FROM conversions WHERE txid = 'SPREAD' ORDER BY id")
        ids = [row[0] for row in rows]
    finally:
        conn.close()
    assert [n >> 15 for n in ids] == [0, 2, 4]
    trace = await pw.trace("SPREAD")
    assert [m["click_id"] for m in trace["matches"]] == clicks[::-1]
    assert trace["focus"] == ids[-1]
    status, _ = await pw.postback(clickid=clicks[0], type="Lead", txid="SPREAD")
    assert status == 200
    trace = await pw.trace(clicks[0])
    assert len([c for c in trace["conversions"] if c["txid"] == "SPREAD"]) == 1  # a repeat


async def test_an_external_id_is_found_in_every_block_of_clicks(pw: Listener) -> None:
    """The external id index is keyed by the click's block of 32,768 sequence numbers first
    (schema step 18): a look-up by external id reads every block."""
    from store import db

    conn = db.connect(pw.store.path)
    made = []
    try:
        for skipped_to in (None, 70_000, 140_000):
            if skipped_to is not None:  # the next click's sequence number is two blocks on
                conn.execute(
                    "INSERT INTO clicks (seq, id, campaign_id, created_at)"
                    " SELECT ?, 'filler-' || ?, campaign_id, created_at FROM clicks LIMIT 1",
                    (skipped_to, skipped_to),
                )
            made.append(await pw.click(ref_id="same-ext"))
        seqs = [
            conn.execute("SELECT seq FROM clicks WHERE id = ?", (m,)).fetchone()[0] for m in made
        ]
    finally:
        conn.close()
    assert [n >> 15 for n in seqs] == [0, 2, 4]
    trace = await pw.trace("same-ext")
    assert [m["click_id"] for m in trace["matches"]] == made[::-1]
