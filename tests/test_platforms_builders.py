"""The ad-platform kinds as pure functions: request builders, hashing against the platforms'
published examples, answer judges, secret preparers, the sink's mimicked answers, config."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from listener import kinds
from listener.outbound import Context
from listener.platforms import common, hashing, mimic
from store.config import ConfigError, dump, parse
from store.records import (
    Attempt,
    Campaign,
    Click,
    Conversion,
    PostbackConfig,
    TrafficSource,
)

CLICK_AT = 1_700_000_000.123456
NOW = 1_700_000_100.9
TOKEN = "EAABsecretTOKEN0123456789"

SETTINGS: dict[str, dict[str, Any]] = {
    "facebook": {"pixel_id": "1234567890", "access_token": TOKEN},
    "google": {
        "customer_id": "123-456-7890",
        "conversion_action": "987654",
        "access_token": TOKEN,
        "developer_token": "DEVtokenABCDEFGH",
    },
    "tiktok": {"pixel_code": "CPIXEL123", "access_token": TOKEN},
    "bing": {"tag_id": "187012345", "access_token": TOKEN},
}
CLICK_IDS = {
    "facebook": {"fbclid": "IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk"},
    "google": {"gclid": "Cj0KCQiA-gclid_Value"},
    "tiktok": {"ttclid": "E.C.P.ttclid-Value"},
    "bing": {"msclkid": "dd4afcccb1c9a4cad9544dd7e5006"},
}


def context(
    kind: str,
    platform: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    *,
    type_: str | None = "Deposit",
    payout: float | None = 49.9,
    txid: str | None = "tx-1",
) -> Context:
    config = PostbackConfig(
        name=f"{kind} deposits",
        kind=kind,
        platform=SETTINGS[kind] if platform is None else platform,
        id=7,
    )
    conversion = Conversion(
        id=42,
        click_id="c1",
        campaign_id=1,
        type=type_,
        status="approved",
        raw_status="1",
        payout=payout,
        currency="EUR",
        txid=txid,
    )
    click = Click(
        id="c1",
        campaign_id=1,
        external_id="",
        params=CLICK_IDS[kind] if params is None else params,
        created_at=CLICK_AT,
    )
    campaign = Campaign(key="ads", name="Ads", traffic_source="Ads", offer_source="AffNet")
    return Context(config, conversion, click, campaign, TrafficSource(name="Ads"), NOW)


# -- requests, field by field ----------------------------------------------------------------

EXPECTED: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    "facebook": (
        "https://graph.facebook.com/v24.0/1234567890/events?access_token=EAAB****",
        {"Content-Type": "application/json"},
        {
            "data": [
                {
                    "event_name": "Deposit",
                    "event_time": 1_700_000_100,
                    "event_id": "pw-42-7",
                    "action_source": "website",
                    "user_data": {
                        "fbc": "fb.1.1700000000123."
                        "IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk"
                    },
                    "custom_data": {"value": 49.9, "currency": "EUR", "order_id": "tx-1"},
                }
            ]
        },
    ),
    "google": (
        "https://googleads.googleapis.com/v25/customers/1234567890:uploadClickConversions",
        {
            "Content-Type": "application/json",
            "Authorization": "Bearer EAAB****",
            "developer-token": "DEVt****",
        },
        {
            "conversions": [
                {
                    "gclid": "Cj0KCQiA-gclid_Value",
                    "conversionAction": "customers/1234567890/conversionActions/987654",
                    "conversionDateTime": "2023-11-14 22:15:00+00:00",
                    "conversionValue": 49.9,
                    "currencyCode": "EUR",
                    "orderId": "tx-1",
                }
            ],
            "partialFailure": True,
        },
    ),
    "tiktok": (
        "https://business-api.tiktok.com/open_api/v1.3/event/track/",
        {"Content-Type": "application/json", "Access-Token": "EAAB****"},
        {
            "event_source": "web",
            "event_source_id": "CPIXEL123",
            "data": [
                {
                    "event": "Deposit",
                    "event_time": 1_700_000_100,
                    "event_id": "pw-42-7",
                    "user": {"ttclid": "E.C.P.ttclid-Value"},
                    "properties": {"value": 49.9, "currency": "EUR", "order_id": "tx-1"},
                }
            ],
        },
    ),
    "bing": (
        "https://capi.uet.microsoft.com/v1/187012345/events",
        {"Content-Type": "application/json", "Authorization": "Bearer EAAB****"},
        {
            "data": [
                {
                    "eventType": "custom",
                    "eventName": "Deposit",
                    "eventTime": 1_700_000_100,
                    "eventId": "pw-42-7",
                    "userData": {"msclkid": "dd4afcccb1c9a4cad9544dd7e5006"},
                    "customData": {"value": 49.9, "currency": "EUR", "transactionId": "tx-1"},
                }
            ]
        },
    ),
}


@pytest.mark.parametrize("kind", EXPECTED)
def test_request_has_the_platforms_documented_shape(kind: str) -> None:
    built = kinds.build(context(kind))
    url, headers, body = EXPECTED[kind]
    assert built.missing is None
    assert built.warnings == []
    assert built.request is not None
    assert built.request.method == "POST"
    assert built.request.url == url
    assert built.request.headers == headers
    assert json.loads(built.request.body) == body
    assert TOKEN not in built.request.url + json.dumps(built.request.headers) + built.request.body


@pytest.mark.parametrize("kind", EXPECTED)
def test_the_built_request_is_the_same_every_time(kind: str) -> None:
    """The body of a retry or a resend is the stored one; a rebuild gives the same too."""
    first, second = kinds.build(context(kind)), kinds.build(context(kind))
    assert first.request == second.request


@pytest.mark.parametrize(
    ("kind", "platform", "path", "field", "expected"),
    [
        ("facebook", {"event_names": {"Deposit": "Purchase"}}, ("data", 0), "event_name",
         "Purchase"),
        ("facebook", {"action_source": "system_generated"}, ("data", 0), "action_source",
         "system_generated"),
        ("facebook", {"test_event_code": "TEST123"}, (), "test_event_code", "TEST123"),
        ("facebook", {"currency": "USD"}, ("data", 0, "custom_data"), "currency", "USD"),
        ("tiktok", {"event_names": {"Deposit": "CompletePayment"}}, ("data", 0), "event",
         "CompletePayment"),
        ("tiktok", {"test_event_code": "TEST9"}, (), "test_event_code", "TEST9"),
        ("bing", {"event_names": {"Deposit": "purchase"}}, ("data", 0), "eventName", "purchase"),
        ("google", {"event_names": {"Deposit": "555"}}, ("conversions", 0), "conversionAction",
         "customers/1234567890/conversionActions/555"),
        ("google", {"conversion_action": "customers/1/conversionActions/2"}, ("conversions", 0),
         "conversionAction", "customers/1/conversionActions/2"),
    ],
)  # fmt: skip
def test_settings_shape_the_body(
    kind: str, platform: dict[str, Any], path: tuple[Any, ...], field: str, expected: str
) -> None:
    built = kinds.build(context(kind, {**SETTINGS[kind], **platform}))
    assert built.request is not None
    node: Any = json.loads(built.request.body)
    for step in path:
        node = node[step]
    assert node[field] == expected


def test_base_url_and_api_version_can_point_at_a_sink() -> None:
    platform = {**SETTINGS["facebook"], "base_url": "http://127.0.0.1:9/sink/meta/"}
    built = kinds.build(context("facebook", {**platform, "api_version": "v99.0"}))
    assert built.request is not None
    assert built.request.url.startswith("http://127.0.0.1:9/sink/meta/v99.0/1234567890/events?")


def test_google_sends_one_click_id_only_gclid_first() -> None:
    params = {"gclid": "G1", "gbraid": "B1", "wbraid": "W1"}
    built = kinds.build(context("google", params=params))
    assert built.request is not None
    sent = json.loads(built.request.body)["conversions"][0]
    assert [k for k in ("gclid", "gbraid", "wbraid") if k in sent] == ["gclid"]
    assert built.warnings == [
        "the click has gclid, gbraid, wbraid: only gclid was sent "
        "(Google Ads takes exactly one click id)"
    ]
    built = kinds.build(context("google", params={"gbraid": "B1", "wbraid": "W1"}))
    assert built.request is not None
    sent = json.loads(built.request.body)["conversions"][0]
    assert sent["gbraid"] == "B1" and "gclid" not in sent and "wbraid" not in sent


def test_google_login_customer_id_header_and_no_order_id_without_txid() -> None:
    platform = {**SETTINGS["google"], "login_customer_id": "111-222-3333"}
    built = kinds.build(context("google", platform, txid=None))
    assert built.request is not None
    assert built.request.headers["login-customer-id"] == "1112223333"
    assert "orderId" not in json.loads(built.request.body)["conversions"][0]


def test_no_type_and_no_payout_are_warned_about() -> None:
    built = kinds.build(context("facebook", type_=None, payout=None))
    assert built.request is not None
    event = json.loads(built.request.body)["data"][0]
    assert event["event_name"] == "Purchase"
    assert "value" not in event["custom_data"]
    assert built.warnings == [
        "the conversion has no type: the event was sent as 'Purchase'",
        "the conversion has no payout: the event was sent without a value",
    ]


# -- what stops a request --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "reason"),
    [
        ("facebook", {}, "the click has no fbclid: Meta attributes a conversion to its ad click "
         "by the fbclid, so pass fbclid on the tracking link (/click/ads?fbclid=…)"),
        ("google", {"fbclid": "x"}, "the click has no gclid, gbraid or wbraid: Google Ads "
         "attributes a conversion to its ad click by one of them, so pass it on the tracking "
         "link (/click/ads?gclid=…)"),
        ("tiktok", {"ttclid": "  "}, "the click has no ttclid: TikTok attributes"),
        ("bing", {}, "the click has no msclkid: Microsoft Advertising attributes"),
    ],
)  # fmt: skip
def test_a_missing_click_id_stops_the_request(
    kind: str, params: dict[str, str], reason: str
) -> None:
    built = kinds.build(context(kind, params=params))
    assert built.request is None
    assert built.missing is not None and built.missing.startswith(reason)


@pytest.mark.parametrize(
    ("kind", "drop", "reason"),
    [
        ("facebook", "pixel_id", "postback 'facebook deposits' has no pixel_id: set pixel_id"),
        ("google", "customer_id", "postback 'google deposits' has no customer_id"),
        ("google", "conversion_action", "postback 'google deposits' has no conversion_action"),
        ("tiktok", "pixel_code", "postback 'tiktok deposits' has no pixel_code"),
        ("bing", "tag_id", "postback 'bing deposits' has no tag_id"),
    ],
)
def test_a_missing_setting_stops_the_request(kind: str, drop: str, reason: str) -> None:
    platform = {k: v for k, v in SETTINGS[kind].items() if k != drop}
    built = kinds.build(context(kind, platform))
    assert built.request is None
    assert built.missing is not None and built.missing.startswith(reason)


@pytest.mark.parametrize("kind", EXPECTED)
def test_without_an_access_token_the_request_is_built_but_not_sent(kind: str) -> None:
    platform = {k: v for k, v in SETTINGS[kind].items() if k != "access_token"}
    built = kinds.build(context(kind, platform))
    assert built.request is not None
    assert built.missing == "no access token: request recorded, not sent"
    assert "Authorization" not in built.request.headers
    assert "Access-Token" not in built.request.headers
    assert "access_token" not in built.request.url


def test_google_without_a_developer_token_is_not_sent() -> None:
    platform = {k: v for k, v in SETTINGS["google"].items() if k != "developer_token"}
    built = kinds.build(context("google", platform))
    assert built.request is not None
    assert built.missing == "no developer token: request recorded, not sent"


def test_env_values_are_read_and_a_missing_variable_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PW_PIXEL", "555")
    monkeypatch.setenv("PW_TOKEN", TOKEN)
    platform = {"pixel_id": "env:PW_PIXEL", "access_token": "env:PW_TOKEN"}
    built = kinds.build(context("facebook", platform))
    assert built.missing is None and built.request is not None
    assert "/555/events?access_token=EAAB****" in built.request.url
    monkeypatch.delenv("PW_TOKEN")
    built = kinds.build(context("facebook", platform))
    assert built.request is not None
    assert built.missing == (
        "the access token reads the environment variable PW_TOKEN, which is not set: "
        "request recorded, not sent"
    )
    monkeypatch.delenv("PW_PIXEL")
    built = kinds.build(context("facebook", platform))
    assert built.request is None
    assert built.missing == (
        "'pixel_id' of postback 'facebook deposits' reads the environment variable PW_PIXEL, "
        "which is not set"
    )


# -- hashing, against the platforms' published examples --------------------------------------


@pytest.mark.parametrize(
    ("normalise", "raw", "normalised", "digest"),
    [
        # Meta, customer information parameters: em and ph examples
        (hashing.meta_email, "  John_Smith@gmail.com ", "john_smith@gmail.com",
         "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
        (hashing.meta_phone, "+1 (650) 555-1212", "16505551212",
         "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
        (hashing.meta_phone, "001 650 555 1212", "16505551212",
         "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
        # Microsoft, UET Conversions API guide: "john@contoso.com" and "+14255551234"
        (hashing.microsoft_email, "John@Contoso.com", "john@contoso.com",
         "ec81f3ac7b2b19675bab9d54cf416f9f18cff87c97da5cca82c0f0891bc40602"),
        (hashing.microsoft_email, " Jo.hn+promo@contoso.com ", "john@contoso.com",
         "ec81f3ac7b2b19675bab9d54cf416f9f18cff87c97da5cca82c0f0891bc40602"),
        (hashing.e164_phone, "+1 425-555-1234", "+14255551234",
         "c59475d96e9f01d7d18d06cfad84dd02333207f02c0c2c5663ef2782cda0390e"),
        (hashing.e164_phone, "0014255551234", "+14255551234",
         "c59475d96e9f01d7d18d06cfad84dd02333207f02c0c2c5663ef2782cda0390e"),
    ],
)  # fmt: skip
def test_hashing_matches_published_examples(
    normalise: hashing.Normaliser, raw: str, normalised: str, digest: str
) -> None:
    assert normalise(raw) == normalised
    assert hashing.hashed(raw, normalise) == digest


@pytest.mark.parametrize(
    ("normalise", "raw", "normalised"),
    [
        (hashing.google_email, "Jane.Doe@GMail.com", "janedoe@gmail.com"),
        (hashing.google_email, "jane.doe@example.com", "jane.doe@example.com"),
        (hashing.tiktok_email, " Jane@Example.COM", "jane@example.com"),
        (hashing.meta_email, "not an email", None),
        (hashing.meta_phone, "call me", None),
        (hashing.e164_phone, "", None),
    ],
)
def test_normalisation_rules(
    normalise: hashing.Normaliser, raw: str, normalised: str | None
) -> None:
    assert normalise(raw) == normalised


def test_a_value_already_hashed_is_kept() -> None:
    digest = "EC81F3AC7B2B19675BAB9D54CF416F9F18CFF87C97DA5CCA82C0F0891BC40602"
    assert hashing.hashed(digest, hashing.microsoft_email) == digest.lower()


def test_user_data_on_the_click_is_sent_hashed_per_platform() -> None:
    params = {"email": "Jo.hn+promo@Contoso.com", "phone": "+1 425-555-1234"}
    meta = kinds.build(context("facebook", params={**CLICK_IDS["facebook"], **params}))
    bing = kinds.build(context("bing", params={**CLICK_IDS["bing"], **params}))
    tiktok = kinds.build(context("tiktok", params={**CLICK_IDS["tiktok"], **params}))
    google = kinds.build(context("google", params={**CLICK_IDS["google"], **params}))
    assert meta.request and bing.request and tiktok.request and google.request
    meta_user = json.loads(meta.request.body)["data"][0]["user_data"]
    assert meta_user["em"] == [hashing.sha256("jo.hn+promo@contoso.com")]
    assert meta_user["ph"] == [hashing.sha256("14255551234")]
    bing_user = json.loads(bing.request.body)["data"][0]["userData"]
    assert bing_user["em"] == "ec81f3ac7b2b19675bab9d54cf416f9f18cff87c97da5cca82c0f0891bc40602"
    assert bing_user["ph"] == "c59475d96e9f01d7d18d06cfad84dd02333207f02c0c2c5663ef2782cda0390e"
    tiktok_user = json.loads(tiktok.request.body)["data"][0]["user"]
    assert tiktok_user["email"] == hashing.sha256("jo.hn+promo@contoso.com")
    assert tiktok_user["phone"] == hashing.sha256("+14255551234")
    identifiers = json.loads(google.request.body)["conversions"][0]["userIdentifiers"]
    assert identifiers == [
        {"hashedEmail": hashing.sha256("jo.hn+promo@contoso.com")},
        {"hashedPhoneNumber": hashing.sha256("+14255551234")},
    ]
    bad = kinds.build(context("bing", params={**CLICK_IDS["bing"], "email": "nobody"}))
    assert bad.warnings == ["click parameter email is not an email address: it was not sent"]


# -- judging answers -------------------------------------------------------------------------


def attempt(kind: str, platform: dict[str, Any] | None = None, **wire: Any) -> Attempt:
    built = kinds.build(context(kind))
    assert built.request is not None
    return Attempt(
        id=1,
        decision_id=1,
        attempt=1,
        resend_of=None,
        kind=kind,
        method=wire.get("method", built.request.method),
        url=wire.get("url", built.request.url),
        headers=wire.get("headers", built.request.headers),
        body=wire.get("body", built.request.body),
        success_body="",
        failure_body="",
        platform=SETTINGS[kind] if platform is None else platform,
    )


META_ERROR = {
    "error": {
        "message": "Invalid OAuth access token.",
        "type": "OAuthException",
        "code": 190,
        "fbtrace_id": "AbC",
    }
}
GOOGLE_PARTIAL = {
    "partialFailureError": {
        "code": 3,
        "message": "The click identifier could not be decoded., at conversions[0].gclid",
        "details": [
            {
                "errors": [
                    {
                        "errorCode": {"conversionUploadError": "UNPARSEABLE_GCLID"},
                        "message": "The click identifier could not be decoded.",
                    }
                ]
            }
        ],
    },
    "results": [{}],
}
GOOGLE_401 = {
    "error": {
        "code": 401,
        "message": "Request is missing required authentication credential.",
        "status": "UNAUTHENTICATED",
    }
}
BING_400 = {
    "error": {
        "code": "ValidationError",
        "message": "One or multiple parameters did not pass validation checks, see details.",
        "details": [
            {
                "index": 0,
                "propertyName": "data[0].eventTime",
                "errorMessage": "'eventTime' must not be empty.",
            },
            {
                "index": 0,
                "propertyName": "data[0].userData.em",
                "errorMessage": "'em' must be a valid SHA256 string.",
            },
        ],
    }
}


@pytest.mark.parametrize(
    ("kind", "status", "answer", "error"),
    [
        ("facebook", 200, {"events_received": 1, "messages": [], "fbtrace_id": "x"}, None),
        ("facebook", 400, META_ERROR, "Meta answered HTTP 400 with an error: Invalid OAuth "
         "access token. (type OAuthException, code 190, fbtrace_id AbC)"),
        ("facebook", 200, META_ERROR, "Meta answered HTTP 200 with an error"),
        ("facebook", 502, "Bad gateway", "HTTP 502: Meta counts only a 2xx answer as received"),
        ("google", 200, {"results": [{"gclid": "G"}], "jobId": "1"}, None),
        ("google", 200, GOOGLE_PARTIAL, "Google Ads rejected the conversion (partialFailureError"
         ", code 3): The click identifier could not be decoded., at conversions[0].gclid; The "
         "click identifier could not be decoded. (conversionUploadError: UNPARSEABLE_GCLID)"),
        ("google", 401, GOOGLE_401, "Google Ads answered HTTP 401 (UNAUTHENTICATED): Request is "
         "missing required authentication credential."),
        ("tiktok", 200, {"code": 0, "message": "OK", "request_id": "r", "data": {}}, None),
        ("tiktok", 200, {"code": 40001, "message": "Auth failed", "request_id": "r"},
         "TikTok answered code 40001: Auth failed (request_id r)"),
        ("tiktok", 200, "OK", 'the answer has no JSON "code"'),
        ("tiktok", 500, {"code": 50000, "message": "busy"}, "HTTP 500: TikTok counts only a 2xx"),
        ("bing", 200, {"eventsReceived": 1}, None),
        ("bing", 400, BING_400, "Microsoft answered HTTP 400 (ValidationError): One or multiple "
         "parameters did not pass validation checks, see details. data[0].eventTime: 'eventTime'"
         " must not be empty.; data[0].userData.em: 'em' must be a valid SHA256 string."),
        ("bing", 401, {"error": {"code": "Unauthorized", "message": "You are not authorized to "
         "access this resource."}}, "Microsoft answered HTTP 401 (Unauthorized): You are not"),
    ],
)  # fmt: skip
def test_judges_read_each_platforms_answers(
    kind: str, status: int, answer: Any, error: str | None
) -> None:
    body = answer if isinstance(answer, str) else json.dumps(answer)
    verdict = kinds.judge(attempt(kind), status, body)
    if error is None:
        assert verdict is None
    else:
        assert verdict is not None and verdict.startswith(error), verdict


@pytest.mark.parametrize("kind", EXPECTED)
@pytest.mark.parametrize("error", [False, True])
def test_the_sinks_mimicked_answers_are_judged_like_the_platforms(kind: str, error: bool) -> None:
    wire = attempt(kind)
    status, body = mimic.answer(kind, error, wire.body)
    verdict = kinds.judge(wire, status, body)
    assert (verdict is not None) is error


# -- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", EXPECTED)
def test_the_preparer_puts_the_real_secret_back(kind: str) -> None:
    wire = kinds.prepare(attempt(kind))
    sent = wire.url + json.dumps(wire.headers)
    assert TOKEN in sent
    assert "****" not in sent
    assert wire.body == attempt(kind).body
    if kind == "google":
        assert wire.headers["developer-token"] == "DEVtokenABCDEFGH"


def test_the_preparer_reads_env_at_send_time(monkeypatch: pytest.MonkeyPatch) -> None:
    platform = {"tag_id": "1", "access_token": "env:PW_BING_TOKEN"}
    monkeypatch.setenv("PW_BING_TOKEN", "rotated-token-value-123")
    wire = kinds.prepare(attempt("bing", platform))
    assert wire.headers["Authorization"] == "Bearer rotated-token-value-123"
    monkeypatch.delenv("PW_BING_TOKEN")
    with pytest.raises(ValueError, match="environment variable PW_BING_TOKEN, which is not set"):
        kinds.prepare(attempt("bing", platform))
    with pytest.raises(ValueError, match="no access token is configured for this postback"):
        kinds.prepare(attempt("bing", {"tag_id": "1"}))


@pytest.mark.parametrize(
    ("secret", "shown"),
    [(TOKEN, "EAAB****"), ("short", "****"), ("", "****")],
)
def test_mask(secret: str, shown: str) -> None:
    assert common.mask(secret) == shown


def test_sink_side_masking_of_headers_query_and_settings() -> None:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Access-Token": TOKEN,
        "developer-token": "DEVtokenABCDEFGH",
        "login-customer-id": "1112223333",
        "Cookie": "x",
    }
    assert common.masked_headers(headers) == {
        "Authorization": "Bearer EAAB****",
        "Access-Token": "EAAB****",
        "developer-token": "DEVt****",
        "login-customer-id": "1112223333",
    }
    assert common.masked_query(f"a=1&access_token={TOKEN}") == "a=1&access_token=EAAB****"
    assert common.masked_query("visitor=1&payout=2") == "visitor=1&payout=2"
    shown = common.masked_settings({"access_token": TOKEN, "developer_token": "env:DEV"})
    assert shown == {"access_token": "EAAB****", "developer_token": "env:DEV"}


def test_with_query_replaces_the_parameter() -> None:
    url = "http://h/v1/1/events?access_token=EAAB****"
    assert common.with_query(url, "access_token", "a b") == "http://h/v1/1/events?access_token=a+b"


# -- config ----------------------------------------------------------------------------------

CONFIG = """
[[sinks]]
name = "meta"
mimic = "facebook"
error = true

