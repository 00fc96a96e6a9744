"""The ad-platform postback kinds through the real listener: a click with the platform's click
id, a postback, the request the built-in sink (standing in for the platform) received, and the
trace. Nothing is mocked: real HTTP on loopback, a real SQLite file."""

from __future__ import annotations

import calendar
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from listener.story import story
from tests.helpers import Listener

TOKEN = "EAABsecretTOKEN0123456789"
DEV_TOKEN = "DEVtokenABCDEFGH"

SETTINGS = {
    "facebook": 'pixel_id = "1234567890"\nevent_names = { Deposit = "Purchase" }',
    "google": 'customer_id = "123-456-7890"\nconversion_action = "987654"\n'
    'login_customer_id = "111-222-3333"\ndeveloper_token = "' + DEV_TOKEN + '"',
    "tiktok": 'pixel_code = "CPIXEL123"\nevent_names = { Deposit = "CompletePayment" }',
    "bing": 'tag_id = "187012345"\nevent_names = { Deposit = "purchase" }',
}
CLICK_IDS = {
    "facebook": {"fbclid": "IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk"},
    "google": {"gclid": "Cj0KCQiA-gclid_Value"},
    "tiktok": {"ttclid": "E.C.P.ttclid-Value"},
    "bing": {"msclkid": "dd4afcccb1c9a4cad9544dd7e5006"},
}
PATHS = {
    "facebook": "/sink/facebook/v24.0/1234567890/events",
    "google": "/sink/google/v25/customers/1234567890:uploadClickConversions",
    "tiktok": "/sink/tiktok/open_api/v1.3/event/track/",
    "bing": "/sink/bing/v1/187012345/events",
}
KINDS = list(SETTINGS)


def config(
    kind: str,
    *,
    rule: str = 'conditional = true\ntypes = ["Deposit"]\nstatuses = ["approved"]',
    token: str | None = TOKEN,
    base_url: str | None = None,
    sink: str = "",
    retry: str = "[0.2, 0.2]",
    s2s: bool = False,
) -> str:
    """A campaign 'ads' with one postback of ``kind`` whose base URL is the sink ``kind``."""
    token_line = "" if token is None else f'access_token = "{token}"'
    s2s_postback = (
        f'\n[[campaigns.postbacks]]\nname = "s2s twin"\nkind = "s2s"\n'
        f'url = "http://127.0.0.1:PORT/sink/s2s?click={{clickid}}"\n{rule}\n'
        if s2s
        else ""
    )
    return f"""
conversion_types = ["Lead", "Deposit"]

[delivery]
timeout = 2
retry_schedule = {retry}

[[sinks]]
name = "{kind}"
mimic = "{kind}"
{sink}

[[offer_sources]]
name = "AffNet"
status_aliases = {{ "1" = "approved", "2" = "pending" }}

[[traffic_sources]]
name = "Ads"

[[campaigns]]
key = "ads"
name = "Ads"
traffic_source = "Ads"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "{kind} deposits"
kind = "{kind}"
{rule}
base_url = "{base_url or f"http://127.0.0.1:PORT/sink/{kind}"}"
{token_line}
{SETTINGS[kind]}
{s2s_postback}"""


async def received(pw: Listener, sink: str) -> list[dict[str, Any]]:
    """What the sink received, oldest first."""
    status, records = await pw.get(f"/api/sink/{sink}")
    assert status == 200
    return list(reversed(records))


def decisions(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for conversion in trace["conversions"] for d in conversion["decisions"]]


def event_ids(kind: str, body: dict[str, Any]) -> list[str]:
    if kind == "google":
        return [conversion["orderId"] for conversion in body["conversions"]]
    key = "eventId" if kind == "bing" else "event_id"
    return [event[key] for event in body["data"]]


async def deposit(pw: Listener, kind: str, **click: str) -> tuple[str, float, float]:
    """A click with the platform's click id and an approved deposit; the times around it."""
    clickid = await pw.click("ads", **{**CLICK_IDS[kind], **click})
    before = time.time()
    status, body = await pw.postback(
        clickid=clickid, type="Deposit", status="1", sum="49.9", txid="tx-1", currency="EUR"
    )
    after = time.time()
    assert status == 200, body
    return clickid, before, after


