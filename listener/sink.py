"""The built-in sink: a stand-in for a traffic source or an ad platform, so that the whole
loop runs on one machine. It records every request and answers as its settings say."""

from __future__ import annotations

import asyncio
import random
import sqlite3

from aiohttp import web

from listener.capture import capture
from listener.keys import SETTINGS, STORE
from listener.platforms import common as platform_common
from listener.platforms import mimic
from store import events, workspace
from store.records import Sink


def answer(behaviour: Sink, body: str) -> tuple[int, str]:
    """The status and body a sink answers a request (with ``body``) with."""
    failing = behaviour.fail_ratio > 0 and random.random() < behaviour.fail_ratio
    if behaviour.mimic:  # the platform's own answer shapes; failing answers its error
        return mimic.answer(behaviour.mimic, behaviour.error or failing, body)
    if failing:
        return 500, "sink failure (fail_ratio)"
    return behaviour.status, behaviour.body


async def sink(request: web.Request) -> web.Response:
    """Record the request, then answer it with the sink's status, body and delay."""
    name = request.match_info["name"]
    captured, _, _, _ = await capture(request, "sink", request.app[SETTINGS].max_body)
    # An ad platform's credentials are kept like everywhere else: masked.
    captured.headers.update(platform_common.masked_headers(request.headers))
    captured.query = platform_common.masked_query(captured.query)

    def job(conn: sqlite3.Connection) -> tuple[int, str, int]:
        behaviour = workspace.sink(conn, name)
        status, body = answer(behaviour, captured.body)
        events.insert_sink_record(conn, name, captured, status)
        return status, body, behaviour.delay_ms

    status, body, delay_ms = await request.app[STORE].write(job)
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    content_type = "application/json" if body.lstrip().startswith(("{", "[")) else "text/plain"
    return web.Response(status=status, text=body, content_type=content_type)
