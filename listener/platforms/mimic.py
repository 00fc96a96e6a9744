"""Answers in each ad platform's documented shapes, for a sink standing in for the platform.

A ``[[sinks]]`` entry with ``mimic = "facebook" | "google" | "tiktok" | "bing"`` answers like
that platform: its success answer, or (``error = true``, or the ``fail_ratio`` share) its
documented error for a request it refuses. Each platform module writes its own answers (its
``Platform.mimic``); they carry "postwatch-sink" (``common.TRACE_ID``) as their trace or
request id (and the error messages say so where the shape has no id), so a demo never passes
them off as the platform's own.
"""

from __future__ import annotations

import json

from listener.platforms import PLATFORMS


def answer(platform: str, error: bool, body: str) -> tuple[int, str]:
    """The status and JSON body ``platform`` would answer to a request with this body."""
    status, data = PLATFORMS[platform].mimic(body, error)
    return status, json.dumps(data)