async def click_created_at(pw: Listener, clickid: str) -> float:
    def read(conn: sqlite3.Connection) -> float:
        row = conn.execute("SELECT created_at FROM clicks WHERE id = ?", (clickid,)).fetchone()
        return float(row[0])

    return await pw.store.read(read)


# -- each platform's request, field by field -------------------------------------------------


async def test_meta_conversions_api_request(pw: Listener) -> None:
    await pw.configure(config("facebook", rule='test_event_code = "TEST42"'))
    before_click = time.time()
    clickid, before, after = await deposit(pw, "facebook", email=" Jane@Example.com ")
    await pw.delivered(clickid)
    [record] = await received(pw, "facebook")
    assert record["method"] == "POST"
    assert record["path"] == PATHS["facebook"]
    assert record["query"] == "access_token=EAAB****"  # the sink keeps secrets masked too
    assert record["headers"]["Content-Type"] == "application/json"
    body = json.loads(record["body"])
    assert set(body) == {"data", "test_event_code"} and body["test_event_code"] == "TEST42"
    [event] = body["data"]
    trace = await pw.trace(clickid)
    conversion_id = trace["conversions"][0]["id"]
    [decision] = decisions(trace)
    config_id = await pw.store.read(
        lambda conn: conn.execute(
            "SELECT id FROM postback_configs WHERE name = ?", ("facebook deposits",)
        ).fetchone()[0]
    )
    assert event["event_name"] == "Purchase"  # event_names maps the conversion type
    assert isinstance(event["event_time"], int)  # Unix seconds, not milliseconds
    assert int(before) <= event["event_time"] <= after
    assert event["event_id"] == f"pw-{conversion_id}-{config_id}"
    assert event["action_source"] == "website"
    created_ms = int(await click_created_at(pw, clickid) * 1000)
    assert before_click * 1000 - 1 <= created_ms <= before * 1000
    fbclid = CLICK_IDS["facebook"]["fbclid"]
    assert event["user_data"]["fbc"] == f"fb.1.{created_ms}.{fbclid}"  # fbclid byte for byte
    assert re.fullmatch(r"fb\.1\.\d{13}\.\S+", event["user_data"]["fbc"])
    assert event["user_data"]["em"] == [hashlib.sha256(b"jane@example.com").hexdigest()]
    assert event["custom_data"] == {"value": 49.9, "currency": "EUR", "order_id": "tx-1"}
    assert decision["verdict"] == "fired"
    [delivery] = decision["deliveries"]
    assert delivery["outcome"] == "delivered"
    assert json.loads(delivery["response"])["events_received"] == 1


