"""What every live table's source shares: the rows of the read model's queries run on the
store's reader, and how a row becomes cells. One fetch is one trip to the reader thread.

Each table's own ``Source`` lives in its screen's module (``tui/screens/<name>.py``)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from typing import Any, ClassVar

from rich.text import Text

from store.read import queries
from store.read.filters import ALL, ListFilter
from tui import format as fmt
from tui.widgets.rows import Column, TableRow

# A table row's data: a record of the read model, read by field name.
Row = Mapping[str, Any]

TIME_WIDTH = 11  # a time cell: 23:59:59 today, 12-31 23:59 before


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
    new_count: int  # when not following: how many rows are above the top (at most COUNT_CAP)
    changed: list[Row] = field(default_factory=list)  # rows of the window to redraw
    total: int | None = None  # how many rows the filter shown matches (at most COUNT_CAP)


# Rows counted at most for "row N of M" and "N new": a whole count of a large filtered table
# is slow, so beyond this the table says "10,000+".
COUNT_CAP = 10_000

RECOUNT = 5.0  # seconds between two whole counts of a filtered table's rows


@dataclass(frozen=True)
class _Count:
    """A count of the rows a filter matches: how many, the table's newest id then, and when
    the whole count was made (``time.monotonic``)."""

    rows: int
    newest: int
    at: float


# The header's figures count these tables' rows exactly at any size (store/totals.py), by
# the same names (tui.messages.Stats).
HEADER_COUNTED = frozenset({"conversions", "inbound"})


class Source:
    """The rows of one live table: ``page`` and ``by_id`` read records of type ``record``
    from ``table``, and ``cells`` draws a row. A column that ``cells`` does not draw shows
    the record's field of the column's key as it is (a time as a clock time)."""

    table: ClassVar[str]
    record: ClassVar[type]
    columns: ClassVar[list[Column]]
    shows: ClassVar[Mapping[str, ListFilter]] = {"all": ALL}
    noun: ClassVar[str] = ""  # what its rows are called, when not the table's name

    def __init__(self) -> None:
        self.show = self.filters[0]
        self.found = ALL  # the filter bar's terms (resolved), combined with the choice shown
        self.found_text = ""  # those terms as the user typed them
        self._count: _Count | None = None  # the last count of ``total``

    @property
    def rows_name(self) -> str:
        return self.noun or self.table

    def shown_columns(self, *, dated: bool = False) -> list[Column]:
        """The columns as drawn now: a time column's title names the time zone shown, and
        with ``dated`` (a row older than today is held) it is wide enough for a date."""
        width = TIME_WIDTH if dated else 0
        shown = []
        for column in self.table_columns():
            if column.key == "time":
                label = fmt.time_title(column.label)  # (a zone may be named +0530)
                column = replace(column, label=label, min=max(column.min, width, len(label)))
            shown.append(column)
        return shown

    @property
    def filters(self) -> tuple[str, ...]:
        """The names of the choices the filter key cycles through."""
        return tuple(self.shows)

    @property
    def chosen(self) -> ListFilter | None:
        """The filter of the choice shown with the filter bar's terms (None: they ask for
        different values of one field, and no row matches)."""
        return self.shows[self.show].both(self.found)

    @property
    def filtered(self) -> bool:
        """Whether rows are left out (a choice other than the first, or the bar's terms)."""
        chosen = self.chosen
        return chosen is None or chosen.filters_rows

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
        chosen = self.chosen
        if chosen is None:
            return []
        return self.page(conn, chosen.page(limit=limit, before=before, after=after))

    def oldest_page(self, conn: sqlite3.Connection, *, limit: int) -> list[Row]:
        """The oldest ``limit`` rows of the filter shown (newest first, as every page)."""
        chosen = self.chosen
        if chosen is None:
            return []
        return self.page(conn, replace(chosen.page(limit=limit), oldest=True))

    def total(self, conn: sqlite3.Connection) -> int | None:
        """How many rows the filter shown matches, up to ``COUNT_CAP`` + 1 (more than the
        cap), by a count of a capped page; None when nothing is filtered on a table the
        header counts (its figure is the total)."""
        chosen = self.chosen
        if chosen is None:
            return 0
        if not chosen.filters_rows and self.table in HEADER_COUNTED:
            return None
        # A whole count walks every row of a filter on what a row belongs to: between two
        # whole counts, only the rows added since the last one are counted (a row that left
        # the filter meanwhile, say a delivery no longer pending, counts until the next).
        clock = time.monotonic()
        newest = queries.newest_id(conn, self.table)
        if self._count is not None and clock - self._count.at < RECOUNT:
            counted = self._count.rows
            if counted <= COUNT_CAP and newest > self._count.newest:
                counted += queries.count_up_to(
                    conn, self.table, chosen.page(after=self._count.newest), COUNT_CAP + 1
                )
            self._count = replace(self._count, rows=min(counted, COUNT_CAP + 1), newest=newest)
        else:
            counted = queries.count_up_to(conn, self.table, chosen, COUNT_CAP + 1)
            self._count = _Count(rows=counted, newest=newest, at=clock)
        return self._count.rows

    def forget_count(self) -> None:
        """The filter shown changed: count its rows anew."""
        self._count = None

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
        """How many rows above ``after_id`` the filter shown matches (for "N new"), up to
        ``COUNT_CAP`` + 1; a source of a table that ``ListFilter`` does not list counts with
        its own query."""
        chosen = self.chosen
        if chosen is None:
            return 0
        return queries.count_up_to(conn, self.table, chosen.page(after=after_id), COUNT_CAP + 1)

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
        result.total = self.total(conn)
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
