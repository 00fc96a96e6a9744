"""Inbound: every request received, the rejected ones with their reasons; replay the selected
one, as it was or edited first."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from store.read import queries
from store.read.filters import INBOUND_SHOWS, ListFilter
from store.read.model import InboundView
from tui import actions
from tui import format as fmt
from tui.context import ApiError
from tui.screens.base import TableScreen
from tui.sources import Row, Source
from tui.widgets.rows import Column

REPLAY = Text("replay", style="bold", end="")


class Inbound(Source):
    table = "inbound"
    record = InboundView
    shows = INBOUND_SHOWS
    noun = "requests"
    columns: ClassVar[list[Column]] = [
        Column("id", "#", 5, 8, priority=2, justify="right"),
        Column("time", "time", 8),
        Column("endpoint", "what", 8),
        Column("request", "request", 20, None, weight=4),
        Column("outcome", "outcome", 8),
        Column("reason", "reason", 12, None, weight=3, priority=1),
    ]

    def page(self, conn: sqlite3.Connection, chosen: ListFilter) -> list[Row]:
        return list(queries.inbound(conn, chosen))

    def by_id(self, conn: sqlite3.Connection, ids: list[int]) -> list[Row]:
        return list(queries.inbound_by_id(conn, ids))

    def cells(self, row: InboundView) -> dict[str, Text]:
        return {
            "id": Text(str(row.id), style="dim"),
            "time": Text(fmt.clock_time(row.received_at)),
            # a replay says so where the narrowest table still shows it; its detail and
            # the reason column name the original
            "endpoint": fmt.literal(row.endpoint) if row.replay_of is None else REPLAY,
            "request": fmt.literal(f"{row.method} {fmt.request_target(row.path, row.query)}"),
            "outcome": fmt.outcome_text(row.outcome),
            "reason": reason_text(row),
        }


def reason_text(row: InboundView) -> Text:
    """The reason column: a replay names the request it replays, then the reason."""
    text = Text(end="", no_wrap=True)
    if row.replay_of is not None:
        text.append(f"replay of #{row.replay_of}", style="bold")
        if row.reason:
            text.append(": ")
    text.append_text(fmt.literal(row.reason))
    return text


class InboundScreen(TableScreen):
    NAME = "inbound"
    KEY = "4"
    LABEL = "Inbound"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "show", "Show", tooltip="All, rejected, accepted…", id="inbound.filter"),
        Binding("y", "copy_url", "Copy URL", id="inbound.copy"),
        Binding(
            "c",
            "copy_curl",
            "Copy curl",
            tooltip="Copy the request as curl",
            show=False,  # (in the keys panel and the palette: the footer has 80 columns)
            id="inbound.curl",
        ),
        Binding("t", "trace", "Trace", tooltip="Trace this request's click", id="inbound.trace"),
        Binding(
            "r", "replay", "Replay", tooltip="Replay this request as it was", id="inbound.replay"
        ),
        Binding(
            "e",
            "replay_edited",
            "Edit",
            tooltip="Edit this request's query and body, then replay it",
            id="inbound.edit",
        ),
        Binding(
            "f", "follow", "Follow", tooltip="Go to the newest", show=False, id="inbound.follow"
        ),
        Binding("tab", "switch_pane", "Detail", show=False, id="inbound.pane"),
        Binding("escape", "focus_table", "Table", show=False, id="inbound.back"),
    ]

    SOURCE = Inbound
    TABLE_TITLE = "Inbound"
    TABLE_PLACEHOLDER = "Nothing received yet."
    DETAIL_PLACEHOLDER = "Select a request to see it as received."

    def show_detail(self, key: int, *, delay: float) -> None:
        # The table's row holds the whole request: only its replays are read.
        row = self.live.table.cursor_row
        if row is not None:
            request: InboundView = row.data
            self.load_detail(key, lambda: self._detail(request), delay=delay)

    async def _detail(self, request: InboundView) -> Text:
        replays = await self.dash.store.read(lambda conn: queries.replays_of(conn, [request.id]))
        return fmt.inbound_detail(request, replays)

    def action_show(self) -> None:
        self.next_filter()

    def _url(self, row: Mapping[str, Any]) -> str:
        return self.dash.base_url + fmt.request_target(row["path"], row["query"])

    def action_copy_url(self) -> None:
        row = self.selected()
        if row is None:
            self.nothing("request")
            return
        self.copy(self._url(row), "URL")

    def action_copy_curl(self) -> None:
        row = self.selected()
        if row is None:
            self.nothing("request")
            return
        headers = {k: v for k, v in row["headers"].items() if k == "Content-Type"}
        self.copy(fmt.curl(row["method"], self._url(row), headers, row["body"]), "curl command")

    def action_trace(self) -> None:
        row = self.selected()
        if row is None or not row.get("click_id"):
            self.nothing("request with a click id")
            return
        self.dash_app.trace(str(row["click_id"]))

    def action_replay(self) -> None:
        row = self.live.table.cursor_row
        if row is None:
            self.nothing("request")
            return
        request: InboundView = row.data
        self.run_worker(
            self._replay(request.id), name="replay the request", group="replay", exit_on_error=False
        )

    async def _replay(self, inbound_id: int) -> None:
        try:
            sentence = await actions.replay(self.dash, inbound_id)
        except ApiError as error:
            self.notify(str(error), title="Replay", severity="error", markup=False, timeout=8)
            return
        self.notify(sentence, markup=False, timeout=8)

    def action_replay_edited(self) -> None:
        row = self.live.table.cursor_row
        if row is None:
            self.nothing("request")
            return
        self.app.push_screen(actions.replay_form(self.dash, row.data, self.notify))


SCREEN = InboundScreen
