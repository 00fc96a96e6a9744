"""Recover: every failed delivery since a time is resent once, through the real listener, the
database and a receiving server that answers 500 and then 200."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from listener.recover import TimeError, parse_time
from tests.helpers import Listener, Target, config_for, run, until

FAILS = [(500, "down")] * 3  # the first attempt and both retries of one delivery


async def _failed_conversion(pw: Listener, target: Target, **params: Any) -> str:
    """A conversion whose one delivery ends failed (three 500s)."""
    target.answers += FAILS
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Lead", **params)
    await pw.delivered(clickid)
    assert await pw.outcomes(clickid) == [["retrying", "retrying", "failed"]]
    return clickid


async def _recover(pw: Listener, **body: Any) -> dict[str, Any]:
    status, answer = await pw.post("/api/deliveries/recover", json=body)
    assert status in (200, 202), answer
    return dict(answer)


async def test_recover_resends_each_failed_delivery_once(pw: Listener, target: Target) -> None:
    await pw.configure(config_for(target.port, "/pb?c={clickid}"))
    failed = [await _failed_conversion(pw, target) for _ in range(2)]
    ok = await pw.click()
    await pw.postback(clickid=ok, type="Lead")
    await pw.delivered(ok)
    assert len(target.received) == 7

    first = await _recover(pw, since=0)
    assert first["count"] == 2 and len(first["ids"]) == 2
    for clickid in failed:
        await pw.delivered(clickid)
        assert await pw.outcomes(clickid) == [["retrying", "retrying", "failed", "delivered"]]
    assert len(target.received) == 9

    second = await _recover(pw, since=0)
    assert second == {"count": 0, "dry_run": False, "resent": [], "ids": []}
    await asyncio.sleep(0.3)  # give the outbox the time it would take to send a wrong one
    assert len(target.received) == 9
    trace = await pw.trace(failed[0])
    (delivery,) = trace["conversions"][0]["decisions"][0]["deliveries"][-1:]
    assert delivery["resend_of"] == first["resent"][0]


async def test_recover_twice_at_once_queues_nothing_the_second_time(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, "/pb?c={clickid}"))
    clickid = await _failed_conversion(pw, target)
    first, second = await asyncio.gather(_recover(pw, since=0), _recover(pw, since=0))
    assert sorted([first["count"], second["count"]]) == [0, 1]
    await pw.delivered(clickid)
    await asyncio.sleep(0.3)
    assert len(target.received) == 4


async def test_recover_filters_by_time_traffic_source_and_postback(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, "/pb?c={clickid}"))
    await _failed_conversion(pw, target)
    failed_at = (await pw.get("/api/conversions"))[1][0]["updated_at"]
    later = parse_time(failed_at, 0) + 3600
    assert (await _recover(pw, since=later))["count"] == 0
    # a traffic source or campaign with no failures finds none; one no one has is named
    assert (await _recover(pw, since=0, traffic_source="Propeller"))["count"] == 0
    assert (await _recover(pw, since=0, postback="no such config"))["count"] == 0
    status, answer = await pw.post(
        "/api/deliveries/recover", json={"since": 0, "traffic_source": "Elsewhere"}
    )
    assert status == 400
    assert answer["error"] == (
        "traffic_source 'Elsewhere' is no traffic source's name; traffic sources: "
        "Propeller, Receiver"
    )
    status, answer = await pw.post(
        "/api/deliveries/recover", json={"since": 0, "campaign": "other", "dry_run": True}
    )
    assert status == 400 and "campaign 'other' is no campaign's key or name" in answer["error"]
    dry = await _recover(pw, since="1970-01-01T00:00:00Z", dry_run=True)
    assert dry["count"] == 1 and dry["ids"] == [] and dry["dry_run"]
    assert (await _recover(pw, since=0, campaign="Casino FR", dry_run=True))["count"] == 1
    found = await _recover(pw, since=0, traffic_source="Receiver", postback="all events")
    assert found["count"] == 1 and found["resent"] == dry["resent"]


async def test_recover_refuses_a_request_without_since(pw: Listener) -> None:
    status, body = await pw.post("/api/deliveries/recover", json={"traffic_source": "x"})
    assert status == 400 and "since is required" in body["error"]
    status, body = await pw.post("/api/deliveries/recover", json={"since": "yesterday"})
    assert status == 400 and "'yesterday' is not a time" in body["error"]


def test_times_are_read_as_iso_unix_seconds_or_an_age() -> None:
    assert parse_time("1700000000", 0) == 1_700_000_000
    assert parse_time(1700000000.5, 0) == 1_700_000_000.5
    assert parse_time("2023-11-14T22:13:20Z", 0) == 1_700_000_000
    assert parse_time("2023-11-14T22:13:20", 0) == 1_700_000_000  # UTC when no offset
    assert parse_time("2023-11-14T23:13:20+01:00", 0) == 1_700_000_000
    assert parse_time("2h", 10_000) == 10_000 - 7200
    assert parse_time("30m", 10_000) == 10_000 - 1800
    try:
        parse_time("soon", 0)
    except TimeError as error:
        assert "ISO 8601" in str(error)
    else:
        raise AssertionError("'soon' was read as a time")


def _rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
    finally:
        conn.close()


async def test_the_cli_queues_for_the_delivering_listener(
    pw: Listener, target: Target, tmp_path: Path
) -> None:
    await pw.configure(config_for(target.port, "/pb?c={clickid}"))
    clickid = await _failed_conversion(pw, target)
    db = str(tmp_path / "postwatch.db")
    before = _rows(tmp_path / "postwatch.db", "deliveries")
    code, output = await asyncio.to_thread(run, "recover", "--since", "2h", "--dry-run", "--db", db)
    assert code == 0, output
    assert "would resend 1 failed delivery" in output and "GET http://127.0.0.1" in output
    assert _rows(tmp_path / "postwatch.db", "deliveries") == before

    code, output = await asyncio.to_thread(run, "recover", "--since", "2h", "--db", db)
    assert code == 0, output
    assert "queued 1 failed delivery" in output and "/pb?c=" in output
    await until(lambda: len(target.received) == 4)  # the listener's outbox sent it
    await pw.delivered(clickid)
    assert (await pw.outcomes(clickid))[0][-1] == "delivered"

    code, output = await asyncio.to_thread(run, "recover", "--since", "2h", "--db", db)
    assert code == 0 and "no failed delivery to resend" in output
    code, output = await asyncio.to_thread(run, "recover", "--since", "later", "--db", db)
    assert code != 0 and "'later' is not a time" in output
    code, output = await asyncio.to_thread(
        run, "recover", "--since", "2h", "--traffic-source", "Elsewhere", "--db", db
    )
    assert code == 1 and "traffic_source 'Elsewhere' is no traffic source's name" in output
