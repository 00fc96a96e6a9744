"""The listener's log: one line per request (with its outcome, reason or decisions) and one
per failed delivery attempt, on stderr, as text or JSON lines.

Loggers live under ``postwatch``; nothing is printed until ``configure`` adds a handler (the
dashboard never does: stderr is its screen).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from store.records import InboundRequest

if TYPE_CHECKING:
    from listener.pipeline import Answer

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")

root = logging.getLogger("postwatch")
root.addHandler(logging.NullHandler())  # no "last resort" printing on the dashboard's screen
inbound = logging.getLogger("postwatch.inbound")

# What every LogRecord has; anything else on a record came from ``extra`` and goes into JSON.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str = "info", form: str = "text") -> None:
    """Log to stderr at ``level`` (one of LEVELS), as ``text`` or ``json`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    if form == "json":
        handler.setFormatter(JsonLines())
    else:
        formatter = logging.Formatter("%(asctime)s.%(msecs)03dZ %(message)s", "%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level.upper())


def _summary(answer: Answer) -> str:
    """The outcome in a few words: the error, or the conversion and each decision."""
    body = answer.body
    if "error" in body:
        return f"rejected: {body['error']}"
    if "ignored" in body:
        return f"accepted, ignored: {body['ignored']}"
    if "conversion_id" not in body:
        return f"accepted: click {body.get('clickid', '')}"
    decisions = "; ".join(
        f"{d['verdict']} '{d['postback']}'"
        + (f": {' '.join(d['reasons'])}" if d["reasons"] else "")
        for d in body["decisions"]
    )
    text = f"accepted: conversion {body['conversion_id']} {body['change']} ({body['status']})"
    return f"{text}; {decisions}" if decisions else text


def answered(request: InboundRequest, answer: Answer) -> None:
    """Log one line for an answered request."""
    if not inbound.isEnabledFor(logging.INFO):  # the hot path pays nothing when quiet
        return
    target = request.path + (f"?{request.query}" if request.query else "")
    inbound.info(
        "%s %s %s %s %s",
        request.remote,
        request.method,
        target,
        answer.status,
        _summary(answer),
        extra={
            "remote": request.remote,
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "status": answer.status,
            "outcome": "rejected" if "error" in answer.body else "accepted",
            "reason": answer.body.get("error", ""),
            "decisions": answer.body.get("decisions", []),
        },
    )


def unavailable(request: InboundRequest, error: Exception) -> None:
    """Log a request that could not be stored (answered 503)."""
    inbound.error(
        "%s %s %s 503 not stored: the database could not take the write (%s)",
        request.remote,
        request.method,
        request.path,
        error,
        extra={"remote": request.remote, "method": request.method, "path": request.path},
    )
