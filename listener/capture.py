"""Reading an inbound request once: its raw form for the log, and its parameters."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import unquote_plus

from aiohttp import StreamReader, web

from listener.access import KEY_HEADER, MASK, Access
from listener.clock import CLOCK
from listener.parsing import Rejection
from store.records import InboundRequest

KEPT_HEADERS = (
    "User-Agent",
    "Content-Type",
    "Content-Length",
    "Transfer-Encoding",
    "Referer",
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Real-IP",
    KEY_HEADER,
)
BODY_TIMEOUT = 60.0  # seconds a body may take to arrive once the head has (nginx: 60 s)


async def capture(
    request: web.Request, endpoint: str, max_body: int, access: Access
) -> tuple[InboundRequest, dict[str, str], Rejection | None, Rejection | None]:
    """Read a request once: its raw form for the inbound log (the client's address behind
    trusted proxies, the inbound key masked), its merged parameters (the body's keys over the
    query's), a rejection if the body cannot be read, and the rejection of a body over the
    size limit (kept apart: the endpoint decides when it applies). The arrival time is the
    application's clock's (``listener.clock``): every time of the request's effects is it."""
    received_at = request.app[CLOCK]()
    body, oversize, rejection = "", None, None
    if request.body_exists:
        try:
            raw, too_large = await read_body(request.content, max_body)
            if too_large:
                oversize = Rejection(
                    413,
                    f"the body is over the limit of {max_body} bytes: send the values in the "
                    "query string or a smaller body",
                )
        except TimeoutError:
            raw, rejection = (
                b"",
                Rejection(
                    408, f"the body did not arrive within {BODY_TIMEOUT:g} s: send it at once"
                ),
            )
        body = raw.decode("utf-8", errors="replace")
    url, headers = request.rel_url, request.headers
    query = url.raw_query_string
    kept = {name: value for name in KEPT_HEADERS if (value := headers.get(name)) is not None}
    if access.key and KEY_HEADER in kept:
        kept[KEY_HEADER] = MASK
    captured = InboundRequest(
        received_at=received_at,
        endpoint=endpoint,
        method=request.method,
        path=url.raw_path,  # as sent, still percent-encoded: the log keeps the raw request
        query=access.masked_query(query),
        body=body,
        remote=access.client(request.remote or "", headers),
        headers=kept,
    )
    params = form_fields(query)
    if body and oversize is None and rejection is None:
        try:
            params.update(body_params(body, request.content_type))
        except ValueError as error:
            rejection = Rejection(400, str(error))
    return captured, params, rejection, oversize


async def read_body(content: StreamReader, limit: int) -> tuple[bytes, bool]:
    """The whole body however it is framed (Content-Length, chunked, in many TCP segments),
    up to ``limit`` bytes; and whether there was more. Raises ``TimeoutError`` when it does not
    arrive within ``BODY_TIMEOUT``."""
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(BODY_TIMEOUT):
        while size <= limit:
            chunk = await content.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return raw[:limit], size > limit


def body_params(body: str, content_type: str) -> dict[str, str]:
    """The fields of a request body: a JSON object's (values as text, null as empty) or a
    form's. Raises ``ValueError`` with the sentence to answer when the JSON cannot be read."""
    if "json" in content_type or body.lstrip().startswith("{"):
        try:
            data = json.loads(body)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"the body is not valid JSON ({error.msg} at character {error.pos}): send a "
                "JSON object or form fields"
            ) from None
        except RecursionError:
            raise ValueError(
                "the JSON body is nested too deeply to read: send a flat JSON object of "
                'fields, {"clickid": "...", ...}'
            ) from None
        if not isinstance(data, dict):
            raise ValueError('the JSON body is not an object: send {"clickid": "...", ...}')
        return {str(key): "" if value is None else str(value) for key, value in data.items()}
    return form_fields(body)


def form_fields(text: str) -> dict[str, str]:
    """The fields of a query string or a form body (``a=1&b=x+y``), the last value of a
    repeated name winning: what ``parse_qsl`` gives, at a quarter of the cost, because
    values without ``%`` or ``+`` (most of them) are taken as they are."""
    fields = {}
    for pair in text.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in pair or "+" in pair:
            name, value = unquote_plus(name), unquote_plus(value)
        fields[name] = value
    return fields
