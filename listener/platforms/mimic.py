"""Answers in each ad platform's documented shapes, for a sink standing in for the platform.

A ``[[sinks]]`` entry with ``mimic = "facebook" | "google" | "tiktok" | "bing"`` answers like
that platform: its success answer, or (``error = true``, or the ``fail_ratio`` share) its
documented error for a request it refuses. The answers carry "postwatch-sink" as their trace
or request id (and the error messages say so where the shape has no id), so a demo never passes
them off as the platform's own.
"""

from __future__ import annotations

import json
from typing import Any

from listener.platforms import common

TRACE_ID = "postwatch-sink"


def _events(body: str, key: str) -> list[dict[str, Any]]:
    request = common.from_json(body)
    items = request.get(key) if isinstance(request, dict) else None
    return [item for item in items or [] if isinstance(item, dict)]


def facebook(body: str, error: bool) -> tuple[int, Any]:
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
                "fbtrace_id": TRACE_ID,
            }
        }
    return 200, {
        "events_received": len(_events(body, "data")) or 1,
        "messages": [],
        "fbtrace_id": TRACE_ID,
    }


def google(body: str, error: bool) -> tuple[int, Any]:
    conversions = _events(body, "conversions")
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
                        "requestId": TRACE_ID,
                    }
                ],
            },
            "results": [{} for _ in conversions] or [{}],
            "jobId": "0",
        }
    keys = ("gclid", "gbraid", "wbraid", "conversionAction", "conversionDateTime")
    return 200, {
        "results": [{k: c[k] for k in keys if k in c} for c in conversions] or [{}],
        "jobId": "0",
    }


def tiktok(body: str, error: bool) -> tuple[int, Any]:
    if error:
        return 200, {
            "code": 40002,
            "message": "Invalid value for ttclid (postwatch sink answering like TikTok).",
            "request_id": TRACE_ID,
            "data": {},
        }
    return 200, {"code": 0, "message": "OK", "request_id": TRACE_ID, "data": {}}


def bing(body: str, error: bool) -> tuple[int, Any]:
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
    return 200, {"eventsReceived": len(_events(body, "data")) or 1}


MIMICS = {"facebook": facebook, "google": google, "tiktok": tiktok, "bing": bing}


def answer(platform: str, error: bool, body: str) -> tuple[int, str]:
    """The status and JSON body ``platform`` would answer to a request with this body."""
    status, data = MIMICS[platform](body, error)
    return status, json.dumps(data)
