"""TikTok Events API 1.3: ``POST {base_url}/open_api/v1.3/event/track/``.

A web event per conversion, attributed to the ad click by ``user.ttclid``. TikTok answers
HTTP 200 to nearly everything: its JSON ``code`` says whether the event was taken (0) or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from listener.outbound import Built, Context, Outbound
from listener.platforms import common, hashing
from listener.platforms.common import Platform
from store import platforms
from store.records import Attempt

DEFAULT_BASE_URL = "https://business-api.tiktok.com"
PATH = "/open_api/v1.3/event/track/"
FALLBACK_EVENT = "CompletePayment"


def event(ctx: Context, ttclid: str) -> tuple[dict[str, Any], list[str]]:
    """The web event of the conversion, and warnings."""
    name, warnings = common.event_name(ctx, FALLBACK_EVENT)
    hashed, user_warnings = common.identifiers(
        ctx, ("email", hashing.tiktok_email), ("phone", hashing.e164_phone)
    )
    properties, value_warnings = common.amounts(ctx, "value", "currency", "order_id")
    data = {
        "event": name,
        "event_time": int(ctx.now),
        "event_id": common.event_id(ctx),
        "user": {"ttclid": ttclid, **hashed},
        "properties": properties,
    }
    return data, warnings + user_warnings + value_warnings


def request(platform: Platform, ctx: Context, needed: Mapping[str, str]) -> Built:
    """The Events API request of a conversion (secret masked)."""
    url = common.base_url(ctx, DEFAULT_BASE_URL) + PATH
    test_event_code = common.setting(ctx, "test_event_code")
    data, warnings = event(ctx, common.click(ctx, platform).value)
    body: dict[str, Any] = {
        "event_source": "web",
        "event_source_id": needed["pixel_code"],
        "data": [data],
    }
    if test_event_code:
        body["test_event_code"] = test_event_code
    headers = {"Content-Type": "application/json"}
    token, not_sent = common.masked_secret(ctx, "access_token", "access token")
    if token is not None:
        headers["Access-Token"] = token
    return Built(Outbound("POST", url, headers, common.to_json(body)), not_sent, warnings)


def judge(attempt: Attempt, status: int, body: str) -> str | None:
    """Only a 2xx whose JSON ``code`` is 0 counts as taken."""
    answer = common.from_json(body)
    code = answer.get("code") if isinstance(answer, dict) else None
    message = answer.get("message") if isinstance(answer, dict) else None
    request_id = answer.get("request_id") if isinstance(answer, dict) else None
    said = f": {message}" if message else ""
    said += f" (request_id {request_id})" if request_id else ""
    if not 200 <= status < 300:
        return f"HTTP {status}: TikTok counts only a 2xx answer with code 0 as taken{said}"
    if code is None:
        return 'the answer has no JSON "code": TikTok answers {"code": 0, …} when it takes an event'
    if code != 0:
        return f"TikTok answered code {code}{said}"
    return None


def prepare(attempt: Attempt) -> Attempt:
    """The attempt with the real access token in its ``Access-Token`` header."""
    headers = dict(attempt.headers)
    headers["Access-Token"] = common.real_secret(attempt.platform, "access_token", "access token")
    return replace(attempt, headers=headers)


def mimic(body: str, error: bool) -> tuple[int, Any]:
    """TikTok's answer: HTTP 200 either way, its JSON ``code`` 0 or an error code."""
    if error:
        return 200, {
            "code": 40002,
            "message": "Invalid value for ttclid (postwatch sink answering like TikTok).",
            "request_id": common.TRACE_ID,
            "data": {},
        }
    return 200, {"code": 0, "message": "OK", "request_id": common.TRACE_ID, "data": {}}


PLATFORM = Platform(
    settings=platforms.TIKTOK,
    label="TikTok",
    required=("pixel_code",),
    click_ids=("ttclid",),
    request=request,
    judge=judge,
    prepare=prepare,
    mimic=mimic,
)
