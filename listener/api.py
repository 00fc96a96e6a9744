"""The JSON API (README, "JSON API"), for scripts, tests and the dashboard."""

from __future__ import annotations

import hmac
import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from listener import actions, delivery, export
from listener.clock import CLOCK
from listener.keys import ACCESS, OUTBOX, SETTINGS, SNAPSHOT, STORE, TOKEN
from listener.recover import RecoverFilter, TimeError, parse_time, recover
from listener.reevaluate import Selection, SelectionError, reevaluate
from listener.story import markdown
from store import events, reads, snapshot
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


async def inbound_request(request: web.Request) -> web.Response:
    """``GET /api/inbound/{id}``: one request, with the ids of its replays."""
    try:
        inbound_id = int(request.match_info["id"])
    except ValueError:
        return _error(400, f"inbound id must be a whole number, not {request.match_info['id']!r}")
    row = await request.app[STORE].read(lambda conn: reads.inbound_request(conn, inbound_id))
    if row is None:
        return _error(404, f"no inbound request has id {inbound_id}")
    return web.json_response(row)


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


async def _json_body(request: web.Request) -> dict[str, object]:
    """The request's JSON object body ({} when it has none), or a 400 naming the problem."""
    if not request.body_exists:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "the body is not valid JSON: send a JSON object"}),
            content_type="application/json",
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "the body is not a JSON object: send {...}"}),
            content_type="application/json",
        )
    return data


def _unavailable(error: sqlite3.OperationalError) -> web.Response:
    """The answer when the database cannot take an action's write: nothing was done."""
    return web.json_response(
        {"error": f"postwatch could not store this ({error}); nothing was done: try again"},
        status=503,
        headers={"Retry-After": "5"},
    )


