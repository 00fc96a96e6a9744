"""Google Ads API: ``POST {base_url}/{api_version}/customers/{customer_id}:uploadClickConversions``.

One click conversion per request, with exactly one of the click's ``gclid``, ``gbraid`` or
``wbraid``, sent with ``partialFailure`` on: Google then answers 200 even when it rejects the
conversion, and says so in ``partialFailureError``, which counts as a failure here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from listener.outbound import Built, Context, Outbound
from listener.platforms import common, hashing
from listener.platforms.common import Platform
from store import platforms
from store.records import Attempt

DEFAULT_BASE_URL = "https://googleads.googleapis.com"
DEFAULT_API_VERSION = "v25"


def conversion_date_time(at: float) -> str:
    """``yyyy-mm-dd hh:mm:ss+hh:mm`` (UTC, so +00:00)."""
    return datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def customer_digits(value: str, key: str) -> str:
    """A customer id as Google wants it in URLs and headers: its digits, no dashes."""
    digits = value.replace("-", "").strip()
    if not digits.isdigit():
        raise common.Missing(
            f"{key} '{value}' is not a Google Ads customer id: write its 10 digits, "
            "with or without dashes"
        )
    return digits


def conversion_action(ctx: Context, customer_id: str) -> str:
    """The conversion action's resource name: ``event_names`` maps a conversion type to one,
    else ``conversion_action``; a bare id becomes ``customers/{id}/conversionActions/{id}``."""
    action = common.mapped_name(ctx) or common.setting(ctx, "conversion_action")
    if not action:
        raise common.Missing(
            f"postback '{ctx.config.name}' has no conversion_action: set conversion_action "
            "(or event_names for this conversion type) in its [[campaigns.postbacks]] table"
        )
    if action.isdigit():
        return f"customers/{customer_id}/conversionActions/{action}"
    return action


def conversion(
    ctx: Context, click: common.ClickId, customer_id: str
) -> tuple[dict[str, Any], list[str]]:
    """The click conversion, and warnings."""
    data: dict[str, Any] = {
        click.name: click.value,
        "conversionAction": conversion_action(ctx, customer_id),
        "conversionDateTime": conversion_date_time(ctx.now),
    }
    amounts, value_warnings = common.amounts(ctx, "conversionValue", "currencyCode", "orderId")
    data.update(amounts)
    hashed, user_warnings = common.identifiers(
        ctx, ("hashedEmail", hashing.google_email), ("hashedPhoneNumber", hashing.e164_phone)
    )
    # User identifiers (enhanced conversions for leads) go with a gclid only.
    if hashed and click.name == "gclid":
        data["userIdentifiers"] = [{key: digest} for key, digest in hashed.items()]
    return data, click.warnings + user_warnings + value_warnings


def request(platform: Platform, ctx: Context, needed: Mapping[str, str]) -> Built:
    """The uploadClickConversions request of a conversion (secrets masked)."""
    customer_id = customer_digits(needed["customer_id"], "customer_id")
    login = common.setting(ctx, "login_customer_id")
    login = customer_digits(login, "login_customer_id") if login else ""
    url = (
        f"{common.base_url(ctx, DEFAULT_BASE_URL)}/"
        f"{common.setting(ctx, 'api_version', DEFAULT_API_VERSION)}/"
        f"customers/{customer_id}:uploadClickConversions"
    )
    data, warnings = conversion(ctx, common.click(ctx, platform), customer_id)
    headers = {"Content-Type": "application/json"}
    token, no_token = common.masked_secret(ctx, "access_token", "access token")
    developer, no_developer = common.masked_secret(ctx, "developer_token", "developer token")
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if developer is not None:
        headers["developer-token"] = developer
    if login:
        headers["login-customer-id"] = login
    body = {"conversions": [data], "partialFailure": True}
    outbound = Outbound("POST", url, headers, common.to_json(body))
    return Built(outbound, no_token or no_developer, warnings)


def _failures(error: dict[str, Any]) -> list[str]:
    """The GoogleAdsFailure errors in a status's details: 'message (kind: CODE)'."""
    found = []
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        for failure in detail.get("errors") or []:
            if not isinstance(failure, dict):
                continue
            codes = ", ".join(
                f"{kind}: {code}" for kind, code in (failure.get("errorCode") or {}).items()
            )
            message = str(failure.get("message") or "no message")
            found.append(f"{message} ({codes})" if codes else message)
    return found


def _status_text(error: dict[str, Any]) -> str:
    failures = _failures(error)
    return str(error.get("message") or "no message") + (
        f"; {'; '.join(failures)}" if failures else ""
    )


def judge(attempt: Attempt, status: int, body: str) -> str | None:
    """A 2xx without a ``partialFailureError`` counts as uploaded."""
    answer = common.from_json(body)
    if not 200 <= status < 300:
        error = common.error_object(answer)
        if error is None:
            return f"HTTP {status}: Google Ads counts only a 2xx answer as uploaded"
        return f"Google Ads answered HTTP {status} ({error.get('status', 'error')}): " + (
            _status_text(error)
        )
    failure = answer.get("partialFailureError") if isinstance(answer, dict) else None
    if isinstance(failure, dict) and (failure.get("code") or failure.get("message")):
        return (
            f"Google Ads rejected the conversion (partialFailureError, code "
            f"{failure.get('code', '?')}): {_status_text(failure)}"
        )
    return None


def prepare(attempt: Attempt) -> Attempt:
    """The attempt with the real access token and developer token in its headers."""
    headers = dict(attempt.headers)
    token = common.real_secret(attempt.platform, "access_token", "access token")
    headers["Authorization"] = f"Bearer {token}"
    headers["developer-token"] = common.real_secret(
        attempt.platform, "developer_token", "developer token"
    )
    return replace(attempt, headers=headers)


def mimic(body: str, error: bool) -> tuple[int, Any]:
    """Google's answer: the uploaded conversions, or (with HTTP 200, as under partialFailure)
    its partialFailureError for a click id it cannot decode."""
    conversions = common.requested(body, "conversions")
    if error:
        return 200, {
            "partialFailureError": {
                "code": 3,
                "message": "The click identifier could not be decoded., at conversions[0].gclid",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.ads.googleads.v25.errors."
                        "GoogleAdsFailure",
                        "errors": [
                            {
                                "errorCode": {"conversionUploadError": "UNPARSEABLE_GCLID"},
                                "message": "The click identifier could not be decoded.",
                                "location": {
                                    "fieldPathElements": [
                                        {"fieldName": "conversions", "index": 0},
                                        {"fieldName": "gclid"},
                                    ]
                                },
                            }
                        ],
                        "requestId": common.TRACE_ID,
                    }
                ],
            },
            "results": [{} for _ in conversions] or [{}],
            "jobId": "0",
        }
    keys = (*PLATFORM.click_ids, "conversionAction", "conversionDateTime")
    return 200, {
        "results": [{k: c[k] for k in keys if k in c} for c in conversions] or [{}],
        "jobId": "0",
    }


PLATFORM = Platform(
    settings=platforms.GOOGLE,
    label="Google Ads",
    required=("customer_id",),
    click_ids=("gclid", "gbraid", "wbraid"),  # in order of preference; Google takes one
    request=request,
    judge=judge,
    prepare=prepare,
    mimic=mimic,
)
