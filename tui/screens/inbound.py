"""Inbound: every request received, the rejected ones with their reasons."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Container

from tui import format as fmt
from tui.screens.base import DETAIL_DELAY, FOLLOW_DELAY, DashScreen
from tui.sources import Inbound
from tui.widgets.detail import DetailPane
from tui.widgets.live_table import LiveTable
from tui.widgets.rows import RowTable


class InboundScreen(DashScreen):
    NAME = "inbound"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "show", "Show", tooltip="All, rejected, accepted…", id="inbound.filter"),
        Binding("y", "copy_url", "Copy URL", id="inbound.copy"),
        Binding("c", "copy_curl", "Copy curl", id="inbound.curl"),
        Binding("t", "trace", "Trace", tooltip="Trace this request's click", id="inbound.trace"),
        Binding(
            "f", "follow", "Follow", tooltip="Go to the newest", show=False, id="inbound.follow"
        ),
        Binding("tab", "switch_pane", "Detail", show=False, id="inbound.pane"),
        Binding("escape", "focus_table", "Table", show=False, id="inbound.back"),
    ]

    def body(self) -> Any:
        with Container(classes="split"):
            yield LiveTable(
                self.dash.store,
                Inbound(),
                title="Inbound",
                placeholder="Nothing received yet.",
                hint=self._filters_hint(),
                id="inbound-table",
            )
            yield DetailPane("Select a request to see it as received.")

    @property
    def live(self) -> LiveTable:
        return self.query_one(LiveTable)

    def on_mount(self) -> None:
        self.live.table.focus()

    def data_changed(self) -> None:
        self.live.changed()

    def _filters_hint(self, current: str = "all") -> Text:
        text = Text(end="")
        for name in Inbound.filters:
            text.append(f" {name}", style="bold reverse" if name == current else "dim")
        return text

    def _selected(self) -> dict[str, Any] | None:
        row = self.live.table.cursor_row
        return None if row is None else dict(row.data)

    def on_row_table_highlighted(self, message: RowTable.Highlighted) -> None:
        if message.key is not None:
            row = self._selected()
            if row is not None:
                delay = DETAIL_DELAY if message.by_user else FOLLOW_DELAY
                self.load_detail(message.key, lambda: self._detail(row), delay=delay)

    def on_row_table_selected(self, message: RowTable.Selected) -> None:
        self.query_one(DetailPane).focus()

    async def _detail(self, row: dict[str, Any]) -> Text:
        return fmt.inbound_detail(row)

    def action_show(self) -> None:
        shown = self.live.source.next_filter()
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

    def _url(self, row: dict[str, Any]) -> str:
        return self.dash.base_url + fmt.request_target(row["path"], row["query"])

    def action_copy_url(self) -> None:
        row = self._selected()
        if row is None:
            self.nothing("request")
            return
        self.copy(self._url(row), "URL")

    def action_copy_curl(self) -> None:
        row = self._selected()
        if row is None:
            self.nothing("request")
            return
        headers = {k: v for k, v in row["headers"].items() if k == "Content-Type"}
        self.copy(fmt.curl(row["method"], self._url(row), headers, row["body"]), "curl command")

    def action_trace(self) -> None:
        row = self._selected()
        if row is None or not row.get("click_id"):
            self.nothing("request with a click id")
            return
        self.dash_app.trace(str(row["click_id"]))
