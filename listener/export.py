"""``GET /api/export/{kind}`` (docs/support.md): an export streamed as it is read, one page of rows
in memory at a time (store/read/export.py reads and writes the rows)."""

from __future__ import annotations

import json

from aiohttp import web

from listener.keys import STORE
from store.read.export import CONTENT_TYPES, Export, Page, export_request, header, read_page, text
from store.read.filters import FilterError


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _page(request: web.Request, export: Export, before: int | None) -> Page:
    return await request.app[STORE].read(lambda conn: read_page(conn, export, before))


async def export(request: web.Request) -> web.StreamResponse:
    """Stream the rows of an export: the filters of its list, ``format`` csv or jsonl."""
    try:
        chosen = export_request(request.match_info["kind"], request.query)
        page = await _page(request, chosen, chosen.chosen.before)  # a bad name fails here
    except FilterError as error:
        raise _bad(str(error)) from None
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{CONTENT_TYPES[chosen.format]}; charset=utf-8",
            "Content-Disposition": (
                f'attachment; filename="postwatch-{chosen.kind}.{chosen.format}"'
            ),
        }
    )
    await response.prepare(request)
    await response.write(header(chosen).encode())
    left = chosen.total
    while True:
        rows = page.rows if left is None else page.rows[:left]
        # written page by page: drain() inside write() waits for a slow reader, so no more
        # than a page is held however slowly the client reads
        await response.write(text(chosen, rows).encode())
        if left is not None:
            left -= len(rows)
        if page.next_before is None or left == 0:
            break
        page = await _page(request, chosen, page.next_before)
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/export/{kind}", export)
