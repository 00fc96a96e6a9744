"""Live: conversions newest first with one mark per postback config, and the detail of the
selected one (why each postback fired or not, what was sent and answered)."""

from __future__ import annotations

import sqlite3
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType

from store.read import queries
from store.read.filters import ListFilter
from store.read.model import ConversionRow
from tui import actions
from tui import format as fmt
from tui.screens.base import FOLLOW_DELAY, TableScreen
from tui.sources import Row, Source
from tui.widgets.detail import DetailPane
from tui.widgets.live_table import LiveTable
from tui.widgets.rows import Column


class Conversions(Source):
    table = "conversions"
    record = ConversionRow
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

    def page(self, conn: sqlite3.Connection, chosen: ListFilter) -> list[Row]:
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


class LiveScreen(TableScreen):
    NAME = "live"
    KEY = "1"
    LABEL = "Live"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "f",
            "follow",
            "Follow",
            tooltip="Go to the newest conversion",
            show=False,
            id="live.follow",
        ),
        Binding("t", "trace", "Trace", tooltip="Trace this conversion's click", id="live.trace"),
        Binding("y", "copy_click", "Copy id", tooltip="Copy the click id", id="live.copy"),
        Binding("c", "copy_curl", "Copy curl", tooltip="Copy the postback as curl", id="live.curl"),
        Binding(
            "m",
            "manual",
            "By hand",
            tooltip="Enter a conversion by hand for this row's click",
            id="live.manual",
        ),
        Binding("tab", "switch_pane", "Detail", show=False, id="live.pane"),
        Binding("escape", "focus_table", "Table", show=False, id="live.back"),
    ]

    SOURCE = Conversions
    TABLE_TITLE = "Conversions"
    TABLE_PLACEHOLDER = "No conversions yet."
    DETAIL_PLACEHOLDER = "Select a conversion to see why each postback fired or not."

    def hint(self, source: Source) -> Text:
        # Conversions have no filters: the line explains the postback marks instead.
        return fmt.legend()

    def on_live_table_rows_changed(self, message: LiveTable.RowsChanged) -> None:
        live = self.live
        if live.loaded and not live.table.rows:
            if not live.source.filtered:  # (a filter that leaves nothing says so in the table)
                self._show_getting_started()
            return
        key = live.table.cursor_key
        if key is not None and (key in message.keys or self._detail_key != key):
            self.show_detail(key, delay=FOLLOW_DELAY)

    async def read_detail(self, key: int) -> Text | None:
        detail = await self.dash.store.read(lambda conn: queries.conversion_detail(conn, key))
        return None if detail is None else fmt.conversion_detail(detail)

    @work(name="show how to start", group="empty", exclusive=True, exit_on_error=False)
    async def _show_getting_started(self) -> None:
        campaign = await self.dash.store.read(lambda conn: queries.campaign_key(conn, "sample"))
        text = getting_started(
            self.dash.base_url,
            campaign,
            self.dash_app.key_for("app.demo"),
            attached=self.dash.attached,
            db=str(self.dash.options.db),
            token_where=self.dash.token_where,
        )
        self.query_one(DetailPane).show("getting-started", text)

    def on_screen_resume(self, event: Any) -> None:
        # (DashScreen's handler runs too: Textual calls the handler of every class.)
        live = self.live
        if live.loaded and not live.table.rows and not live.source.filtered:
            self._show_getting_started()

    # -- actions ------------------------------------------------------------------------------

    def action_trace(self) -> None:
        row = self.selected()
        if row is None:
            self.nothing("conversion")
            return
        self.dash_app.trace(str(row["click_id"]))

    def action_copy_click(self) -> None:
        row = self.selected()
        if row is None:
            self.nothing("conversion")
            return
        self.copy(str(row["click_id"]), "click id")

    def action_manual(self) -> None:
        row = self.selected()
        click_id = "" if row is None else str(row["click_id"])
        self.app.push_screen(actions.manual_form(self.dash, click_id, self.notify))

    def action_copy_curl(self) -> None:
        row = self.selected()
        if row is None:
            self.nothing("conversion")
            return
        key = int(row["id"])
        self.run_worker(
            self._copy_curl(key), name="copy the curl command", group="copy", exit_on_error=False
        )

    async def _copy_curl(self, key: int) -> None:
        detail = await self.dash.store.read(lambda conn: queries.conversion_detail(conn, key))
        requests = () if detail is None else detail.inbound
        if not requests:
            self.nothing("postback")
            return
        request = requests[-1]
        url = self.dash.base_url + fmt.request_target(request.path, request.query)
        headers = {k: v for k, v in request.headers.items() if k == "Content-Type"}
        self.copy(fmt.curl(request.method, url, headers, request.body), "curl command")


def getting_started(
    base_url: str,
    campaign: str | None,
    demo_key: str,
    *,
    attached: bool,
    db: str,
    token_where: str = "",
) -> Text:
    """How to start: the curl lines for a click and a postback against the real listener, and
    the key that starts demo traffic."""
    key = campaign or "CAMPAIGN"
    out = fmt.Lines()
    out.line(Text("No conversions yet.", style="bold"))
    if attached:
        out.line(
            Text("Attached to ", style="dim"),
            fmt.literal(db),
            Text("; its listener (postwatch serve) should be at ", style="dim"),
            fmt.literal(base_url),
        )
    out.line("Send a click, then a postback with the clickid the first answer gives:")
    out.line("")
    out.line(fmt.literal(f"curl -s '{base_url}/click/{key}?ref_id=ext-1'", "bold"), indent=2)
    # The postback's values as curl -G data, so that no line is wider than an 80-column
    # terminal: a command copied from the terminal must not carry a wrap inside it.
    out.line(fmt.literal(f"curl -sG '{base_url}/postback' -d clickid=CLICKID \\", "bold"), indent=2)
    out.line(fmt.literal("-d type=Deposit -d status=approved -d sum=50", "bold"), indent=4)
    out.line("")
    out.line(
        "Or press ",
        Text(demo_key, style="bold reverse"),
        f" to start demo traffic to campaign '{key}' (press it again to stop).",
    )
    if token_where:
        out.line("")
        out.line(Text(f"The JSON API (/api/…) needs the API token: {token_where}.", style="dim"))
    return out.text


SCREEN = LiveScreen
