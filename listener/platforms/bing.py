"""Microsoft Advertising UET Conversions API: ``POST {base_url}/v1/{tag_id}/events``.

A custom event per conversion, attributed to the ad click by ``userData.msclkid``. Microsoft
answers 200 on success and 400 with ``error.details`` (one entry per invalid field) when it
refuses the request, and 401 for a wrong token.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from listener.outbound import Built, Context, Outbound
from listener.platforms import common, hashing
from store.records import Attempt

DEFAULT_BASE_URL = "https://capi.uet.microsoft.com"
FALLBACK_EVENT = "purchase"


def event(ctx: Context, msclkid: str) -> tuple[dict[str, Any], list[str]]:
    """The custom event of the conversion, and warnings."""
    name, warnings = common.event_name(ctx, FALLBACK_EVENT)
    user: dict[str, Any] = {"msclkid": msclkid}
    email, phone, user_warnings = common.user_data(ctx, hashing.microsoft_email, hashing.e164_phone)
    if email:
        user["em"] = email
    if phone:
        user["ph"] = phone
    custom: dict[str, Any] = {}
    value = common.value(ctx)
    if value is not None:
        custom["value"] = value
    custom["currency"] = common.currency(ctx)
    if ctx.conversion.txid:
        custom["transactionId"] = ctx.conversion.txid
    data = {
        "eventType": "custom",
        "eventName": name,
        "eventTime": int(ctx.now),
        "eventId": common.event_id(ctx),
        "userData": user,
        "customData": custom,
    }
    return data, warnings + user_warnings + common.value_warnings(ctx)


def build(ctx: Context) -> Built:
    """The Conversions API request of a conversion (secret masked)."""
    try:
        tag_id = common.required(ctx, "tag_id")
        url = f"{common.base_url(ctx, DEFAULT_BASE_URL)}/v1/{tag_id}/events"
        data, warnings = event(ctx, common.click_id(ctx, "msclkid", "Microsoft Advertising"))
    except common.Missing as missing:
        return Built(None, str(missing))
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
