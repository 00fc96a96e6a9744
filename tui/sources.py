"""What every live table's source shares: the rows of the read model's queries run on the
store's reader, and how a row becomes cells. One fetch is one trip to the reader thread.

Each table's own ``Source`` lives in its screen's module (``tui/screens/<name>.py``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, ClassVar

from rich.text import Text

from store.read import queries
from store.read.filters import ALL, ListFilter
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
    """The rows of one live table: ``page`` and ``by_id`` read records of type ``record``
    from ``table``, and ``cells`` draws a row. A column that ``cells`` does not draw shows
    the record's field of the column's key as it is (a time as a clock time)."""

    table: ClassVar[str]
    record: ClassVar[type]
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

    def table_columns(self) -> list[Column]:
        """The columns the table shows now (Live's follow its postback configs)."""
        return self.columns

    def page(self, conn: sqlite3.Connection, chosen: ListFilter) -> list[Row]:
        """The rows ``chosen`` picks, newest first (the filter shown, with a page's bounds)."""
        raise NotImplementedError

    def bounded_page(
        self,
        conn: sqlite3.Connection,
        *,
        limit: int,
        before: int | None = None,
        after: int | None = None,
    ) -> list[Row]:
        """A page of the filter shown: the newest ``limit`` rows below ``before`` or, with
        ``after``, the newest of those above it."""
        return self.page(conn, self.chosen.page(limit=limit, before=before, after=after))

    def by_id(self, conn: sqlite3.Connection, ids: list[int]) -> list[Row]:
        raise NotImplementedError

    def cells(self, row: Any) -> dict[str, Text]:
        """The cells this source draws its own way, by column key (the others are plain)."""
        return {}

    def all_cells(self, row: Any) -> dict[str, Text]:
        """Every column's cell: those of ``cells``, and for any other column the row's field
        of the column's key."""
        drawn = self.cells(row)
        timed = times(self.record)
        for column in self.columns:
            if column.key not in drawn:
                drawn[column.key] = plain_cell(row[column.key], time=column.key in timed)
        return drawn

    def settled(self, row: Any) -> bool:
        """Whether the row can no longer change by itself."""
        return True

    def touched(self, conn: sqlite3.Connection, window: list[int]) -> set[int]:
        """Rows of the window that changed (other than unsettled ones)."""
        return set()

    def count_newer(self, conn: sqlite3.Connection, after_id: int) -> int:
        """How many rows above ``after_id`` the filter shown matches (for "N new"); a source
        of a table that ``ListFilter`` does not list counts with its own query."""
        return queries.count_newer(conn, self.table, after_id, self.chosen)

    def row(self, data: Row) -> TableRow:
        return TableRow(key=int(data["id"]), cells=lambda: self.all_cells(data), data=data)

    def fetch(self, conn: sqlite3.Connection, snapshot: Snapshot) -> Fetch:
        if snapshot.following:
            newer = self.bounded_page(conn, limit=snapshot.limit, after=snapshot.top)
            result = Fetch(newer=newer, new_count=0)
        else:
            count = self.count_newer(conn, snapshot.top or 0)
            result = Fetch(newer=None, new_count=count)
        reread = set(snapshot.unsettled) | self.touched(conn, snapshot.window)
        if reread:
            result.changed = self.by_id(conn, sorted(reread))
        return result

    def next_filter(self) -> str:
        names = self.filters
        self.show = names[(names.index(self.show) + 1) % len(names)]
        return self.show


@cache
def times(record: type) -> frozenset[str]:
    """The fields of a read-model record that hold a time."""
    return frozenset(item.name for item in fields(record) if item.metadata.get("time"))


def plain_cell(value: Any, *, time: bool = False) -> Text:
    """A field's value as a cell: shown as it is (a captured value is never markup), a time
    as a clock time, nothing as an empty cell."""
    if value is None:
        return Text("")
    if time:
        return Text(fmt.clock_time(value))
    return fmt.literal(str(value))
