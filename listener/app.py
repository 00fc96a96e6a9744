"""The aiohttp application: clicks, postbacks, the built-in sink and the JSON API."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from functools import partial

from aiohttp import web

from listener import api, endpoints, log
from listener.access import Access
from listener.capture import capture
from listener.clock import CLOCK, SYSTEM, Clock
from listener.delivery import Outbox, client_session
from listener.keys import ACCESS, OUTBOX, SETTINGS, SNAPSHOT, STORE, TOKEN
from listener.parsing import Rejection
from listener.pipeline import Answer, record_click, record_postback, reject
from listener.sink import sink
from store import retention
from store.db import Store
from store.jsontext import dumps
from store.records import InboundRequest, Settings
from store.snapshot import SnapshotCache


def _respond(answer: Answer) -> web.Response:
    if answer.redirect is not None:
        raise web.HTTPFound(answer.redirect)
    return web.json_response(answer.body, status=answer.status, dumps=dumps)


Job = Callable[[sqlite3.Connection, InboundRequest, dict[str, str], Rejection | None], Answer]
WriterJob = Callable[[sqlite3.Connection], Answer]


RETRY_AFTER = 5  # seconds a client is asked to wait when the database cannot take a write


def _unavailable(error: sqlite3.OperationalError) -> web.Response:
    """The answer when the database cannot take the write (locked, disk full): nothing was
    stored, so the network must send again."""
    return web.json_response(
        {
            "error": f"postwatch could not store this request ({error}); nothing was recorded: "
            f"send it again in {RETRY_AFTER} s"
        },
        status=503,
        headers={"Retry-After": str(RETRY_AFTER)},
    )


async def _store(request: web.Request, captured: InboundRequest, job: WriterJob) -> web.Response:
    """Run a request's job in the writer and answer once it is committed. Every request is
    stored with its outcome, even when processing it fails; when the database cannot take the
    write, the answer is 503 with Retry-After, never a 2xx."""
    store = request.app[STORE]
    try:
        try:
            answer = await store.write(job)
        except sqlite3.OperationalError:
            raise
        except Exception as error:  # a bug must not lose the request: keep it, with the error
            failure = Rejection(500, f"postwatch failed to process this request: {error!r}")
            answer = await store.write(lambda conn: reject(conn, captured, failure))
    except sqlite3.OperationalError as error:
        log.unavailable(captured, error)
        return _unavailable(error)
    request.app[OUTBOX].schedule(answer.attempts)
    log.answered(captured, answer, at=request.app[CLOCK]())
    return _respond(answer)


async def _run(request: web.Request, endpoint: str, job: Job) -> web.Response:
    """Capture a request, refuse it or run its job, and answer once it is committed."""
    access = request.app[ACCESS]
    max_body = request.app[SETTINGS].max_body
    captured, params, rejection, oversize = await capture(request, endpoint, max_body, access)
    rejection = rejection or access.refusal(captured.remote, params, request.headers)
    if access.key:
        params.pop("key", None)  # the listener's own key is not a click parameter
    if rejection is not None:
        refused = rejection
        return await _store(request, captured, lambda conn: reject(conn, captured, refused))
    return await _store(request, captured, lambda conn: job(conn, captured, params, oversize))


async def elsewhere(request: web.Request) -> web.Response:
    """A request to a wrong path or with a wrong method: stored as rejected, and answered with
    the endpoint it was probably meant for."""
    access = request.app[ACCESS]
    captured, _, _, _ = await capture(request, "other", request.app[SETTINGS].max_body, access)
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            allowed |= (await resource.resolve(request))[1]
    refused = endpoints.wrong_way(request.method, request.path, allowed)
    return await _store(request, captured, lambda conn: reject(conn, captured, refused))


async def click(request: web.Request) -> web.Response:
    key = request.match_info["campaign_key"]
    return await _run(request, "click", partial(record_click, key=key, cache=request.app[SNAPSHOT]))


async def postback(request: web.Request) -> web.Response:
    return await _run(request, "postback", partial(record_postback, cache=request.app[SNAPSHOT]))


pruning_log = logging.getLogger("postwatch.retention")


async def _retention(app: web.Application) -> AsyncIterator[None]:
    """With ``[storage] keep_days``, the delivering listener prunes what is older, at start
    and every hour, logging what it did."""
    keep_days = app[SETTINGS].keep_days
    if not keep_days:
        yield
        return
    outbox = app[OUTBOX]
    task = asyncio.create_task(
        retention.keep(
            app[STORE],
            keep_days,
            delivering=lambda: outbox.delivering,
            report=lambda pruned: pruning_log.info(
                "pruned: %s", "; ".join(retention.describe(pruned))
            ),
            failed=lambda error: pruning_log.error(
                "pruning failed, tried again in an hour: %s", error
            ),
        ),
        name="retention",
    )
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _delivery_worker(app: web.Application) -> AsyncIterator[None]:
    async with client_session(per_host=app[SETTINGS].per_target) as session:
        outbox = Outbox(app[STORE], session, per_host=app[SETTINGS].per_target, clock=app[CLOCK])
        app[OUTBOX] = outbox
        task = asyncio.create_task(outbox.run(), name="outbox")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def create_app(
    store: Store, settings: Settings, *, token: str = "", clock: Clock = SYSTEM
) -> web.Application:
    """The listener for an open store. ``token``, when set, guards the JSON API; ``clock``
    gives every time the listener stores or logs (``listener.clock``)."""
    app = web.Application()  # bodies are read by capture(), up to the max_body setting
    app[STORE] = store
    app[CLOCK] = clock
    app[SETTINGS] = settings
    app[ACCESS] = Access.from_settings(settings)
    app[TOKEN] = token
    app[SNAPSHOT] = snapshot = SnapshotCache()
    store.before_each_batch(snapshot.refresh)
    app.cleanup_ctx.append(_delivery_worker)
    app.cleanup_ctx.append(_retention)  # after the outbox: it prunes while this one delivers
    for method in ("GET", "POST"):
        app.router.add_route(method, "/click/{campaign_key}", click)
        app.router.add_route(method, "/postback", postback)
    app.router.add_route("*", "/sink/{name}", sink)
    app.router.add_route("*", "/sink/{name}/{path:.*}", sink)  # a platform's API path below it
    api.add_routes(app)
    app.router.add_route("*", "/{path:.*}", elsewhere)  # last: what no route above takes
    return app


# A connection that has not sent a whole request head within IDLE_TIMEOUT of connecting (or
# of its last answer) is closed: slow or idle connections cannot pile up (nginx: 60 s/75 s).
IDLE_TIMEOUT = 60.0
# Request lines and header fields up to 64 KiB: networks send long query strings, and a request
# refused by the HTTP parser cannot be stored.
MAX_LINE = 64 * 1024


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one), so that the port is known
    before the listener answers anything. Raises ``OSError`` when the address cannot be had."""
    family, _, _, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return socket.create_server(address, family=family)


async def start(
    store: Store,
    settings: Settings,
    host: str,
    port: int,
    *,
    token: str = "",
    idle_timeout: float = IDLE_TIMEOUT,
    sock: socket.socket | None = None,
    clock: Clock = SYSTEM,
) -> web.AppRunner:
    """Start listening on host:port (or on ``sock``, bound already) inside the running event
    loop; return the runner. ``clock``: as ``create_app`` takes it."""
    await store.learn_attached_ids()  # before the first postback
    runner = web.AppRunner(
        create_app(store, settings, token=token, clock=clock),
        shutdown_timeout=1.0,
        access_log=None,  # the listener logs each request itself, with its outcome
        keepalive_timeout=idle_timeout,
        max_line_size=MAX_LINE,
        max_field_size=MAX_LINE,
    )
    await runner.setup()
    site = web.SockSite(runner, sock or bind(host, port))
    await site.start()
    return runner
