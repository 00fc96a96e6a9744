"""Where each live table's rows come from: the read model's queries run on the store's
reader, and how a row becomes cells. One fetch is one trip to the reader thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text

from store.read import queries
from store.read.filters import ALL, DELIVERY_SHOWS, INBOUND_SHOWS, ListFilter
from store.read.model import AttemptRow, ConversionRow, InboundView
from tui import format as fmt
from tui.widgets.rows import Column, TableRow

# A table row's data: a record of the read model, read by field name.
Row = Mapping[str, Any]


@dataclass
class Snapshot:
    """What a live table holds when it asks for changes."""

    top: int | None
    following: bool
    window: list[int]
    unsettled: list[int]
    limit: int


@dataclass
class Fetch:
    """What changed since the snapshot."""

    newer: list[Row] | None  # when following: the rows above the top (newest first)
    new_count: int  # when not following: how many rows are above the top
    changed: list[Row] = field(default_factory=list)  # rows of the window to redraw


class Source:
    """The rows of one live table."""

    table: ClassVar[str]
    columns: ClassVar[list[Column]]
    shows: ClassVar[Mapping[str, ListFilter]] = {"all": ALL}

    def __init__(self) -> None:
        self.show = self.filters[0]

    @property
    def filters(self) -> tuple[str, ...]:
        """The names of the choices the filter key cycles through."""
        return tuple(self.shows)

    @property
    def chosen(self) -> ListFilter:
        """The filter of the choice shown."""
        return self.shows[self.show]

    def page(
        self,
        conn: sqlite3.Connection,
        *,
        limit: int,
        before: int | None = None,
        after: int | None = None,
    ) -> list[Row]:
        raise NotImplementedError

    def by_id(self, conn: sqlite3.Connection, ids: list[int]) -> list[Row]:
        raise NotImplementedError

    def cells(self, row: Any) -> dict[str, Text]:
        raise NotImplementedError

    def settled(self, row: Any) -> bool:
        """Whether the row can no longer change by itself."""
        return True

    def touched(self, conn: sqlite3.Connection, window: list[int]) -> set[int]:
        """Rows of the window that changed (other than unsettled ones)."""
        return set()

    def row(self, data: Row) -> TableRow:
        return TableRow(key=int(data["id"]), cells=lambda: self.cells(data), data=data)

    def fetch(self, conn: sqlite3.Connection, snapshot: Snapshot) -> Fetch:
        if snapshot.following:
            newer = self.page(conn, limit=snapshot.limit, after=snapshot.top)
            result = Fetch(newer=newer, new_count=0)
        else:
            count = queries.count_newer(conn, self.table, snapshot.top or 0, self.chosen)
            result = Fetch(newer=None, new_count=count)
        reread = set(snapshot.unsettled) | self.touched(conn, snapshot.window)
        if reread:
            result.changed = self.by_id(conn, sorted(reread))
        return result

    def next_filter(self) -> str:
        names = self.filters
        self.show = names[(names.index(self.show) + 1) % len(names)]
        return self.show


class Conversions(Source):
    table = "conversions"
    columns: ClassVar[list[Column]] = [
        Column("id", "#", 5, 8, priority=3, justify="right"),
        Column("time", "time", 8),
        Column("click", "click id", 12, 24, weight=10),
        Column("campaign", "campaign", 8, 16, weight=1, priority=2),
        Column("type", "type", 7, 14, weight=1),
        Column("status", "status", 12, 20, weight=1),
        Column("payout", "payout", 7, 14, weight=1, justify="right"),
        Column("txid", "txid", 12, 18, weight=1, priority=4),
        Column("marks", "postbacks", 9, 12),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._last_event: int | None = None

    def page(
        self,
        conn: sqlite3.Connection,
        *,
        limit: int,
        before: int | None = None,
        after: int | None = None,
    ) -> list[Row]:
        chosen = self.chosen.page(limit=limit, before=before, after=after)
        return list(queries.conversion_row_page(conn, chosen))

    def by_id(self, conn: sqlite3.Connection, ids: list[int]) -> list[Row]:
        return list(queries.conversion_rows(conn, ids))

    def settled(self, row: ConversionRow) -> bool:
        return row.settled

    def touched(self, conn: sqlite3.Connection, window: list[int]) -> set[int]:
        """Conversions of the window updated by a new event (a status change, say)."""
        latest = queries.latest_event_id(conn)
        previous, self._last_event = self._last_event, latest
        if previous is None or not window or latest <= previous:
            return set()
        return queries.conversions_updated(conn, previous, window)

    def cells(self, row: ConversionRow) -> dict[str, Text]:
        return {
            "id": Text(str(row.id), style="dim"),
            "time": Text(fmt.clock_time(row.created_at)),
            "click": fmt.literal(row.click_id),
            "campaign": fmt.literal(row.campaign),
            "type": fmt.literal(row.type or "—"),
            "status": fmt.status_text(row.status, row.raw_status),
            "payout": Text(fmt.payout(row.payout, row.currency)),
            "txid": fmt.literal(row.txid or ""),
            "marks": fmt.marks(item.mark for item in row.marks),
        }


class Deliveries(Source):
    table = "deliveries"
    shows = DELIVERY_SHOWS
    columns: ClassVar[list[Column]] = [
        Column("id", "#", 5, 8, priority=2, justify="right"),
        Column("time", "time", 8),
        Column("postback", "postback", 10, 20, weight=1),
        Column("click", "click id", 10, 24, weight=1, priority=3),
        Column("attempt", "try", 3, justify="right"),
        Column("url", "request", 28, None, weight=4),
        Column("http", "http", 4, justify="right"),
        Column("outcome", "outcome", 9),
        Column("took", "took", 7, justify="right", priority=1),
    ]

    def page(
        self,
        conn: sqlite3.Connection,
        *,
        limit: int,
        before: int | None = None,
        after: int | None = None,
    ) -> list[Row]:
        chosen = self.chosen.page(limit=limit, before=before, after=after)
        return list(queries.attempt_row_page(conn, chosen))

    def by_id(self, conn: sqlite3.Connection, ids: list[int]) -> list[Row]:
        return list(queries.attempt_rows(conn, ids))

    def settled(self, row: AttemptRow) -> bool:
        return row.outcome != "pending"

    def cells(self, row: AttemptRow) -> dict[str, Text]:
        at = row.sent_at if row.sent_at is not None else row.due_at
        return {
            "id": Text(str(row.id), style="dim"),
            "time": Text(fmt.clock_time(at)),
            "postback": fmt.literal(row.postback),
            "click": fmt.literal(row.click_id),
            "attempt": Text(str(row.attempt)),
            "url": fmt.literal(f"{row.method} {fmt.without_scheme(row.url)}"),
            "http": Text(fmt.http_status(row.http_status)),
            "outcome": fmt.outcome_text(row.outcome),
            "took": Text(fmt.duration(row.duration_ms)),
        }


class Inbound(Source):
    table = "inbound"
    shows = INBOUND_SHOWS
    columns: ClassVar[list[Column]] = [
        Column("id", "#", 5, 8, priority=2, justify="right"),
        Column("time", "time", 8),
        Column("endpoint", "what", 8),
        Column("request", "request", 20, None, weight=4),
        Column("outcome", "outcome", 8),
        Column("reason", "reason", 12, None, weight=3, priority=1),
    ]

    def page(
        self,
        conn: sqlite3.Connection,
        *,
        limit: int,
        before: int | None = None,
        after: int | None = None,
    ) -> list[Row]:
        chosen = self.chosen.page(limit=limit, before=before, after=after)
        return list(queries.inbound(conn, chosen))

    def by_id(self, conn: sqlite3.Connection, ids: list[int]) -> list[Row]:
        return list(queries.inbound_by_id(conn, ids))

    def cells(self, row: InboundView) -> dict[str, Text]:
        return {
            "id": Text(str(row.id), style="dim"),
            "time": Text(fmt.clock_time(row.received_at)),
            "endpoint": fmt.literal(row.endpoint),
            "request": fmt.literal(f"{row.method} {fmt.request_target(row.path, row.query)}"),
            "outcome": fmt.outcome_text(row.outcome),
            "reason": fmt.literal(row.reason),
        }
