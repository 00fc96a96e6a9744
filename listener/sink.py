"""The built-in sink: a stand-in for a traffic source or an ad platform, so that the whole
loop runs on one machine. It records every request and answers as its settings say."""

from __future__ import annotations

import asyncio
import random
import socket
import sqlite3
import struct

from aiohttp import web

from listener.access import is_loopback
from listener.capture import capture
from listener.keys import ACCESS, SETTINGS, STORE
from listener.platforms import common as platform_common
from listener.platforms import mimic
from store import events, workspace
from store.jsontext import dumps
from store.records import Sink


def answer(behaviour: Sink, body: str) -> tuple[int, str]:
    """The status and body a sink answers a request (with ``body``) with."""
    failing = behaviour.fail_ratio > 0 and random.random() < behaviour.fail_ratio
    if behaviour.mimic:  # the platform's own answer shapes; failing answers its error
        return mimic.answer(behaviour.mimic, behaviour.error or failing, body)
    if failing:
        return 500, "sink failure (fail_ratio)"
    return behaviour.status, behaviour.body


async def sink(request: web.Request) -> web.StreamResponse:
    """Record the request, then answer it with the sink's status, body and delay."""
    name = request.match_info["name"]
    access = request.app[ACCESS]
    captured, params, _, _ = await capture(request, "sink", request.app[SETTINGS].max_body, access)
    # The listener's own deliveries come from loopback; anyone else is guarded like /postback.
    refused = (
        None
        if is_loopback(captured.remote)
        else access.refusal(captured.remote, params, request.headers)
    )
    # An ad platform's credentials are kept like everywhere else: masked.
    captured.headers.update(platform_common.masked_headers(request.headers))
    captured.query = platform_common.masked_query(captured.query)

    def job(conn: sqlite3.Connection) -> tuple[Sink, int, str]:
        behaviour = workspace.sink(conn, name)
        if refused is not None:  # recorded too, with the answer it got
            status, body = refused.status, dumps({"error": refused.reason})
        else:
            status, body = answer(behaviour, captured.body)
        events.insert_sink_record(conn, name, captured, status)
        return behaviour, status, body

    behaviour, status, body = await request.app[STORE].write(job)
    if refused is not None:
        return web.Response(status=status, text=body, content_type="application/json")
    if behaviour.delay_ms:
        await asyncio.sleep(behaviour.delay_ms / 1000)
    content_type = "application/json" if body.lstrip().startswith(("{", "[")) else "text/plain"
    headers = {"Retry-After": str(behaviour.retry_after)} if behaviour.retry_after else {}
    if behaviour.fault:
        return await _misbehave(request, behaviour.fault, status, body.encode(), headers)
    return web.Response(status=status, text=body, content_type=content_type, headers=headers)


async def _misbehave(
    request: web.Request, fault: str, status: int, body: bytes, headers: dict[str, str]
) -> web.StreamResponse:
    """Answer like a broken target (``Sink.fault``)."""
    transport = request.transport
    assert transport is not None
    if fault == "hang":  # never answer; the client's timeout ends it
        await asyncio.sleep(3600)
    if fault == "close":  # close the connection without a word
        transport.close()
        return web.Response()  # never written: the connection is gone
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body) + (1 if fault == "reset" else 0)
    await response.prepare(request)
    if fault == "reset":  # half the body, then a TCP reset
        await response.write(body[: len(body) // 2])
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return response
    for index in range(len(body)):  # slow_body: one byte a second
        await response.write(body[index : index + 1])
        await asyncio.sleep(1)
    await response.write_eof()
    return response
