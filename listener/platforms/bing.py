"""Microsoft Advertising UET Conversions API: ``POST {base_url}/v1/{tag_id}/events``.

A custom event per conversion, attributed to the ad click by ``userData.msclkid``. Microsoft
answers 200 on success and 400 with ``error.details`` (one entry per invalid field) when it
refuses the request, and 401 for a wrong token.
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

DEFAULT_BASE_URL = "https://capi.uet.microsoft.com"
FALLBACK_EVENT = "purchase"


def event(ctx: Context, msclkid: str) -> tuple[dict[str, Any], list[str]]:
    """The custom event of the conversion, and warnings."""
    name, warnings = common.event_name(ctx, FALLBACK_EVENT)
    hashed, user_warnings = common.identifiers(
        ctx, ("em", hashing.microsoft_email), ("ph", hashing.e164_phone)
    )
    custom, value_warnings = common.amounts(ctx, "value", "currency", "transactionId")
    data = {
        "eventType": "custom",
        "eventName": name,
        "eventTime": int(ctx.now),
        "eventId": common.event_id(ctx),
        "userData": {"msclkid": msclkid, **hashed},
        "customData": custom,
    }
    return data, warnings + user_warnings + value_warnings


def request(platform: Platform, ctx: Context, needed: Mapping[str, str]) -> Built:
    """The Conversions API request of a conversion (secret masked)."""
    url = f"{common.base_url(ctx, DEFAULT_BASE_URL)}/v1/{needed['tag_id']}/events"
    data, warnings = event(ctx, common.click(ctx, platform).value)
    headers = {"Content-Type": "application/json"}
    token, not_sent = common.masked_secret(ctx, "access_token", "access token")
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = {"data": [data]}
    return Built(Outbound("POST", url, headers, common.to_json(body)), not_sent, warnings)


def judge(attempt: Attempt, status: int, body: str) -> str | None:
    """A 2xx without an ``error`` object counts as received; an error's details (the field
    and what is wrong with it) are named."""
    error = common.error_object(common.from_json(body))
    if error is None:
        if 200 <= status < 300:
            return None
        return f"HTTP {status}: Microsoft counts only a 2xx answer as received"
    details = [
        f"{detail.get('propertyName', '?')}: {detail.get('errorMessage', '')}"
        for detail in error.get("details") or []
        if isinstance(detail, dict) and not detail.get("isWarning")
    ]
    if 200 <= status < 300 and not details:
        return None  # warnings only
    text = str(error.get("message") or "no message")
    if details:
        text += " " + "; ".join(details)
    return f"Microsoft answered HTTP {status} ({error.get('code', 'error')}): {text}"


def prepare(attempt: Attempt) -> Attempt:
    """The attempt with the real access token in its ``Authorization`` header."""
    headers = dict(attempt.headers)
    token = common.real_secret(attempt.platform, "access_token", "access token")
    headers["Authorization"] = f"Bearer {token}"
    return replace(attempt, headers=headers)


def mimic(body: str, error: bool) -> tuple[int, Any]:
    """Microsoft's answer: events received, or its validation error naming the field."""
    if error:
        return 400, {
            "error": {
                "code": "ValidationError",
                "message": "One or multiple parameters did not pass validation checks, see "
                "details (postwatch sink answering like Microsoft).",
                "details": [
                    {
                        "index": 0,
                        "propertyName": "data[0].userData.msclkid",
                        "errorMessage": "'msclkid' must be a valid click id.",
                    }
                ],
            }
        }
    return 200, {"eventsReceived": len(common.requested(body, "data")) or 1}


PLATFORM = Platform(
    settings=platforms.BING,
    label="Microsoft Advertising",
    required=("tag_id",),
    click_ids=("msclkid",),
    request=request,
    judge=judge,
    prepare=prepare,
    mimic=mimic,
)
