"""The aiohttp application: clicks, postbacks, the built-in sink and the JSON API."""

from __future__ import annotations

import asyncio
import ipaddress
import sqlite3
from collections.abc import AsyncIterator, Callable
from functools import partial

import aiohttp
from aiohttp import web

from listener import api
from listener.capture import capture
from listener.delivery import Outbox
from listener.keys import OUTBOX, SETTINGS, SNAPSHOT, STORE, TOKEN
from listener.parsing import Rejection
from listener.pipeline import Answer, record_click, record_postback, reject
from listener.sink import sink
from store.db import Store
from store.jsontext import dumps
from store.records import InboundRequest, Settings
from store.snapshot import SnapshotCache


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
    return web.json_response(answer.body, status=answer.status, dumps=dumps)


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
    app = web.Application()  # bodies are read by capture(), up to the max_body setting
    app[STORE] = store
    app[SETTINGS] = settings
    app[TOKEN] = token
    app[SNAPSHOT] = snapshot = SnapshotCache()
    store.before_each_batch(snapshot.refresh)
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