def _edit(data: dict[str, object]) -> actions.Edit:
    for name in ("query", "body"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise actions.ActionError(400, f"{name} must be a string, not {data[name]!r}")
    query, body = data.get("query"), data.get("body")
    return actions.Edit(
        query=query if isinstance(query, str) else None,
        body=body if isinstance(body, str) else None,
    )


async def replay(request: web.Request) -> web.Response:
    """``POST /api/inbound/{id}/replay``: a stored request through the pipeline again,
    optionally edited; answers with the new inbound row and what the pipeline answered."""
    try:
        inbound_id = int(request.match_info["id"])
    except ValueError:
        return _error(400, f"inbound id must be a whole number, not {request.match_info['id']!r}")
    app = request.app
    try:
        edit = _edit(await _json_body(request))
        replayed = await app[STORE].write(
            lambda conn: actions.replay(
                conn,
                inbound_id,
                edit,
                cache=app[SNAPSHOT],
                max_body=app[SETTINGS].max_body,
                at=app[CLOCK](),
                listener_key=bool(app[ACCESS].key),
            )
        )
    except actions.ActionError as error:
        return _error(error.status, error.message)
    except sqlite3.OperationalError as error:
        return _unavailable(error)
    app[OUTBOX].schedule(replayed.answer.attempts)
    (row,) = await app[STORE].read(lambda conn: queries.inbound_by_id(conn, [replayed.inbound_id]))
    answer = {"status": replayed.answer.status, "body": replayed.answer.body}
    if replayed.answer.redirect is not None:
        answer["redirect"] = replayed.answer.redirect
    return web.json_response(
        {"replay_of": inbound_id, "inbound": reads.as_json(row), "answer": answer}
    )


async def add_conversion(request: web.Request) -> web.Response:
    """``POST /api/conversions``: a conversion entered by hand for a known click."""
    app = request.app
    try:
        entry = actions.manual_entry(await _json_body(request))
        answer = await app[STORE].write(
            lambda conn: actions.enter_conversion(
                conn, entry, cache=app[SNAPSHOT], remote=request.remote or "", at=app[CLOCK]()
            )
        )
    except actions.ActionError as error:
        return _error(error.status, error.message)
    except sqlite3.OperationalError as error:
        return _unavailable(error)
    app[OUTBOX].schedule(answer.attempts)
    # 200, not 201, for a duplicate the offer source ignores: nothing was created
    return web.json_response(answer.body, status=200 if "ignored" in answer.body else 201)


async def test_postback(request: web.Request) -> web.Response:
    """``POST /api/postbacks/{config}/test``: one test postback of a config to its real
    target, with sample or given values; answers with the attempt and the target's answer."""
    app = request.app
    try:
        data = await _json_body(request)
        campaign = data.get("campaign")
        if campaign is not None and not isinstance(campaign, str):
            raise actions.ActionError(400, f"campaign must be a campaign key, not {campaign!r}")
        given = actions.given_values(data.get("values"))
        loaded = await app[STORE].read(snapshot.load)
        target = actions.find_config(loaded, request.match_info["config"], campaign)
        sent = await actions.send_test(app[OUTBOX], target, given, app[CLOCK]())
    except actions.ActionError as error:
        return _error(error.status, error.message)
    test_id = await app[STORE].write(lambda conn: events.insert_test_postback(conn, sent))
    return web.json_response(actions.attempt_json(test_id, sent))


class BodyError(ValueError):
    """A request body that cannot be read; the message names the field and what to send."""


async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON object body of an action (an empty body is an empty object)."""
    text = await request.text()
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        raise BodyError('the body is not JSON: send an object such as {"since": "2h"}') from None
    if not isinstance(body, dict):
        raise BodyError("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BodyError(f"{name} must be a string, not {value!r}")
    return str(value)


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BodyError(f"{name} must be true or false, not {value!r}")
    return value


def _time(body: dict[str, Any], name: str, now: float) -> float | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BodyError(f"{name} must be ISO 8601 or Unix seconds, not {value!r}")
    return parse_time(value, now, name)


def _ids(body: dict[str, Any]) -> tuple[int, ...]:
    value = body.get("ids") or []
    if not isinstance(value, list) or not all(
        isinstance(one, int) and not isinstance(one, bool) for one in value
    ):
        raise BodyError(f"ids must be a list of conversion ids (whole numbers), not {value!r}")
    return tuple(value)


def _recover_filter(body: dict[str, Any], now: float) -> RecoverFilter:
    since = _time(body, "since", now)
    if since is None:
        raise BodyError(
            "since is required: the failed deliveries to resend are those since this time "
            "(ISO 8601 or Unix seconds)"
        )
    return RecoverFilter(
        since=since,
        traffic_source=_text(body, "traffic_source"),
        postback=_text(body, "postback"),
        campaign=_text(body, "campaign"),
    )


async def recover_failed(request: web.Request) -> web.Response:
    """``POST /api/deliveries/recover``: resend every failed delivery since a time, once."""
    now = request.app[CLOCK]()
    try:
        body = await _body(request)
        chosen = _recover_filter(body, now)
        dry_run = _flag(body, "dry_run")
    except (BodyError, TimeError) as error:
        return _error(400, str(error))
    store = request.app[STORE]
    try:
        if dry_run:
            found = await store.read(lambda conn: recover(conn, chosen, now=now, dry_run=True))
        else:
            found = await store.write(lambda conn: recover(conn, chosen, now=now))
    except FilterError as error:  # a campaign or a traffic source no one has
        return _error(400, str(error))
    if not dry_run:
        request.app[OUTBOX].schedule(found.queued)
    return web.json_response(found.as_json(), status=200 if dry_run else 202)


async def reevaluate_conversions(request: web.Request) -> web.Response:
    """``POST /api/reevaluate``: the chosen conversions through the current rules."""
    now = request.app[CLOCK]()
    try:
        body = await _body(request)
        chosen = Selection(
            campaign=_text(body, "campaign"),
            since=_time(body, "since", now),
            until=_time(body, "until", now),
            ids=_ids(body),
        )
        chosen.check()
        dry_run, fire = _flag(body, "dry_run"), _flag(body, "fire")
    except (BodyError, TimeError, SelectionError) as error:
        return _error(400, str(error))
    store = request.app[STORE]

    def run(conn: sqlite3.Connection) -> Any:
        return reevaluate(conn, chosen, at=now, dry_run=dry_run, fire=fire)

    try:
        found = await (store.read(run) if dry_run else store.write(run))
    except SelectionError as error:
        return _error(404, str(error))
    request.app[OUTBOX].schedule(found.queued)
    return web.json_response(found.as_json())


def add_routes(app: web.Application) -> None:
    if app[TOKEN]:  # no middleware at all on loopback: it would sit on every postback's path
        app.middlewares.append(require_token)
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/trace/{id}", trace)
    app.router.add_get("/api/conversions", conversions)
    app.router.add_get("/api/inbound", inbound)
    app.router.add_get("/api/inbound/{id}", inbound_request)
    app.router.add_get("/api/deliveries", deliveries)
    export.add_routes(app)
    app.router.add_get("/api/sink/{name}", sink_records)
    app.router.add_post("/api/deliveries/{id}/resend", resend)
    app.router.add_post("/api/inbound/{id}/replay", replay)
    app.router.add_post("/api/conversions", add_conversion)
    app.router.add_post("/api/postbacks/{config}/test", test_postback)
    app.router.add_post("/api/deliveries/recover", recover_failed)
    app.router.add_post("/api/reevaluate", reevaluate_conversions)
