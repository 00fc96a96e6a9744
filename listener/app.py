"""The aiohttp application: clicks, postbacks, the built-in sink and the JSON API."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from listener import api
from listener.delivery import Outbox
from listener.keys import OUTBOX, SETTINGS, SNAPSHOT, STORE, TOKEN
from listener.parsing import Rejection
from listener.pipeline import Answer, record_click, record_postback, reject
from listener.platforms import common as platform_common
from listener.platforms import mimic
from store import events, workspace
from store.db import Store
from store.records import InboundRequest, Settings
from store.snapshot import SnapshotCache

KEPT_HEADERS = (
    "User-Agent",
    "Content-Type",
    "Content-Length",
    "Referer",
    "X-Forwarded-For",
    "X-Real-IP",
    "X-Postwatch-Key",
)


async def capture(
    request: web.Request, endpoint: str, max_body: int
) -> tuple[InboundRequest, dict[str, str], Rejection | None, bool]:
    """Read a request once: its raw form for the inbound log, its merged parameters (the
    body's keys over the query's), a rejection if the body cannot be read, and whether the
    body was over the size limit."""
    received_at = time.time()
    raw = await request.content.read(max_body + 1) if request.body_exists else b""
    too_large = len(raw) > max_body
    body = raw[:max_body].decode("utf-8", errors="replace")
    captured = InboundRequest(
        received_at=received_at,
        endpoint=endpoint,
        method=request.method,
        path=request.path,
        query=request.query_string,
        body=body,
        remote=request.remote or "",
        headers={name: request.headers[name] for name in KEPT_HEADERS if name in request.headers},
    )
    params = {name: value for name, value in request.query.items()}
    rejection = None
    if body and not too_large:
        try:
            params.update(_body_params(body, request.content_type))
        except ValueError as error:
            rejection = Rejection(400, str(error))
    return captured, params, rejection, too_large


def _body_params(body: str, content_type: str) -> dict[str, str]:
    if "json" in content_type or body.lstrip().startswith("{"):
        try:
            data = json.loads(body)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"the body is not valid JSON ({error.msg} at character {error.pos}): send a "
                "JSON object or form fields"
            ) from None
        if not isinstance(data, dict):
            raise ValueError('the JSON body is not an object: send {"clickid": "...", ...}')
        return {str(key): "" if value is None else str(value) for key, value in data.items()}
    return dict(parse_qsl(body, keep_blank_values=True))


def _guard(request: web.Request, params: dict[str, str], settings: Settings) -> Rejection | None:
    """The optional key and IP allow-list of SPEC §7."""
    if settings.allow_ips:
        remote = request.remote or ""
        try:
            address = ipaddress.ip_address(remote)
            allowed = any(address in ipaddress.ip_network(net) for net in settings.allow_ips)
        except ValueError:
            allowed = False
        if not allowed:
            return Rejection(403, f"address {remote} is not in the listener's allow_ips")
    if settings.key:
        given = params.get("key") or request.headers.get("X-Postwatch-Key", "")
        if given != settings.key:
            return Rejection(403, "missing or wrong key: pass ?key=… or the X-Postwatch-Key header")
    return None


def _respond(answer: Answer) -> web.Response:
    if answer.redirect is not None:
        raise web.HTTPFound(answer.redirect)
    return web.json_response(answer.body, status=answer.status)


Job = Callable[[sqlite3.Connection, InboundRequest, dict[str, str], bool], Answer]


async def _run(request: web.Request, endpoint: str, job: Job) -> web.Response:
    """Capture a request, run its job in the writer, and answer once it is committed. Every
    request is stored with its outcome, even when processing it fails."""
    store = request.app[STORE]
    settings = request.app[SETTINGS]
    captured, params, rejection, too_large = await capture(request, endpoint, settings.max_body)
    rejection = rejection or _guard(request, params, settings)
    if settings.key:
        params.pop("key", None)  # the listener's own key is not a click parameter
    if rejection is not None:
        refused = rejection
        return _respond(await store.write(lambda conn: reject(conn, captured, refused)))
    try:
        answer = await store.write(lambda conn: job(conn, captured, params, too_large))
    except Exception as error:  # a bug must not lose the request: keep it, with the error
        failure = Rejection(500, f"postwatch failed to process this request: {error!r}")
        answer = await store.write(lambda conn: reject(conn, captured, failure))
    request.app[OUTBOX].schedule(answer.attempts)
    return _respond(answer)


async def click(request: web.Request) -> web.Response:
    key = request.match_info["campaign_key"]
    return await _run(request, "click", partial(record_click, key=key, cache=request.app[SNAPSHOT]))


async def postback(request: web.Request) -> web.Response:
    return await _run(request, "postback", partial(record_postback, cache=request.app[SNAPSHOT]))


async def sink(request: web.Request) -> web.Response:
    """The built-in stand-in for a traffic source or an ad platform."""
    name = request.match_info["name"]
    store = request.app[STORE]
    captured, _, _, _ = await capture(request, "sink", request.app[SETTINGS].max_body)
    # An ad platform's credentials are kept like everywhere else: masked.
    captured.headers.update(platform_common.masked_headers(request.headers))
    captured.query = platform_common.masked_query(captured.query)

    def job(conn: sqlite3.Connection) -> tuple[int, str, int]:
        behaviour = workspace.sink(conn, name)
        failing = behaviour.fail_ratio > 0 and random.random() < behaviour.fail_ratio
        if behaviour.mimic:  # the platform's own answer shapes; failing answers its error
            status, body = mimic.answer(behaviour.mimic, behaviour.error or failing, captured.body)
        else:
            status, body = (
                (500, "sink failure (fail_ratio)")
                if failing
                else (
                    behaviour.status,
                    behaviour.body,
                )
            )
        events.insert_sink_record(conn, name, captured, status)
        return status, body, behaviour.delay_ms

    status, body, delay_ms = await store.write(job)
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    content_type = "application/json" if body.lstrip().startswith(("{", "[")) else "text/plain"
    return web.Response(status=status, text=body, content_type=content_type)


async def _delivery_worker(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        outbox = Outbox(app[STORE], session)
        app[OUTBOX] = outbox
        task = asyncio.create_task(outbox.run(), name="outbox")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def create_app(store: Store, settings: Settings, *, token: str = "") -> web.Application:
    """The listener for an open store. ``token``, when set, guards the JSON API."""
    app = web.Application(client_max_size=1024**3)
    app[STORE] = store
    app[SETTINGS] = settings
    app[TOKEN] = token
    app[SNAPSHOT] = SnapshotCache()
    app.cleanup_ctx.append(_delivery_worker)
    for method in ("GET", "POST"):
        app.router.add_route(method, "/click/{campaign_key}", click)
        app.router.add_route(method, "/postback", postback)
    app.router.add_route("*", "/sink/{name}", sink)
    app.router.add_route("*", "/sink/{name}/{path:.*}", sink)  # a platform's API path below it
    api.add_routes(app)
    return app


async def start(
    store: Store, settings: Settings, host: str, port: int, *, token: str = ""
) -> web.AppRunner:
    """Start listening on host:port inside the running event loop; return the runner."""
    runner = web.AppRunner(
        create_app(store, settings, token=token), shutdown_timeout=1.0, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner
