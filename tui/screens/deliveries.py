"""Deliveries: every outbound request, filterable by outcome; resend the selected one, recover
every failed one since a time, copy its URL or a curl command."""

from __future__ import annotations

import sqlite3
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from store.read import queries
from store.read.filters import DELIVERY_SHOWS, ListFilter
from store.read.model import AttemptRow
from tui import actions
from tui import format as fmt
from tui.screens.base import FOLLOW_DELAY, TableScreen
from tui.sources import Row, Source
from tui.widgets.live_table import LiveTable
from tui.widgets.rows import Column


class Deliveries(Source):
    table = "deliveries"
    record = AttemptRow
    shows = DELIVERY_SHOWS
    columns: ClassVar[list[Column]] = [
        Column("id", "#", 5, 8, priority=2, justify="right"),
        Column("time", "time", 8),
        Column("postback", "postback", 10, 20, weight=1),
        Column("click", "click id", 10, 24, weight=1, priority=3, shorten=fmt.shorten_id),
        Column("attempt", "try", 3, justify="right"),
        Column("url", "request", 28, None, weight=4, shorten=fmt.shorten_url),
        Column("http", "http", 4, justify="right"),
        Column("outcome", "outcome", 9),
        Column("took", "took", 7, justify="right", priority=1),
    ]

    def page(self, conn: sqlite3.Connection, chosen: ListFilter) -> list[Row]:
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


class DeliveriesScreen(TableScreen):
    NAME = "deliveries"
    KEY = "3"
    LABEL = "Deliveries"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "outcome", "Outcome", tooltip="Show one outcome", id="deliveries.filter"),
        Binding("r", "resend", "Resend", tooltip="Send this request again", id="deliveries.resend"),
        Binding(
            "R",
            "recover",
            "Recover",
            tooltip="Resend every failed delivery since a time, once each",
            id="deliveries.recover",
        ),
        Binding("y", "copy_url", "Copy URL", id="deliveries.copy"),
        Binding(
            "c",
            "copy_curl",
            "Copy curl",
            tooltip="Copy the request as curl",
            show=False,  # (in the keys panel and the palette: the footer has 80 columns)
            id="deliveries.curl",
        ),
        Binding(
            "f", "follow", "Follow", tooltip="Go to the newest", show=False, id="deliveries.follow"
        ),
        Binding("tab", "switch_pane", "Detail", show=False, id="deliveries.pane"),
        Binding("escape", "focus_table", "Table", show=False, id="deliveries.back"),
    ]

    SOURCE = Deliveries
    TABLE_TITLE = "Deliveries"
    TABLE_PLACEHOLDER = "No deliveries yet."
    DETAIL_PLACEHOLDER = "Select a delivery to see its request and answer."

    def on_live_table_rows_changed(self, message: LiveTable.RowsChanged) -> None:
        key = self.live.table.cursor_key
        if key is not None and key in message.keys:
            self.show_detail(key, delay=FOLLOW_DELAY)

    async def read_detail(self, key: int) -> Text | None:
        rows = await self.dash.store.read(lambda conn: queries.attempt_rows(conn, [key]))
        return fmt.delivery_detail(rows[0]) if rows else None

    def action_outcome(self) -> None:
        self.next_filter()

    def action_resend(self) -> None:
        row = self.selected()
        if row is None:
            self.nothing("delivery")
            return
        self.run_worker(
            self._resend(int(row["id"])),
            name="resend the delivery",
            group="resend",
            exit_on_error=False,
        )

    async def _resend(self, delivery_id: int) -> None:
        new_id = await self.dash.resend(delivery_id)
        if new_id is None:
            self.notify(f"Delivery #{delivery_id} no longer exists", severity="error")
        elif self.dash.attached:
            self.notify(
                f"Resend of #{delivery_id} queued as #{new_id} for the serving listener's outbox",
                timeout=5,
            )
        else:
            self.notify(f"Resending #{delivery_id} as #{new_id}", timeout=3)

    def action_recover(self) -> None:
        self.app.push_screen(actions.recover_form(self.dash, self.notify))

    def action_copy_url(self) -> None:
        row = self.selected()
        if row is None:
            self.nothing("delivery")
            return
        self.copy(str(row["url"]), "URL")

    def action_copy_curl(self) -> None:
        row = self.selected()
        if row is None:
            self.nothing("delivery")
            return
        command = fmt.curl(row["method"], row["url"], row["headers"], row["body"])
        self.copy(command, "curl command")


SCREEN = DeliveriesScreen