async def test_google_ads_upload_click_conversions_request(pw: Listener) -> None:
    await pw.configure(config("google"))
    clickid, before, after = await deposit(pw, "google", gbraid="B-1", wbraid="W-1")
    await pw.delivered(clickid)
    [record] = await received(pw, "google")
    assert record["method"] == "POST"
    assert record["path"] == PATHS["google"]
    assert record["query"] == ""
    headers = record["headers"]
    assert headers["Authorization"] == "Bearer EAAB****"
    assert headers["developer-token"] == "DEVt****"
    assert headers["login-customer-id"] == "1112223333"
    assert headers["Content-Type"] == "application/json"
    body = json.loads(record["body"])
    assert body["partialFailure"] is True
    [conversion] = body["conversions"]
    assert [k for k in ("gclid", "gbraid", "wbraid") if k in conversion] == ["gclid"]
    assert conversion["gclid"] == CLICK_IDS["google"]["gclid"]
    assert conversion["conversionAction"] == "customers/1234567890/conversionActions/987654"
    stamp = conversion["conversionDateTime"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00", stamp)
    sent_at = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S"))
    assert int(before) <= sent_at <= after
    assert conversion["conversionValue"] == 49.9
    assert conversion["currencyCode"] == "EUR"
    assert conversion["orderId"] == "tx-1"
    [decision] = decisions(await pw.trace(clickid))
    assert decision["verdict"] == "fired"
    assert decision["warnings"] == [
        "the click has gclid, gbraid, wbraid: only gclid was sent "
        "(Google Ads takes exactly one click id)"
    ]
    assert decision["deliveries"][0]["outcome"] == "delivered"


async def test_tiktok_events_api_request(pw: Listener) -> None:
    await pw.configure(config("tiktok"))
    clickid, before, after = await deposit(pw, "tiktok", phone="+1 425-555-1234")
    await pw.delivered(clickid)
    [record] = await received(pw, "tiktok")
    assert record["method"] == "POST"
    assert record["path"] == PATHS["tiktok"]
    assert record["headers"]["Access-Token"] == "EAAB****"
    assert record["headers"]["Content-Type"] == "application/json"
    body = json.loads(record["body"])
    assert body["event_source"] == "web"
    assert body["event_source_id"] == "CPIXEL123"
    [event] = body["data"]
    assert event["event"] == "CompletePayment"
    assert isinstance(event["event_time"], int) and int(before) <= event["event_time"] <= after
    assert re.fullmatch(r"pw-\d+-\d+", event["event_id"])
    assert event["user"] == {
        "ttclid": CLICK_IDS["tiktok"]["ttclid"],
        "phone": "c59475d96e9f01d7d18d06cfad84dd02333207f02c0c2c5663ef2782cda0390e",
    }
    assert event["properties"] == {"value": 49.9, "currency": "EUR", "order_id": "tx-1"}
    [decision] = decisions(await pw.trace(clickid))
    assert decision["deliveries"][0]["outcome"] == "delivered"


async def test_microsoft_uet_conversions_api_request(pw: Listener) -> None:
    await pw.configure(config("bing"))
    clickid, before, after = await deposit(pw, "bing", email="Jo.hn+promo@Contoso.com")
    await pw.delivered(clickid)
    [record] = await received(pw, "bing")
    assert record["method"] == "POST"
    assert record["path"] == PATHS["bing"]
    assert record["headers"]["Authorization"] == "Bearer EAAB****"
    body = json.loads(record["body"])
    [event] = body["data"]
    assert event["eventType"] == "custom"
    assert event["eventName"] == "purchase"
    assert isinstance(event["eventTime"], int) and int(before) <= event["eventTime"] <= after
    assert re.fullmatch(r"pw-\d+-\d+", event["eventId"])
    assert event["userData"] == {
        "msclkid": CLICK_IDS["bing"]["msclkid"],
        "em": "ec81f3ac7b2b19675bab9d54cf416f9f18cff87c97da5cca82c0f0891bc40602",
    }
    assert event["customData"] == {"value": 49.9, "currency": "EUR", "transactionId": "tx-1"}
    [decision] = decisions(await pw.trace(clickid))
    assert decision["deliveries"][0]["outcome"] == "delivered"


# -- errors are failures, retried with the same event id -------------------------------------

ERRORS = {
    "facebook": "Meta answered HTTP 400 with an error: Invalid parameter",
    "google": "Google Ads rejected the conversion (partialFailureError, code 3)",
    "tiktok": "TikTok answered code 40002",
    "bing": "Microsoft answered HTTP 400 (ValidationError)",
}


@pytest.mark.parametrize("kind", KINDS)
async def test_platform_errors_fail_and_retries_keep_the_event_id(pw: Listener, kind: str) -> None:
    await pw.configure(config(kind, sink="error = true"))
    clickid, _, _ = await deposit(pw, kind)
    await pw.delivered(clickid)
    assert await pw.outcomes(clickid) == [["retrying", "retrying", "failed"]]
    [decision] = decisions(await pw.trace(clickid))
    for attempt in decision["deliveries"]:
        assert attempt["error"].startswith(ERRORS[kind]), attempt["error"]
        assert attempt["response"]  # the platform's answer is kept
    status, _ = await pw.post(f"/api/deliveries/{decision['deliveries'][-1]['id']}/resend")
    assert status == 202
    await pw.settle(lambda: _count(pw, kind, 4))
    records = await received(pw, kind)
    bodies = [json.loads(record["body"]) for record in records]
    assert len(bodies) == 4
    assert all(body == bodies[0] for body in bodies)  # same event, same id, same time
    ids = {event_id for body in bodies for event_id in event_ids(kind, body)}
    assert len(ids) == 1


async def _count(pw: Listener, sink: str, count: int) -> bool:
    return len(await received(pw, sink)) >= count


@pytest.mark.parametrize("kind", KINDS)
async def test_fail_ratio_answers_with_the_platforms_error(pw: Listener, kind: str) -> None:
    await pw.configure(config(kind, sink="fail_ratio = 1.0", retry="[]"))
    clickid, _, _ = await deposit(pw, kind)
    await pw.delivered(clickid)
    [decision] = decisions(await pw.trace(clickid))
    assert decision["deliveries"][0]["error"].startswith(ERRORS[kind])


# -- the conditional rule, exactly as for S2S ------------------------------------------------

RULE = 'conditional = true\ntypes = ["Deposit"]\nstatuses = ["approved"]\nmin_payout = 10'
POSTBACKS = [
    {"type": "Lead", "status": "1", "sum": "50"},
    {"type": "deposit", "status": "1", "sum": "50"},
    {"type": "Deposit", "status": "2", "sum": "50"},
    {"type": "Deposit", "status": "1", "sum": "5"},
    {"status": "1", "sum": "50"},
    {"type": "Deposit", "status": "1", "sum": "50"},
]


@pytest.mark.parametrize("kind", KINDS)
async def test_the_conditional_rule_decides_as_for_s2s(pw: Listener, kind: str) -> None:
    await pw.configure(config(kind, rule=RULE, s2s=True))
    fired = 0
    for params in POSTBACKS:
        clickid = await pw.click("ads", **CLICK_IDS[kind])
        status, body = await pw.postback(clickid=clickid, **params)
        assert status == 200
        platform, s2s = body["decisions"]
        assert platform["postback"] == f"{kind} deposits" and s2s["postback"] == "s2s twin"
        assert (platform["verdict"], platform["reasons"]) == (s2s["verdict"], s2s["reasons"])
        fired += platform["verdict"] == "fired"
        await pw.delivered(clickid)
    assert fired == 1
    assert len(await received(pw, kind)) == 1
    assert len(await received(pw, "s2s")) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_an_update_that_matches_fires_once(pw: Listener, kind: str) -> None:
    await pw.configure(config(kind))
    clickid = await pw.click("ads", **CLICK_IDS[kind])
    _, pending = await pw.postback(clickid=clickid, type="Deposit", status="2", txid="t9")
    assert pending["decisions"][0]["reasons"] == ["status 'pending' is not one of: approved"]
    _, approved = await pw.postback(clickid=clickid, status="1", txid="t9", sum="20")
    assert approved["decisions"][0]["verdict"] == "fired"
    _, again = await pw.postback(clickid=clickid, status="1", txid="t9", sum="25")
    assert again["decisions"][0]["verdict"] == "skipped"
    assert again["decisions"][0]["reasons"][0].startswith("already fired at ")
    await pw.delivered(clickid)
    assert len(await received(pw, kind)) == 1


# -- what stops a request --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_click_without_the_platforms_click_id_is_skipped(pw: Listener, kind: str) -> None:
    await pw.configure(config(kind))
    clickid = await pw.click("ads", fbclid="x") if kind != "facebook" else await pw.click("ads")
    _, body = await pw.postback(clickid=clickid, type="Deposit", status="1", sum="10")
    [decision] = body["decisions"]
    assert decision["verdict"] == "skipped"
    wanted = "gclid, gbraid or wbraid" if kind == "google" else next(iter(CLICK_IDS[kind]))
    assert decision["reasons"][0].startswith(f"the click has no {wanted}: ")
    trace = await pw.trace(clickid)
    assert decisions(trace)[0]["deliveries"] == []
    assert decisions(trace)[0]["request"] is None
    assert await received(pw, kind) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_without_an_access_token_the_request_is_recorded_not_sent(
    pw: Listener, kind: str
) -> None:
    await pw.configure(config(kind, token=None))
    clickid, _, _ = await deposit(pw, kind)
    [decision] = decisions(await pw.trace(clickid))
    assert decision["verdict"] == "skipped"
    assert decision["reasons"] == ["no access token: request recorded, not sent"]
    assert decision["deliveries"] == []
    request = decision["request"]
    assert request["method"] == "POST"
    assert request["url"].startswith(f"http://127.0.0.1:{pw.port}{PATHS[kind]}")
    assert event_ids(kind, json.loads(request["body"]))
    lines = story(await pw.trace(clickid))
    assert any("request recorded, not sent: POST" in line for line in lines)
    assert await received(pw, kind) == []


# -- secrets ---------------------------------------------------------------------------------


@pytest.fixture
async def platform_server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in platform that records exactly what arrives, headers and all."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append({"headers": dict(request.headers), "query": dict(request.query)})
        return web.json_response({"code": 0, "message": "OK", "eventsReceived": 1})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


@pytest.mark.parametrize("kind", KINDS)
async def test_env_secrets_go_on_the_wire_and_nowhere_else(
    pw: Listener,
    kind: str,
    platform_server: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    real = f"REAL-{kind}-token-0123456789"
    monkeypatch.setenv("PW_TEST_TOKEN", real)
    base, seen = platform_server
    await pw.configure(config(kind, token="env:PW_TEST_TOKEN", base_url=base))
    clickid, _, _ = await deposit(pw, kind)
    await pw.delivered(clickid)
    [wire] = seen
    sent = json.dumps(wire)
    assert real in sent
    if kind == "google":
        assert wire["headers"]["developer-token"] == DEV_TOKEN
    trace = await pw.trace(clickid)
    assert decisions(trace)[0]["deliveries"][0]["outcome"] == "delivered"
    assert real not in json.dumps(trace)
    assert "REAL****" in json.dumps(trace)
    # Not in the database file either (WAL included): only the env: reference is stored.
    for path in tmp_path.glob("postwatch.db*"):
        assert real.encode() not in path.read_bytes(), path.name


async def test_a_missing_env_token_is_a_skip_naming_the_variable(
    pw: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PW_ABSENT_TOKEN", raising=False)
    await pw.configure(config("bing", token="env:PW_ABSENT_TOKEN"))
    clickid, _, _ = await deposit(pw, "bing")
    [decision] = decisions(await pw.trace(clickid))
    assert decision["verdict"] == "skipped"
    assert decision["reasons"] == [
        "the access token reads the environment variable PW_ABSENT_TOKEN, which is not set: "
        "request recorded, not sent"
    ]
    assert decision["request"]["headers"]["Authorization"] == "Bearer ****"


async def test_a_token_gone_before_a_retry_fails_that_attempt_clearly(
    pw: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW_ROTATING_TOKEN", TOKEN)
    await pw.configure(
        config("tiktok", token="env:PW_ROTATING_TOKEN", sink="error = true", retry="[0.5]")
    )
    clickid, _, _ = await deposit(pw, "tiktok")

    async def first_done() -> bool:
        return (await pw.outcomes(clickid))[0][0] == "retrying"

    await pw.settle(first_done)
    monkeypatch.delenv("PW_ROTATING_TOKEN")
    await pw.delivered(clickid)
    [decision] = decisions(await pw.trace(clickid))
    last = decision["deliveries"][-1]
    assert last["outcome"] == "failed"
    assert last["http_status"] is None
    assert last["error"] == (
        "the request could not be sent: the access token reads the environment variable "
        "PW_ROTATING_TOKEN, which is not set"
    )
    assert len(await received(pw, "tiktok")) == 1


async def test_a_literal_token_is_masked_in_deliveries_traces_and_sink_records(
    pw: Listener,
) -> None:
    await pw.configure(config("facebook"))
    clickid, _, _ = await deposit(pw, "facebook")
    await pw.delivered(clickid)
    assert TOKEN not in json.dumps(await pw.trace(clickid))
    assert TOKEN not in json.dumps(await received(pw, "facebook"))

    def stored(conn: sqlite3.Connection) -> str:
        rows = [
            tuple(row)
            for table in ("deliveries", "decisions", "sink_records", "inbound")
            for row in conn.execute(f"SELECT * FROM {table}")
        ]
        return json.dumps(rows, default=str)

    assert TOKEN not in await pw.store.read(stored)


# -- the trace told as text ------------------------------------------------------------------


async def test_the_story_shows_the_json_sent_and_the_answer_pretty_printed(pw: Listener) -> None:
    await pw.configure(config("tiktok", sink="error = true", retry="[]"))
    clickid, _, _ = await deposit(pw, "tiktok")
    await pw.delivered(clickid)
    lines = [line.strip() for line in story(await pw.trace(clickid))]
    sent, answer = lines.index("sent:"), lines.index("answer:")
    assert lines[sent + 1] == "{" and '"event_source": "web",' in lines[sent:answer]
    assert lines[answer + 1] == "{" and '"code": 40002,' in lines[answer:]
    assert any("TikTok answered code 40002" in line for line in lines)
