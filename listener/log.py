"""The listener's log: one line per request (with its outcome, reason or decisions) and one
per failed delivery attempt, on stderr, as text or JSON lines.

Loggers live under ``postwatch``; nothing is printed until ``configure`` adds the handler (the
dashboard never does: stderr is its screen). Request lines are the hot path, thousands a
second: they are written straight to that handler's batch, without a ``LogRecord`` each,
which would cost a postback more than a tenth of its time.
"""

from __future__ import annotations

import asyncio
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
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _stamp(created: float, cache: dict[int, str] = {}) -> str:  # noqa: B006 (the cache)
    """``2026-12-01T21:56:13.465Z``: the second's text is made once per second."""
    second = int(created)
    text = cache.get(second)
    if text is None:
        cache.clear()
        text = cache[second] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{text}.{int((created - second) * 1000):03d}Z"


def _line(created: float, level: str, logger: str, message: str, fields: dict[str, Any]) -> str:
    """A line as ``--log-format`` says: ``time message``, or a JSON object."""
    if _writer is None or not _writer.json:
        return f"{_stamp(created)} {message}"
    head = {"time": _stamp(created), "level": level, "logger": logger, "message": message}
    return _encode(head | fields)


class Lines(logging.Formatter):
    """Formats a record as ``_line`` does, its ``extra`` fields in the JSON."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return _line(record.created, record.levelname.lower(), record.name, message, fields)


class BatchedStream(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines to stderr in batches, so that a line per request costs no system call of
    its own: within FLUSH_SECONDS on the event loop, at once for a warning or worse, off the
    loop, or when many wait; and at exit (``logging.shutdown`` flushes every handler)."""

    FLUSH_SECONDS = 0.2
    MOST = 512

    def __init__(self, json_lines: bool) -> None:
        super().__init__(sys.stderr)
        self.json = json_lines
        self.setFormatter(Lines())
        self._lines: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.add(line, urgent=record.levelno >= logging.WARNING)

    def add(self, line: str, urgent: bool = False) -> None:
        self._lines.append(line)
        if urgent or len(self._lines) >= self.MOST:
            self.flush()
        elif not self._scheduled:
            try:
                asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)
                self._scheduled = True
            except RuntimeError:  # not on the event loop's thread
                self.flush()

    def flush(self) -> None:
        self._scheduled = False
        lines, self._lines = self._lines, []
        if lines:
            self.stream.write("\n".join(lines) + "\n")
        super().flush()


_writer: BatchedStream | None = None  # set by configure; request lines go to it


def configure(level: str = "info", form: str = "text") -> None:
    """Log to stderr at ``level`` (one of LEVELS), as ``text`` or ``json`` lines."""
    global _writer
    _writer = BatchedStream(json_lines=form == "json")
    root.addHandler(_writer)
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


def answered(request: InboundRequest, answer: Answer, *, at: float) -> None:
    """Log one line (INFO, ``postwatch.inbound``) for a request answered at ``at`` (the
    listener's clock)."""
    writer = _writer
    if writer is None or not inbound.isEnabledFor(logging.INFO):
        return  # the hot path pays nothing when quiet
    target = request.path + (f"?{request.query}" if request.query else "")
    message = f"{request.remote} {request.method} {target} {answer.status} {_summary(answer)}"
    fields: dict[str, Any] = {}
    if writer.json:
        fields = {
            "remote": request.remote,
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "status": answer.status,
            "outcome": "rejected" if "error" in answer.body else "accepted",
            "reason": answer.body.get("error", ""),
            "decisions": answer.body.get("decisions", []),
        }
    writer.add(_line(at, "info", inbound.name, message, fields))


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
