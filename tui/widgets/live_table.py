"""A live table: a capped window of the newest rows that follows new ones while the cursor is
on the first row, counts them ("N new") once the user moves away, pages older rows in from
SQLite near the bottom, and redraws changed rows in place."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.worker import Worker

from store.db import Store
from tui.sources import COUNT_CAP, HEADER_COUNTED, Fetch, Row, Snapshot, Source
from tui.widgets.rows import RowTable
from tui.widgets.text_line import TextLine
from tui.workers import report_failure

CLOCK_WIDTH = 8  # a time cell of today: 23:59:59


class LiveTable(Vertical):
    """A title line and a ``RowTable`` fed by a ``Source``."""

    WINDOW = 500  # rows kept while following
    PAGE = 100  # older rows read at a time, and the first rows of a filter
    BROWSE_CAP = 2000  # rows kept while browsing older ones
    REREAD_MARGIN = 50  # rows beyond the view whose changes are fetched

    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    LiveTable > .live-title { height: 1; }
    LiveTable > .live-title > .live-status { width: 1fr; }
    LiveTable > .live-title > .live-hint { width: auto; }
    """

    @dataclass
    class Fetched(Message):
        live: LiveTable
        fetch: Fetch
        generation: int

    @dataclass
    class Paged(Message):
        live: LiveTable
        rows: list[Row]
        generation: int

    @dataclass
    class Jumped(Message):
        """The oldest rows, read for the user who asked for the last row."""

        live: LiveTable
        rows: list[Row]
        generation: int

    @dataclass
    class RowsChanged(Message):
        """Rows were added or redrawn (the detail of one of them may be stale)."""

        live: LiveTable
        keys: set[int]

        @property
        def control(self) -> LiveTable:
            return self.live

    def __init__(
        self,
        store: Store,
        source: Source,
        *,
        title: str,
        placeholder: str,
        hint: Text | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.store = store
        self.source = source
        self.title = title
        self.hint = hint or Text("")
        self.placeholder = placeholder
        self.new_count = 0
        self.generation = 0
        self.loaded = False  # the first fetch arrived
        self._dirty = False
        self._busy = False
        self._paging = False
        self._jumping = False
        self._exhausted = False  # the table holds the oldest row
        self.total: int | None = None  # rows the filter shown matches (COUNT_CAP + 1: more)
        self._dated = False  # the time column is wide enough for a date
        self._jumped = False  # the oldest rows are held (G): the rows above are older news
        self._held = False  # new rows are counted above the cursor even on the first row
        self._replacing = False  # the rows held are of a filter left: the next fetch replaces them
        self._then: list[Callable[[], None]] = []  # what runs as the next fetch is shown

    def compose(self) -> Any:
        with Horizontal(classes="live-title"):
            yield TextLine(self._status(), classes="live-status")
            yield TextLine(self.hint, classes="live-hint")
        yield RowTable(self.source.shown_columns(), placeholder=self.placeholder)

    @property
    def table(self) -> RowTable:
        return self.query_one(RowTable)

    @property
    def following(self) -> bool:
        table = self.table
        return not self._held and (not table.rows or table.at_top)

    def hold(self, held: bool) -> None:
        """Stop following new rows while ``held`` (say, while the selected row's detail is
        read), counting them above the cursor instead; let go, a table on its first row
        follows again and takes them in."""
        if held != self._held:
            self._held = held
            if not held and self.table.at_top:
                self.changed()
            self._show_status()

    # -- loading ------------------------------------------------------------------------------

    def reload(self, then: Callable[[], None] | None = None) -> None:
        """Start again from the newest rows (after a filter change). The rows held stay until
        the new ones replace them, and ``then`` (what else the change shows) runs as they do:
        the screen is laid out once for all of it, not as the table empties, again as it
        fills and again for the rest."""
        self.generation += 1
        self.new_count = 0
        self.total = None
        self._jumped = False
        self.source.forget_count()
        self._exhausted = False
        self._replacing = True
        if then is not None:
            self._then.append(then)
        self.changed()

    def redraw(self) -> None:
        """Draw every row and the column titles again (the time zone shown changed)."""
        table = self.table
        table.update([self.source.row(row.data) for row in table.rows])
        self._dated = self._needs_date()
        table.set_columns(self.source.shown_columns(dated=self._dated))

    def _needs_date(self) -> bool:
        """Whether the oldest row held shows a date (it is older than today)."""
        rows = self.table.rows
        cell = rows[-1].texts().get("time") if rows else None
        return cell is not None and cell.cell_len > CLOCK_WIDTH

    def _fit_time_column(self) -> None:
        """Widen the time column once a row older than today is held (and narrow it again
        when none is): at 80 columns each column counts."""
        dated = self._needs_date()
        if dated != self._dated:
            self._dated = dated
            self.table.set_columns(self.source.shown_columns(dated=dated))

    def follow(self) -> None:
        """Go to the newest row and follow new ones."""
        table = self.table
        table.action_first()
        self.changed()

    def changed(self) -> None:
        """The database changed: fetch what this table needs. One fetch at a time, and the next
        one only once the previous one is shown: a fetch made before it would start from the
        same top row and read its rows again."""
        self._dirty = True
        if self._busy:
            return
        self._busy = True
        self._dirty = False
        table = self.table
        if self._replacing:  # the newest rows of the filter shown, none of those held
            # a page of them, shown at once; older ones are paged in as the view nears them
            snapshot = Snapshot(top=None, following=True, window=[], unsettled=[], limit=self.PAGE)
        else:
            # Rows that may still change by themselves (a delivery under way) are re-read when
            # they are in view or near it; the others when they come into view.
            first, last = table.visible_range(margin=self.REREAD_MARGIN)
            nearby = table.rows[first:last]
            snapshot = Snapshot(
                top=table.top_key,
                following=self.following,
                window=table.keys,
                unsettled=[row.key for row in nearby if not self.source.settled(row.data)],
                limit=self.WINDOW,
            )
        generation = self.generation

        async def fetch() -> None:
            try:
                fetched = await self.store.read(self._fetcher(snapshot))
            except Exception:
                self._busy = False  # the next change fetches again
                raise
            self.post_message(self.Fetched(self, fetched, generation))

        self.run_worker(fetch(), name="read new rows", group="live-fetch", exit_on_error=False)

    def _fetcher(self, snapshot: Snapshot) -> Callable[[sqlite3.Connection], Fetch]:
        source = self.source

        def fetch(conn: sqlite3.Connection) -> Fetch:
            return source.fetch(conn, snapshot)

        return fetch

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_failure(self, event)

    def on_live_table_fetched(self, message: Fetched) -> None:
        message.stop()
        self._busy = False
        if message.generation == self.generation:
            self._apply(message.fetch)
        else:
            self._dirty = True  # fetched for a filter no longer shown
        if self._dirty:
            self.changed()

    def _apply(self, fetch: Fetch) -> None:
        first = not self.loaded
        self.loaded = True
        table = self.table
        # (a fetch may have read new columns: Live's postback configs)
        table.set_columns(self.source.shown_columns(dated=self._dated))
        keys: set[int] = set()
        if self._replacing and fetch.newer is not None:
            self._replacing = False
            rows = [self.source.row(data) for data in fetch.newer]
            table.set_rows(rows, keep_cursor=False)
            keys |= {row.key for row in rows}
        elif fetch.newer is not None and not self.following:
            self._dirty = True  # the user moved away meanwhile: count them instead
        elif fetch.newer is not None:
            rows = [self.source.row(data) for data in fetch.newer]
            if len(rows) >= self.WINDOW:
                table.set_rows(rows, keep_cursor=False)
                self._exhausted = False
            elif rows:
                if len(table) + len(rows) > self.WINDOW:
                    self._exhausted = False
                table.prepend(rows, keep=self.WINDOW)
            keys |= {row.key for row in rows}
            self.new_count = 0
            self._jumped = False
        else:
            self.new_count = fetch.new_count
        self.total = fetch.total if fetch.total is not None else self._header_total()
        self._fit_time_column()
        if fetch.changed:
            changed = [data for data in fetch.changed if self._differs(data)]
            keys |= set(table.update(self.source.row(data) for data in changed))
        self._show_status()
        then, self._then = self._then, []
        for step in then:
            step()
        if keys or first:
            self.post_message(self.RowsChanged(self, keys).set_sender(self))

    def _differs(self, data: Row) -> bool:
        shown = self.table.get(int(data["id"]))
        return shown is not None and shown.data != data

    def on_row_table_near_end(self, message: RowTable.NearEnd) -> None:
        message.stop()
        table = self.table
        if self._paging or self._exhausted or table.bottom_key is None:
            return
        self._paging = True
        bottom = table.bottom_key
        generation = self.generation

        async def page() -> None:
            try:
                rows = await self.store.read(
                    lambda conn: self.source.bounded_page(conn, limit=self.PAGE, before=bottom)
                )
                self.post_message(self.Paged(self, rows, generation))
            finally:
                self._paging = False

        self.run_worker(page(), name="read older rows", group="live-page", exit_on_error=False)

    def on_row_table_end(self, message: RowTable.End) -> None:
        """The last row, in one press: when older rows than those held remain, read the
        oldest page instead of paging down to it."""
        message.stop()
        if self._exhausted or self._jumping or not self.table.rows:
            return
        self._jumping = True
        generation = self.generation

        async def oldest() -> None:
            try:
                rows = await self.store.read(
                    lambda conn: self.source.oldest_page(conn, limit=self.WINDOW)
                )
                self.post_message(self.Jumped(self, rows, generation))
            finally:
                self._jumping = False

        self.run_worker(
            oldest(), name="read the oldest rows", group="live-page", exit_on_error=False
        )

    def on_live_table_jumped(self, message: Jumped) -> None:
        message.stop()
        if message.generation != self.generation or not message.rows:
            return
        table = self.table
        table.set_rows([self.source.row(data) for data in message.rows], keep_cursor=False)
        self._exhausted = True
        self._jumped = True
        gc.freeze()  # as for rows paged in (see on_live_table_paged)
        table.move_cursor(len(table.rows) - 1)
        self._fit_time_column()
        self.changed()  # the rows above the window now count as new

    def on_live_table_paged(self, message: Paged) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        table = self.table
        bottom = table.bottom_key
        rows = [self.source.row(data) for data in message.rows]
        if bottom is not None:
            rows = [row for row in rows if row.key < bottom]
        if len(message.rows) < self.PAGE:
            self._exhausted = True
        table.append(rows)
        # The rows paged in join the frozen heap (see tui.app._freeze_heap): left young, they
        # would bring a full collection over them onto a keypress about every ten pages.
        gc.freeze()
        if len(table) > self.BROWSE_CAP:
            table.drop_top(len(table) - self.BROWSE_CAP)
            self.changed()  # the rows dropped from the top now count as new
        self._fit_time_column()
        self._show_status()

    def on_row_table_highlighted(self, message: RowTable.Highlighted) -> None:
        table = self.table
        # Back on the first row: follow again, and take in what arrived meanwhile.
        back_on_top = table.cursor == 0 and self.new_count > 0
        # A row the user moved onto may have changed while it was out of view. (Not a row the
        # cursor is on because new rows came: it was just read, and re-reading it at once
        # would fetch again after every fetch while a flood of unsettled rows is followed.)
        row = table.cursor_row
        unsettled = message.by_user and row is not None and not self.source.settled(row.data)
        if back_on_top or unsettled:
            self.changed()
        self._show_status()

    # -- going to a row -----------------------------------------------------------------------

    async def reveal(self, key: int) -> bool:
        """Put the cursor on row ``key`` (from a trace's link): in the window when it is
        there, else on a page of the rows around it read in its place (older rows page in
        below it as usual, newer ones count as new until ``follow``). False when the filter
        shown has no such row."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while not self.loaded and loop.time() < deadline:
            await asyncio.sleep(0.02)  # the first fetch would replace the page
        table = self.table
        if table.get(key) is None:
            rows = await self.store.read(lambda conn: self._around(conn, key))
            if not any(int(data["id"]) == key for data in rows):
                return False
            self.generation += 1  # a fetch under way was for the window left
            self._exhausted = False
            self._replacing = False
            self.new_count = 0
            table.set_rows([self.source.row(data) for data in rows], keep_cursor=False)
        table.move_cursor(table.keys.index(key))
        self.changed()  # count what is newer than the page
        self._show_status()
        return True

    def _around(self, conn: sqlite3.Connection, key: int) -> list[Row]:
        """Row ``key`` with a page of older rows and up to half a page of the newer rows
        next to it (newest first). Newer rows are read in a widening range of ids above the
        key, the whole range at once, so the page has no gap."""
        source = self.source
        older = source.bounded_page(conn, limit=self.PAGE, before=key + 1)
        if not older or int(older[0]["id"]) != key:
            return []
        span, newer = self.PAGE // 2, []
        for _ in range(5):
            newer = source.bounded_page(conn, limit=span, before=key + span + 1, after=key)
            if newer or source.count_newer(conn, key) == 0:
                break
            span *= 16
        return newer[-(self.PAGE // 2) :] + older

    # -- title --------------------------------------------------------------------------------

    def _status(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(f" {self.title}", style="bold")
        if not self.loaded:
            text.append(" · loading…", style="dim")
        else:
            where = self.position()
            if where:
                text.append(f" · {where}")
            if self.new_count:
                word = "newer" if self._jumped else "new"
                text.append(f" · ▲ {count_text(self.new_count)} {word}", style="bold reverse")
                text.append(" (f: show)", style="dim")
            elif self.table.rows and self.following:
                text.append(" · following", style="dim")
        # the filters last: a long one is cut at the edge, and the filter bar shows it whole
        if self.source.show != "all":
            text.append(f" · {self.source.show}", style="bold yellow")
        if self.source.found_text:
            text.append(f" · {self.source.found_text}", style="bold yellow")
        return text

    def position(self) -> str:
        """Where the cursor is among every row the filter shown matches: "row 17 of 516"
        ("of 10,000+" past the count's cap; the row's number is left out when it is not
        known, below more than that many newer rows)."""
        table = self.table
        if not table.rows or self.total is None:
            return ""
        above = 0 if self.following else self.new_count
        # (the header's figure may be a poll behind the rows)
        total_rows = max(self.total, above + len(table.rows))
        total = count_text(total_rows)
        if above <= COUNT_CAP:
            return f"row {above + table.cursor + 1:,} of {total}"
        if self._exhausted and total_rows <= COUNT_CAP:
            return f"row {total_rows - (len(table.rows) - 1 - table.cursor):,} of {total}"
        return f"of {total}"

    def _header_total(self) -> int | None:
        """The header's figure for this table (its rows, unfiltered), when it has one."""
        if self.source.table not in HEADER_COUNTED:
            return None
        stats = getattr(self.app, "stats", None)
        return None if stats is None else int(getattr(stats, self.source.table))

    def _show_status(self) -> None:
        if not self.is_mounted:
            return
        self.query_one(".live-status", TextLine).show(self._status())

    def set_hint(self, hint: Text) -> None:
        self.hint = hint
        self.query_one(".live-hint", TextLine).show(hint)

    def make_room(self, room: bool) -> None:
        """Leave the hint out (``room``) so that the filters typed, last on the status line,
        have its room. (A class of the hint's line alone: one on the table would restyle
        every widget in it.)"""
        self.query_one(".live-hint", TextLine).set_class(room, "-found")


def count_text(count: int) -> str:
    """A count as shown: 516, 9,999, or 10,000+ past the cap."""
    return f"{COUNT_CAP:,}+" if count > COUNT_CAP else f"{count:,}"
