"""Test postbacks through the real listener to a real receiving server: the target's answer
comes back at once, and a test is stored apart, never a conversion nor a delivery."""

from __future__ import annotations

import asyncio

from tests.helpers import Listener, Target, config_for, count_rows, postwatch

RECEIVER = "/pb?v={external_id}&p={payout}&t={type}&s1={sub1}"


def _count(pw: Listener, table: str) -> int:
    return count_rows(pw.store.path, table)


async def test_a_test_postback_reaches_the_target_with_sample_values(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    status, body = await pw.post("/api/postbacks/all events/test", json={})
    assert status == 200, body
    (request,) = target.received
    assert request.query["v"] == "test-external-id" and request.query["p"] == "1"
    assert body["test"] is True and body["outcome"] == "delivered"
    assert body["http_status"] == 200 and body["response"] == "OK"
    assert body["postback"] == "all events" and body["campaign"] == "casino-fr"
    assert body["url"] == str(request.url)
    assert body["duration_ms"] >= 0 and body["sent_at"].endswith("Z")

    assert _count(pw, "test_postbacks") == 1
    assert _count(pw, "conversions") == 0 and _count(pw, "deliveries") == 0
    _, listed = await pw.get("/api/conversions")
    assert listed == []
    await asyncio.sleep(0.3)  # a test is never retried nor sent again by the outbox
    assert len(target.received) == 1


async def test_given_values_fill_the_macros_and_a_failure_body_fails_it(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, RECEIVER, 'failure_body = "error"'))
    target.answers.append((200, "error: unknown visitor"))
    status, body = await pw.post(
        "/api/postbacks/all events/test",
        json={"values": {"external_id": "abc", "payout": "7.5", "type": "Deposit", "sub1": "fr"}},
    )
    assert status == 200, body
    (request,) = target.received
    assert dict(request.query) == {"v": "abc", "p": "7.5", "t": "Deposit", "s1": "fr"}
    assert body["outcome"] == "failed" and "error" in body["error"]
    assert body["response"] == "error: unknown visitor"
    await asyncio.sleep(0.3)  # a failed test is not retried
    assert len(target.received) == 1


async def test_a_config_is_found_by_id_and_names_that_clash_need_the_campaign(
    pw: Listener, target: Target
) -> None:
    await pw.configure(
        config_for(target.port, RECEIVER)
        + """
[[campaigns]]
key = "second"
traffic_source = "Receiver"
offer_source = "AffNet"
[[campaigns.postbacks]]
name = "all events"
"""
    )
    status, body = await pw.post("/api/postbacks/all events/test")
    assert status == 409 and "casino-fr, second" in body["error"]
    status, body = await pw.post("/api/postbacks/all events/test", json={"campaign": "second"})
    assert status == 200 and body["campaign"] == "second", body
    config_id = body["postback_config_id"]
    status, body = await pw.post(f"/api/postbacks/{config_id}/test")
    assert status == 200 and body["campaign"] == "second", body
    status, body = await pw.post("/api/postbacks/nothing/test")
    assert status == 404 and "'nothing'" in body["error"]
    status, body = await pw.post("/api/postbacks/all events/test", json={"campaign": "zz"})
    assert status == 404 and "'zz'" in body["error"]
    status, body = await pw.post("/api/postbacks/all events/test", json={"values": [1]})
    assert status == 400 and "values must be an object" in body["error"]
    assert len(target.received) == 2


async def test_the_test_postback_command(pw: Listener, target: Target) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    code, out, err = await postwatch(
        "test-postback",
        "all events",
        "--campaign",
        "casino-fr",
        "--value",
        "payout=9",
        "--value",
        "sub1=de",
        "--url",
        pw.base,
        "--db",
        str(pw.store.path),
    )
    assert code == 0, err
    assert "-> 200" in out and "delivered" in out
    (request,) = target.received
    assert request.query["p"] == "9" and request.query["s1"] == "de"


async def test_a_platform_config_is_tested_in_its_platforms_shape(
    pw: Listener, target: Target
) -> None:
    await pw.configure(
        config_for(target.port, RECEIVER)
        + f"""
[[campaigns.postbacks]]
name = "meta purchases"
kind = "facebook"
event_names = {{ Lead = "Lead" }}
pixel_id = "1234567890"
access_token = "EAAB-secret-token"
base_url = "http://127.0.0.1:{target.port}"
"""
    )
    status, body = await pw.post(
        "/api/postbacks/meta purchases/test", json={"values": {"fbclid": "fb.1.abc"}}
    )
    assert status == 200, body
    (request,) = target.received
    assert "/1234567890/events" in request.path
    assert "fb.1.abc" in target.bodies[0]
    assert body["kind"] == "facebook" and body["outcome"] == "delivered", body
    assert body["url"].endswith("access_token=EAAB****")  # the token is masked
    assert "EAAB-secret-token" not in str(body["url"]) + str(body["response"])
    assert _count(pw, "deliveries") == 0
