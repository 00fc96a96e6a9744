"""The JSON API of SPEC §2, for scripts, tests and the dashboard."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from listener import delivery, export
from listener.clock import CLOCK
from listener.keys import OUTBOX, STORE, TOKEN
from listener.story import markdown
from store import reads
from store.read import queries
from store.read.filters import FilterError, ListFilter, from_parameters

VERSION = "0.1.0"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _int(request: web.Request, name: str, default: int | None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be a whole number, not {value!r}"}),
            content_type="application/json",
        ) from None


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With a token set (always beyond loopback) the API needs it, in the Authorization
    header only: a token in a query string ends up in proxies' and browsers' logs. Health
    answers anyone, for monitors: it says nothing but ok and the version."""
    if request.path.startswith("/api/") and request.path != "/api/health":
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), request.app[TOKEN].encode()):
            return _error(
                401,
                "the API needs the token: send the header 'Authorization: Bearer <token>' "
                "(postwatch token shows it)",
            )
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "version": VERSION})


async def trace(request: web.Request) -> web.Response:
    any_id = request.match_info["id"]
    shape = request.query.get("format", "json")
    if shape not in ("json", "markdown"):
        return _error(400, f"format must be json or markdown, not {shape!r}")
    found = await request.app[STORE].read(lambda conn: queries.trace(conn, any_id))
    if shape == "markdown":
        return web.Response(text=markdown(found, any_id), content_type="text/markdown")
    return web.json_response(reads.as_json(found))


def list_filter(request: web.Request, table: str) -> ListFilter:
    """The filter of a list request's query parameters; a bad value is a 400 naming the
    parameter, the value and what is accepted."""
    try:
        return from_parameters(table, request.query)
    except FilterError as error:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": str(error)}), content_type="application/json"
        ) from None


async def _listed(request: web.Request, table: str, read: reads.ListRead) -> web.Response:
    chosen = list_filter(request, table)
    try:
        rows = await request.app[STORE].read(lambda conn: read(conn, chosen))
    except FilterError as error:  # a campaign or a traffic source no one has
        return _error(400, str(error))
    return web.json_response(rows)


async def conversions(request: web.Request) -> web.Response:
    return await _listed(
        request, "conversions", lambda conn, chosen: reads.conversions(conn, chosen=chosen)
    )


async def inbound(request: web.Request) -> web.Response:
    return await _listed(
        request, "inbound", lambda conn, chosen: reads.inbound(conn, chosen=chosen)
    )


async def deliveries(request: web.Request) -> web.Response:
    return await _listed(request, "deliveries", reads.deliveries)


async def sink_records(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    limit = min(_int(request, "limit", 100) or 100, 1000)
    rows = await request.app[STORE].read(lambda conn: reads.sink_records(conn, name, limit))
    return web.json_response(rows)


async def resend(request: web.Request) -> web.Response:
    try:
        delivery_id = int(request.match_info["id"])
    except ValueError:
        return _error(400, f"delivery id must be a whole number, not {request.match_info['id']!r}")
    queued = await request.app[STORE].write(
        lambda conn: delivery.resend(conn, delivery_id, request.app[CLOCK]())
    )
    if queued is None:
        return _error(404, f"no delivery has id {delivery_id}")
    request.app[OUTBOX].schedule([queued])
    return web.json_response(
        {"id": queued.id, "resend_of": delivery_id, "outcome": "pending"}, status=202
    )


def add_routes(app: web.Application) -> None:
    if app[TOKEN]:  # no middleware at all on loopback: it would sit on every postback's path
        app.middlewares.append(require_token)
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/trace/{id}", trace)
    app.router.add_get("/api/conversions", conversions)
    app.router.add_get("/api/inbound", inbound)
    app.router.add_get("/api/deliveries", deliveries)
    export.add_routes(app)
    app.router.add_get("/api/sink/{name}", sink_records)
    app.router.add_post("/api/deliveries/{id}/resend", resend)