[[offer_sources]]
name = "AffNet"

[[traffic_sources]]
name = "Ads"

[[campaigns]]
key = "ads"
traffic_source = "Ads"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "meta purchases"
kind = "facebook"
event_names = { Deposit = "Purchase" }
pixel_id = 1234567890
access_token = "env:META_TOKEN"
"""


def test_config_reads_and_writes_sink_mimic_and_platform_settings() -> None:
    workspace = parse(CONFIG)
    assert (workspace.sinks[0].mimic, workspace.sinks[0].error) == ("facebook", True)
    config = workspace.campaigns[0].postbacks[0]
    assert config.platform == {
        "pixel_id": 1234567890,
        "access_token": "env:META_TOKEN",
        "event_names": {"Deposit": "Purchase"},
    }
    again = parse(dump(workspace))
    assert again.sinks == workspace.sinks
    assert again.campaigns[0].postbacks[0].platform == config.platform
    ctx = replace(context("facebook"), config=replace(config, id=7))
    assert common.required(ctx, "pixel_id") == "1234567890"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('mimic = "facebook"', 'mimic = "linkedin"', "line 4: sink #1: 'mimic' is 'linkedin'; "
         "use one of: facebook, google, tiktok, bing (or leave it out)"),
        ("error = true", 'error = "yes"', "line 5: sink #1: 'error' must be true or false"),
        ('mimic = "facebook"', "", "line 5: sink #1: 'error' needs 'mimic'"),
        ('event_names = { Deposit = "Purchase" }', "event_names = { Deposit = 1 }",
         "line 21: campaign 'ads', postback 'meta purchases': 'event_names' must be a table of "
         "text"),
        ("pixel_id = 1234567890", "pixel_id = [1]", "line 22: campaign 'ads', postback 'meta "
         "purchases': 'pixel_id' must be text, not [1]"),
    ],
)  # fmt: skip
def test_config_refuses_bad_platform_values(old: str, new: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse(CONFIG.replace(old, new))
    assert str(refused.value).startswith(message)
