"""Deliveries: every outbound request, filterable by outcome; resend the selected one, copy
its URL or a curl command."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Container

from store import views
from tui import format as fmt
from tui.screens.base import DETAIL_DELAY, FOLLOW_DELAY, DashScreen
from tui.sources import Deliveries
from tui.widgets.detail import DetailPane
from tui.widgets.live_table import LiveTable
from tui.widgets.rows import RowTable


class DeliveriesScreen(DashScreen):
    NAME = "deliveries"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "outcome", "Outcome", tooltip="Show one outcome", id="deliveries.filter"),
        Binding("r", "resend", "Resend", tooltip="Send this request again", id="deliveries.resend"),
        Binding("y", "copy_url", "Copy URL", id="deliveries.copy"),
        Binding("c", "copy_curl", "Copy curl", id="deliveries.curl"),
        Binding(
            "f", "follow", "Follow", tooltip="Go to the newest", show=False, id="deliveries.follow"
        ),
        Binding("tab", "switch_pane", "Detail", show=False, id="deliveries.pane"),
        Binding("escape", "focus_table", "Table", show=False, id="deliveries.back"),
    ]

    def body(self) -> Any:
        with Container(classes="split"):
            yield LiveTable(
                self.dash.store,
                Deliveries(),
                title="Deliveries",
                placeholder="No deliveries yet.",
                hint=self._filters_hint(),
                id="deliveries-table",
            )
            yield DetailPane("Select a delivery to see its request and answer.")

    @property
    def live(self) -> LiveTable:
        return self.query_one(LiveTable)

    def on_mount(self) -> None:
        self.live.table.focus()

    def data_changed(self) -> None:
        self.live.changed()

    def _filters_hint(self, current: str = "all") -> Text:
        text = Text(end="")
        for name in Deliveries.filters:
            text.append(f" {name}", style="bold reverse" if name == current else "dim")
        return text

    def _selected(self) -> dict[str, Any] | None:
        row = self.live.table.cursor_row
        return None if row is None else dict(row.data)

    def on_row_table_highlighted(self, message: RowTable.Highlighted) -> None:
        if message.key is not None:
            key = message.key
            delay = DETAIL_DELAY if message.by_user else FOLLOW_DELAY
            self.load_detail(key, lambda: self._detail(key), delay=delay)

    def on_live_table_rows_changed(self, message: LiveTable.RowsChanged) -> None:
        key = self.live.table.cursor_key
        if key is not None and key in message.keys:
            self.load_detail(key, lambda: self._detail(key), delay=FOLLOW_DELAY)

    def on_row_table_selected(self, message: RowTable.Selected) -> None:
        self.query_one(DetailPane).focus()

    async def _detail(self, key: int) -> Text | None:
        rows = await self.dash.store.read(lambda conn: views.deliveries_page(conn, ids=[key]))
        return fmt.delivery_detail(rows[0]) if rows else None

    def action_outcome(self) -> None:
        source = self.live.source
        shown = source.next_filter()
        self.live.set_hint(self._filters_hint(shown))
        self.live.reload()

    def action_follow(self) -> None:
        self.live.follow()

    def action_focus_table(self) -> None:
        self.live.table.focus()

    def action_switch_pane(self) -> None:
        if self.live.table.has_focus:
            self.query_one(DetailPane).focus()
        else:
            self.live.table.focus()

    def action_resend(self) -> None:
        row = self._selected()
        if row is None:
            self.nothing("delivery")
            return
        self.run_worker(self._resend(int(row["id"])), group="resend")

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

    def action_copy_url(self) -> None:
        row = self._selected()
        if row is None:
            self.nothing("delivery")
            return
        self.copy(str(row["url"]), "URL")

    def action_copy_curl(self) -> None:
        row = self._selected()
        if row is None:
            self.nothing("delivery")
            return
        command = fmt.curl(row["method"], row["url"], row["headers"], row["body"])
        self.copy(command, "curl command")
