"""Conversions entered by hand through the real listener and database: fired as a real
postback would be, or only recorded; marked manual wherever they are shown."""

from __future__ import annotations

import asyncio
from typing import Any

from listener.story import markdown, story
from store import reads
from tests.helpers import Listener, Target, config_for, postwatch, until

RECEIVER = "/pb?v={external_id}&p={payout}&t={type}&s={status}"


async def _add(pw: Listener, **fields: Any) -> tuple[int, Any]:
    return await pw.post("/api/conversions", json=fields)


async def test_a_fired_manual_conversion_is_decided_and_delivered(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    clickid = await pw.click(ref_id="visitor-1")
    status, body = await _add(
        pw, click_id=clickid, type="Deposit", status="approved", payout="42", txid="M1"
    )
    assert status == 201, body
    assert body["manual"] is True and body["change"] == "created"
    assert {d["postback"]: d["verdict"] for d in body["decisions"]} == {
        "all events": "fired",
        "paid deposits": "fired",
    }
    await until(lambda: len(target.received) == 2)
    assert {r.query["p"] for r in target.received} == {"42"}
    assert {r.query["v"] for r in target.received} == {"visitor-1"}

    trace = await pw.trace(clickid)
    (conversion,) = trace["conversions"]
    assert conversion["manual"] is True and conversion["txid"] == "M1"
    (listed,) = (await pw.get("/api/conversions"))[1]
    assert listed["manual"] is True
    (entry,) = [row for row in trace["inbound"] if row["endpoint"] == "manual"]
    assert entry["conversion_id"] == conversion["id"]
    found = reads.trace_from_json(trace)
    assert any(f"conversion #{conversion['id']} (manual) created" in line for line in story(found))
    assert "(manual: entered by hand)" in markdown(found, clickid)


async def test_a_manual_conversion_without_firing_is_only_recorded(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    clickid = await pw.click(ref_id="visitor-2")
    status, body = await _add(
        pw, click_id=clickid, type="Deposit", status="pending", payout="5", fire=False
    )
    assert status == 201, body
    reasons = {d["postback"]: d["reasons"] for d in body["decisions"]}
    assert {d["verdict"] for d in body["decisions"]} == {"skipped"}
    assert reasons["all events"] == ["entered by hand without firing (its rule would fire it)"]
    assert reasons["paid deposits"] == [
        "entered by hand without firing",
        "status 'pending' is not one of: approved",
    ]
    await asyncio.sleep(0.3)  # room for a wrong delivery to arrive
    assert target.received == []
    trace = await pw.trace(clickid)
    (conversion,) = trace["conversions"]
    assert conversion["manual"] is True
    assert all(not d["deliveries"] for d in conversion["decisions"])

    # the network's real approval later fires what the entry by hand did not
    await pw.postback(clickid=clickid, status="approved", type="Deposit")
    await until(lambda: len(target.received) == 2)


async def test_a_manual_update_of_a_fired_conversion_follows_the_rules(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    clickid = await pw.click(ref_id="visitor-3")
    await pw.postback(clickid=clickid, type="Deposit", status="pending", sum="10", txid="T3")
    await until(lambda: len(target.received) == 1)  # all events
    status, body = await _add(pw, click_id=clickid, status="approved", txid="T3")
    assert status == 201, body
    assert body["change"] == "updated"
    verdicts = {d["postback"]: d["verdict"] for d in body["decisions"]}
    assert verdicts == {"all events": "skipped", "paid deposits": "fired"}
    await until(lambda: len(target.received) == 2)
    await asyncio.sleep(0.3)
    assert len(target.received) == 2
    (conversion,) = (await pw.trace(clickid))["conversions"]
    assert conversion["manual"] is True and conversion["status"] == "approved"


async def test_manual_errors_name_the_value(pw: Listener) -> None:
    clickid = await pw.click(ref_id="v")
    status, body = await _add(pw, click_id="nope-123", type="Lead")
    assert status == 404 and "'nope-123'" in body["error"]
    status, body = await _add(pw, click_id=clickid, status="maybe")
    assert status == 400 and "'maybe'" in body["error"] and "approved" in body["error"]
    status, body = await _add(pw, click_id=clickid, payout="ten")
    assert status == 400 and "'ten'" in body["error"]
    status, body = await _add(pw, type="Lead")
    assert status == 400 and "click_id" in body["error"]
    status, body = await _add(pw, click_id=clickid, fire="yes")
    assert status == 400 and "'yes'" in body["error"]
    assert (await pw.trace(clickid))["conversions"] == []


async def test_the_conversion_add_command(pw: Listener, target: Target) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    clickid = await pw.click(ref_id="visitor-4")
    args = ["conversion", "add", clickid, "--type", "Lead", "--status", "approved"]
    args += ["--payout", "3.5", "--no-fire", "--url", pw.base, "--db", str(pw.store.path)]
    code, out, err = await postwatch(*args)
    assert code == 0, err
    assert "(manual, not fired)" in out and "SKIPPED postback 'all events'" in out
    code, out, err = await postwatch(
        "conversion", "add", "unknown-click", "--url", pw.base, "--db", str(pw.store.path)
    )
    assert code == 1 and "unknown click id 'unknown-click'" in err
    await asyncio.sleep(0.2)
    assert target.received == []
