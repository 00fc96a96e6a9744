"""Meta Conversions API: ``POST {base_url}/{api_version}/{pixel_id}/events?access_token=…``.

One server event per conversion, attributed to the ad click by ``user_data.fbc``, which is
made from the click's ``fbclid`` as Meta documents for a value made server-side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from listener.outbound import Built, Context, Outbound
from listener.platforms import common, hashing
from listener.platforms.common import Platform
from store import platforms
from store.records import Attempt, Click

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v24.0"
FALLBACK_EVENT = "Purchase"


def fbc(click: Click, fbclid: str) -> str:
    """``fb.1.{click time in ms}.{fbclid}``: subdomain index 1, the time the fbclid was first
    seen (the click), the fbclid exactly as received (it is case-sensitive)."""
    return f"fb.1.{int(click.created_at * 1000)}.{fbclid}"


def event(ctx: Context, fbclid: str) -> tuple[dict[str, Any], list[str]]:
    """The server event of the conversion, and warnings."""
    name, warnings = common.event_name(ctx, FALLBACK_EVENT)
    hashed, user_warnings = common.identifiers(
        ctx, ("em", hashing.meta_email), ("ph", hashing.meta_phone)
    )
    # Meta takes a list of hashes for each customer information parameter.
    user = {"fbc": fbc(ctx.click, fbclid), **{key: [digest] for key, digest in hashed.items()}}
    custom, value_warnings = common.amounts(ctx, "value", "currency", "order_id")
    data = {
        "event_name": name,
        "event_time": int(ctx.now),
        "event_id": common.event_id(ctx),
        "action_source": common.setting(ctx, "action_source", "website"),
        "user_data": user,
        "custom_data": custom,
    }
    return data, warnings + user_warnings + value_warnings


def request(platform: Platform, ctx: Context, needed: Mapping[str, str]) -> Built:
    """The Conversions API request of a conversion (secret masked)."""
    url = (
        f"{common.base_url(ctx, DEFAULT_BASE_URL)}/"
        f"{common.setting(ctx, 'api_version', DEFAULT_API_VERSION)}/{needed['pixel_id']}/events"
    )
    test_event_code = common.setting(ctx, "test_event_code")
    data, warnings = event(ctx, common.click(ctx, platform).value)
    body: dict[str, Any] = {"data": [data]}
    if test_event_code:
        body["test_event_code"] = test_event_code
    token, not_sent = common.masked_secret(ctx, "access_token", "access token")
    if token is not None:
        url += "?" + urlencode({"access_token": token}, safe="*")
    outbound = Outbound("POST", url, {"Content-Type": "application/json"}, common.to_json(body))
    return Built(outbound, not_sent, warnings)


def judge(attempt: Attempt, status: int, body: str) -> str | None:
    """A 2xx without an ``error`` object counts as received."""
    error = common.error_object(common.from_json(body))
    if error is not None:
        details = [
            f"{label} {error[key]}"
            for key, label in (
                ("type", "type"),
                ("code", "code"),
                ("error_subcode", "subcode"),
                ("fbtrace_id", "fbtrace_id"),
            )
            if error.get(key) not in (None, "")
        ]
        message = str(error.get("message") or "no message")
        if error.get("error_user_msg"):
            message += f": {error['error_user_msg']}"
        return f"Meta answered HTTP {status} with an error: {message} ({', '.join(details)})"
    if not 200 <= status < 300:
        return f"HTTP {status}: Meta counts only a 2xx answer as received"
    return None


def prepare(attempt: Attempt) -> Attempt:
    """The attempt with the real access token in its URL."""
    token = common.real_secret(attempt.platform, "access_token", "access token")
    return replace(attempt, url=common.with_query(attempt.url, "access_token", token))


def mimic(body: str, error: bool) -> tuple[int, Any]:
    """Meta's answer: events received, or its error for a malformed parameter."""
    if error:
        return 400, {
            "error": {
                "message": "Invalid parameter",
                "type": "OAuthException",
                "code": 100,
                "error_subcode": 2804050,
                "is_transient": False,
                "error_user_title": "Invalid parameter",
                "error_user_msg": "The fbc parameter is malformed (postwatch sink answering "
                "like Meta).",
                "fbtrace_id": common.TRACE_ID,
            }
        }
    return 200, {
        "events_received": len(common.requested(body, "data")) or 1,
        "messages": [],
        "fbtrace_id": common.TRACE_ID,
    }


PLATFORM = Platform(
    settings=platforms.FACEBOOK,
    label="Meta",
    required=("pixel_id",),
    click_ids=("fbclid",),
    request=request,
    judge=judge,
    prepare=prepare,
    mimic=mimic,
)
