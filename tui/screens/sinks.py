"""Sinks: every request the built-in sinks received, and the answer each gave."""

from __future__ import annotations

import sqlite3
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from store.read import queries
from store.read.model import SinkRecordView
from tui import format as fmt
from tui.screens.base import TableScreen
from tui.sources import Row, Source
from tui.widgets.rows import Column


class SinkRecords(Source):
    table = "sink_records"
    record = SinkRecordView
    columns: ClassVar[list[Column]] = [
        Column("id", "#", 5, 8, priority=2, justify="right"),
        Column("received_at", "time", 8),
        Column("method", "method", 6),
        Column("path", "path", 20, None, weight=4),
        Column("http_status", "http", 4, justify="right"),
    ]

    def page(
        self,
        conn: sqlite3.Connection,
        *,
        limit: int,
        before: int | None = None,
        after: int | None = None,
    ) -> list[Row]:
        return list(queries.sink_record_page(conn, limit=limit, before=before, after=after))

    def count_newer(self, conn: sqlite3.Connection, after_id: int) -> int:
        return queries.sink_records_newer(conn, after_id)

    def by_id(self, conn: sqlite3.Connection, ids: list[int]) -> list[Row]:
        return list(queries.sink_records_by_id(conn, ids))


class SinksScreen(TableScreen):
    NAME = "sinks"
    KEY = "6"
    LABEL = "Sinks"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "follow", "Follow", tooltip="Go to the newest", show=False, id="sinks.follow"),
        Binding("tab", "switch_pane", "Detail", show=False, id="sinks.pane"),
        Binding("escape", "focus_table", "Table", show=False, id="sinks.back"),
    ]

    SOURCE = SinkRecords
    TABLE_TITLE = "Sink records"
    TABLE_PLACEHOLDER = "No sink received anything yet."
    DETAIL_PLACEHOLDER = "Select a record to see the request the sink received."

    async def read_detail(self, key: int) -> Text | None:
        rows = await self.dash.store.read(lambda conn: queries.sink_records_by_id(conn, [key]))
        if not rows:
            return None
        record = rows[0]
        out = fmt.Lines()
        out.line(fmt.literal(f"{record.method} {fmt.request_target(record.path, record.query)}"))
        for name, value in record.headers.items():
            out.line(fmt.literal(f"{name}: {value}"), indent=2)
        out.line(fmt.literal(record.body, one_line=False))
        out.line(Text(f"answered HTTP {record.http_status}", style="dim"))
        return out.text


SCREEN = SinksScreen
