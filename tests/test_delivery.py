"""Outbound S2S postbacks to real receiving servers: macros, judging, retries, resend."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.helpers import (
    BASE_CONFIG,
    Listener,
    Target,
    config_for,
    free_port,
    start_listener,
    stop_listener,
)


async def test_macros_are_expanded_and_url_encoded(pw: Listener, target: Target) -> None:
    await pw.configure(
        config_for(
            target.port,
            "/pb?v={external_id}&c={clickid}&p={payout}&s={sum}&cur={currency}&st={status}"
            "&raw={raw_status}&t={type}&tx={txid}&camp={campaign}&ts={timestamp}&s1={sub1}"
            "&x={nope}&e={externalid}",
        )
    )
    clickid = await pw.click(ref_id="a b&c=d", sub1="fr/é")
    await pw.postback(clickid=clickid, type="First Deposit", status="hold", sum="12.50", txid="T#1")
    await pw.delivered(clickid)
    (request,) = target.received
    query = parse_qs(urlsplit(str(request.url)).query)
    assert query["v"] == ["a b&c=d"] and query["e"] == ["a b&c=d"]
    assert query["c"] == [clickid]
    assert query["p"] == ["12.5"] and query["s"] == ["12.5"] and query["cur"] == ["USD"]
    assert query["st"] == ["other"] and query["raw"] == ["hold"]
    assert query["t"] == ["First Deposit"] and query["tx"] == ["T#1"]
    assert query["camp"] == ["casino-fr"] and query["s1"] == ["fr/é"]
    assert query["ts"][0].isdigit()
    assert "x" not in query  # unknown macro left empty
    assert "%26c%3Dd" in request.raw_path  # the & of the value is encoded, not a separator
    decision = (await pw.trace(clickid))["conversions"][0]["decisions"][0]
    assert "unknown macro {nope} was left empty" in decision["warnings"]


async def test_post_with_a_json_body_template(pw: Listener, target: Target) -> None:
    await pw.configure(
        """
[[traffic_sources]]
name = "Receiver"
postback_url = "http://127.0.0.1:RPORT/pb"
[[offer_sources]]
name = "AffNet"
[[campaigns]]
key = "casino-fr"
traffic_source = "Receiver"
offer_source = "AffNet"
[[campaigns.postbacks]]
name = "all events"
method = "POST"
body = '{"id": "{clickid}", "type": "{type}", "payout": {payout}}'
""".replace("RPORT", str(target.port))
    )
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type='Say "hi"', sum="3")
    await pw.delivered(clickid)
    assert target.received[0].method == "POST"
    assert target.received[0].headers["Content-Type"] == "application/json"
    assert json.loads(target.bodies[0]) == {"id": clickid, "type": 'Say "hi"', "payout": 3}


async def test_a_500_then_200_is_delivered_on_the_second_attempt(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, "/pb?c={clickid}"))
    target.answers = [(500, "oops")]
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Lead")
    await pw.delivered(clickid)
    attempts = (await pw.trace(clickid))["conversions"][0]["decisions"][0]["deliveries"]
    assert [(a["attempt"], a["http_status"], a["outcome"]) for a in attempts] == [
        (1, 500, "retrying"),
        (2, 200, "delivered"),
    ]
    assert attempts[0]["response"] == "oops"
    assert attempts[0]["error"] == "HTTP 500: only a 2xx answer counts as delivered"
    assert len(target.received) == 2


async def test_a_200_matching_failure_body_is_not_delivered(pw: Listener, target: Target) -> None:
    await pw.configure(config_for(target.port, "/pb", 'failure_body = "(?i)error"'))
    target.answers = [(200, "ERROR: bad visitor")] * 3
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Lead")
    await pw.delivered(clickid)
    attempts = (await pw.trace(clickid))["conversions"][0]["decisions"][0]["deliveries"]
    assert [a["outcome"] for a in attempts] == ["retrying", "retrying", "failed"]
    assert "matches the traffic source's failure_body" in attempts[-1]["error"]


async def test_success_body_must_match(pw: Listener, target: Target) -> None:
    await pw.configure(config_for(target.port, "/pb", 'success_body = "^OK$"'))
    target.answers = [(200, "queued")]
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Lead")
    await pw.delivered(clickid)
    attempts = (await pw.trace(clickid))["conversions"][0]["decisions"][0]["deliveries"]
    assert [a["outcome"] for a in attempts] == ["retrying", "delivered"]
    assert "does not match the traffic source's success_body" in attempts[0]["error"]


async def test_connection_refused_is_retried_then_failed(pw: Listener) -> None:
    await pw.configure(config_for(free_port(), "/pb"))  # nothing listens there
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Lead")
    await pw.delivered(clickid)
    attempts = (await pw.trace(clickid))["conversions"][0]["decisions"][0]["deliveries"]
    assert [a["outcome"] for a in attempts] == ["retrying", "retrying", "failed"]
    assert all(a["error"].startswith("the request failed") for a in attempts)


async def test_a_pending_retry_resumes_after_a_restart(tmp_path: Path, target: Target) -> None:
    listener = await start_listener(tmp_path / "pw.db")
    await listener.configure(config_for(target.port, "/pb").replace("[0.2, 0.2]", "[1.5]"))
    target.answers = [(503, "busy")]
    clickid = await listener.click()
    await listener.postback(clickid=clickid, type="Lead")
    await listener.settle(lambda: _has_outcome(listener, clickid, "retrying"))
    await stop_listener(listener)  # the retry is pending in the outbox, not sent

    listener = await start_listener(tmp_path / "pw.db")
    try:
        await listener.delivered(clickid)
        attempts = (await listener.trace(clickid))["conversions"][0]["decisions"][0]["deliveries"]
        assert [(a["attempt"], a["outcome"]) for a in attempts] == [
            (1, "retrying"),
            (2, "delivered"),
        ]
        assert len(target.received) == 2
    finally:
        await stop_listener(listener)


async def _has_outcome(listener: Listener, clickid: str, outcome: str) -> bool:
    return any(outcome in outcomes for outcomes in await listener.outcomes(clickid))


async def test_resend_appends_an_attempt(pw: Listener, target: Target) -> None:
    await pw.configure(config_for(target.port, "/pb?c={clickid}"))
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Lead")
    await pw.delivered(clickid)
    first = (await pw.trace(clickid))["conversions"][0]["decisions"][0]["deliveries"][0]
    status, body = await pw.post(f"/api/deliveries/{first['id']}/resend")
    assert status == 202 and body["resend_of"] == first["id"]
    await pw.delivered(clickid)
    attempts = (await pw.trace(clickid))["conversions"][0]["decisions"][0]["deliveries"]
    assert [(a["attempt"], a["resend_of"], a["outcome"]) for a in attempts] == [
        (1, None, "delivered"),
        (2, first["id"], "delivered"),
    ]
    assert attempts[1]["url"] == first["url"]
    assert len(target.received) == 2
    status, body = await pw.post("/api/deliveries/999/resend")
    assert status == 404 and body["error"] == "no delivery has id 999"


async def test_the_sink_answers_as_configured_and_records(pw: Listener) -> None:
    await pw.configure(
        BASE_CONFIG
        + """
[[sinks]]
name = "propeller"
status = 202
body = "accepted"
"""
    )
    status, text = await pw.get("/sink/propeller", a="1")
    assert (status, text) == (202, "accepted")
    status, text = await pw.get("/sink/other")
    assert (status, text) == (200, "OK")
    records = (await pw.get("/api/sink/propeller"))[1]
    assert records[0]["query"] == "a=1" and records[0]["http_status"] == 202
