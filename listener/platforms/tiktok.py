"""TikTok Events API 1.3: ``POST {base_url}/open_api/v1.3/event/track/``.

A web event per conversion, attributed to the ad click by ``user.ttclid``. TikTok answers
HTTP 200 to nearly everything: its JSON ``code`` says whether the event was taken (0) or not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from listener.outbound import Built, Context, Outbound
from listener.platforms import common, hashing
from store.records import Attempt

DEFAULT_BASE_URL = "https://business-api.tiktok.com"
PATH = "/open_api/v1.3/event/track/"
FALLBACK_EVENT = "CompletePayment"


def event(ctx: Context, ttclid: str) -> tuple[dict[str, Any], list[str]]:
    """The web event of the conversion, and warnings."""
    name, warnings = common.event_name(ctx, FALLBACK_EVENT)
    user: dict[str, Any] = {"ttclid": ttclid}
    email, phone, user_warnings = common.user_data(ctx, hashing.tiktok_email, hashing.e164_phone)
    if email:
        user["email"] = email
    if phone:
        user["phone"] = phone
    properties: dict[str, Any] = {}
    value = common.value(ctx)
    if value is not None:
        properties["value"] = value
    properties["currency"] = common.currency(ctx)
    if ctx.conversion.txid:
        properties["order_id"] = ctx.conversion.txid
    data = {
        "event": name,
        "event_time": int(ctx.now),
        "event_id": common.event_id(ctx),
        "user": user,
        "properties": properties,
    }
    return data, warnings + user_warnings + common.value_warnings(ctx)


def build(ctx: Context) -> Built:
    """The Events API request of a conversion (secret masked)."""
    try:
        pixel_code = common.required(ctx, "pixel_code")
        url = common.base_url(ctx, DEFAULT_BASE_URL) + PATH
        test_event_code = common.setting(ctx, "test_event_code")
        data, warnings = event(ctx, common.click_id(ctx, "ttclid", "TikTok"))
    except common.Missing as missing:
        return Built(None, str(missing))
    body: dict[str, Any] = {"event_source": "web", "event_source_id": pixel_code, "data": [data]}
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
