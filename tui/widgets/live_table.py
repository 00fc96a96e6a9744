"""A live table: a capped window of the newest rows that follows new ones while the cursor is
on the first row, counts them ("N new") once the user moves away, pages older rows in from
SQLite near the bottom, and redraws changed rows in place."""

from __future__ import annotations

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
from tui.sources import Fetch, Row, Snapshot, Source
from tui.widgets.rows import RowTable
from tui.widgets.text_line import TextLine
from tui.workers import report_failure


class LiveTable(Vertical):
    """A title line and a ``RowTable`` fed by a ``Source``."""

    WINDOW = 500  # rows kept while following
    PAGE = 100  # older rows read at a time
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
        self._exhausted = False

    def compose(self) -> Any:
        with Horizontal(classes="live-title"):
            yield TextLine(self._status(), classes="live-status")
            yield TextLine(self.hint, classes="live-hint")
        yield RowTable(self.source.table_columns(), placeholder=self.placeholder)

    @property
    def table(self) -> RowTable:
        return self.query_one(RowTable)

    @property
    def following(self) -> bool:
        table = self.table
        return not table.rows or table.at_top

    # -- loading ------------------------------------------------------------------------------

    def reload(self) -> None:
        """Start again from the newest rows (after a filter change)."""
        self.generation += 1
        self.new_count = 0
        self._exhausted = False
        self.table.clear()
        self.changed()

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
        # Rows that may still change by themselves (a delivery under way) are re-read when they
        # are in view or near it; the others when they come into view.
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
        table.set_columns(self.source.table_columns())  # (a fetch may have read new ones)
        keys: set[int] = set()
        if fetch.newer is not None and not self.following:
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
        else:
            self.new_count = fetch.new_count
        if fetch.changed:
            changed = [data for data in fetch.changed if self._differs(data)]
            keys |= set(table.update(self.source.row(data) for data in changed))
        self._show_status()
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

    # -- title --------------------------------------------------------------------------------

    def _status(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(f" {self.title}", style="bold")
        if self.source.show != "all":
            text.append(f" · {self.source.show}", style="bold yellow")
        if not self.loaded:
            text.append(" · loading…", style="dim")
        elif self.new_count:
            text.append(f" · ▲ {self.new_count} new", style="bold reverse")
            text.append(" (f: show)", style="dim")
        elif self.table.rows and self.following:
            text.append(" · following", style="dim")
        return text

    def _show_status(self) -> None:
        self.query_one(".live-status", TextLine).show(self._status())

    def set_hint(self, hint: Text) -> None:
        self.hint = hint
        self.query_one(".live-hint", TextLine).show(hint)
