"""Live: conversions newest first with one mark per postback config, and the detail of the
selected one (why each postback fired or not, what was sent and answered); the selected
conversion can be re-evaluated through the current rules, a dry run shown in its detail
first."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, ClassVar, cast

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType

from store.read import queries
from store.read.filters import ListFilter
from store.read.model import ChangeRow, ConversionRow
from tui import actions
from tui import format as fmt
from tui.screens.base import FOLLOW_DELAY, TableScreen
from tui.sources import Fetch, Row, Snapshot, Source, plain_cell, times
from tui.widgets.answers import reevaluation_text
from tui.widgets.detail import DetailPane
from tui.widgets.live_table import LiveTable
from tui.widgets.rows import Column

# Up to this many postback config names each get a column of their own; more share one
# column of ``name:mark`` labels.
NAMED_COLUMNS = 3
LABEL_WIDTH = 5  # a config's short label at most (unless its start is another's)
WIDE_LEGEND = 100  # from this width on, the legend's words are whole


class _PostbackMarks(Source):
    """What Live's two views share: a place for each postback config, named. The names are
    read with each fetch; each gets its column (or its label) in the order of its first
    config's id, so a config added later never moves the older ones."""

    def __init__(self) -> None:
        super().__init__()
        self.names: tuple[str, ...] = ()
        self._configs_changed = False
        self._last_event: int | None = None

    def table_columns(self) -> list[Column]:
        columns = [column for column in self.columns if column.key != "marks"]
        labels = short_labels(self.names)
        if len(self.names) > NAMED_COLUMNS:
            # one column of labelled marks, wide enough for every label if it can be
            needed = min(sum(len(label) + 3 for label in labels.values()) - 1, 40)
            shared = (
                replace(c, min=needed, max=None, weight=20)
                for c in self.columns
                if c.key == "marks"
            )
            return [*columns, *shared]
        return [*columns, *(config_column(name, labels[name]) for name in self.names)]

    def fetch(self, conn: sqlite3.Connection, snapshot: Snapshot) -> Fetch:
        names = tuple(queries.postback_names(conn))
        # a config added, renamed or deleted: every row shown is read again, to show it
        self._configs_changed = bool(self.names) and names != self.names
        self.names = names
        return super().fetch(conn, snapshot)

    def touched(self, conn: sqlite3.Connection, window: list[int]) -> set[int]:
        previous = self.new_events(conn)
        if self._configs_changed:
            return set(window)
        if previous is None or not window:
            return set()
        return self.changed_since(conn, previous, window)

    def changed_since(self, conn: sqlite3.Connection, event: int, window: list[int]) -> set[int]:
        """Rows of the window that an event above ``event`` changed."""
        raise NotImplementedError

    def new_events(self, conn: sqlite3.Connection) -> int | None:
        """The newest event id last seen, when events came since (else None)."""
        latest = queries.latest_event_id(conn)
        previous, self._last_event = self._last_event, latest
        if previous is None or latest <= previous:
            return None
        return previous


def config_column(name: str, label: str) -> Column:
    """A postback config's own column: its mark on each row, titled by its name where the
    column is as wide, else by its short ``label`` (never a cut name): at 80 columns three
    configs leave room for the others."""
    short = label if label != name else ""
    return Column(f"pb:{name}", name, max(len(label), 1), len(name), weight=20, short=short)


@cache
def short_labels(names: tuple[str, ...]) -> dict[str, str]:
    """A short label for each postback config name, unique among them: its first word cut to
    5 characters ("paid deposits" -> "paid"); names whose labels are alike each take more of
    their name until they differ ("paid d", "paid l")."""
    labels = {name: (name.split() or [name])[0][:LABEL_WIDTH] for name in names}
    while True:
        alike = [name for name in names if list(labels.values()).count(labels[name]) > 1]
        longer = {name: _longer(name, labels[name]) for name in alike}
        if not alike or longer == {name: labels[name] for name in alike}:
            break
        labels.update(longer)
    return labels


def _longer(name: str, label: str) -> str:
    """``label`` (the start of ``name``) with one more character of the name, a space kept
    only with what follows it."""
    size = len(label) + 1
    while size < len(name) and name[size - 1] == " ":
        size += 1
    return name[:size]


def mark_cells(row: ConversionRow, names: tuple[str, ...]) -> dict[str, Text]:
    """A row's marks as cells: one per postback config's column, and all of them labelled
    with the short labels of ``names`` (all the configs' names shown)."""
    cells = {f"pb:{item.postback}": fmt.mark(item.mark) for item in row.marks}
    labels = short_labels(names)
    cells["marks"] = fmt.named_marks(
        (labels.get(item.postback, item.postback), item.mark) for item in row.marks
    )
    return cells


class Conversions(_PostbackMarks):
    """Live's new conversions: newest first, each with its last change's time."""

    table = "conversions"
    record = ConversionRow
    columns: ClassVar[list[Column]] = [
        Column("id", "#", 5, 8, priority=3, justify="right"),
        Column("time", "time", 8),
        Column("changed", "changed", 8, priority=1),
        Column("click", "click id", 12, 24, weight=10, shorten=fmt.shorten_id),
        Column("campaign", "campaign", 8, 16, weight=1, priority=2),
        Column("type", "type", 7, 14, weight=1),
        Column("status", "status", 12, 20, weight=1),
        Column("payout", "payout", 7, 14, weight=1, justify="right"),
        Column("txid", "txid", 12, 18, weight=1, priority=4),
        Column("marks", "postbacks", 9, 12),
    ]

    def page(self, conn: sqlite3.Connection, chosen: ListFilter) -> list[Row]:
        return list(queries.conversion_row_page(conn, chosen))

    def by_id(self, conn: sqlite3.Connection, ids: list[int]) -> list[Row]:
        return list(queries.conversion_rows(conn, ids))

    def settled(self, row: ConversionRow) -> bool:
        return row.settled

    def changed_since(self, conn: sqlite3.Connection, event: int, window: list[int]) -> set[int]:
        """Conversions of the window updated by a new event (a status change, say)."""
        return queries.conversions_updated(conn, event, window)

    def cells(self, row: ConversionRow) -> dict[str, Text]:
        changed = row.updated_at > row.created_at
        return {
            "id": Text(str(row.id), style="dim"),
            "time": Text(fmt.clock_time(row.created_at)),
            "changed": Text(fmt.clock_time(row.updated_at) if changed else ""),
            "click": fmt.literal(row.click_id),
            "campaign": fmt.literal(row.campaign),
            "type": fmt.literal(row.type or "—"),
            "status": fmt.status_text(row.status, row.raw_status),
            "payout": Text(fmt.payout(row.payout, row.currency)),
            "txid": fmt.literal(row.txid or ""),
            **mark_cells(row, self.names),
        }


class Changes(_PostbackMarks):
    """Live's recent changes: one row per conversion event, newest first (an approval of
    yesterday's deposit comes on top), with the event's time and what it set, and the
    conversion's marks as they stand now. Rows are keyed by the event's id."""

    table = "conversion_events"
    record = ChangeRow
    noun = "changes"
    # the event's time and change word, then the conversion's columns (its status: the one
    # the event set, without the raw value); at 80 columns the type makes room for the marks
    columns: ClassVar[list[Column]] = [
        Column("time", "time", 8),
        Column("change", "change", 7),
        *(
            replace(c, priority=1)
            if c.key == "type"
            else replace(c, min=9)
            if c.key == "status"
            else c
            for c in Conversions.columns
            if c.key not in ("time", "changed", "txid")
        ),
    ]

    def page(self, conn: sqlite3.Connection, chosen: ListFilter) -> list[Row]:
        return list(queries.change_rows(conn, queries.page_ids(conn, self.table, chosen)))

    def by_id(self, conn: sqlite3.Connection, ids: list[int]) -> list[Row]:
        return list(queries.change_rows(conn, ids))

    def settled(self, row: ChangeRow) -> bool:
        return row.settled

    def changed_since(self, conn: sqlite3.Connection, event: int, window: list[int]) -> set[int]:
        """Events of the window whose conversion changed again since (their marks move)."""
        return queries.changes_touched(conn, event, window)

    def cells(self, row: ChangeRow) -> dict[str, Text]:
        conversion = row.conversion
        cells = {
            "time": Text(fmt.clock_time(row.at)),
            "change": Text(row.change, style="bold" if row.change != "created" else "dim"),
            "id": Text(str(row.conversion_id), style="dim"),
            "click": fmt.literal(conversion.click_id),
            "campaign": fmt.literal(conversion.campaign),
            "type": fmt.literal(conversion.type or "—"),
            "status": fmt.status_text(row.status, None),
            "payout": Text(fmt.payout(conversion.payout, conversion.currency)),
            **mark_cells(conversion, self.names),
        }
        # a column of the conversion's that is not drawn here shows its field, as in the other
        # view (a field that is not the event's is the conversion's)
        timed = times(ConversionRow)
        for column in self.columns:
            if column.key not in cells and column.key in conversion:
                cells[column.key] = plain_cell(conversion[column.key], time=column.key in timed)
        return cells


@dataclass(frozen=True)
class DryRun:
    """A re-evaluation's dry run of one conversion, shown in its detail: the API's answer
    without fire (what recording records) and with it (what recording and firing records)."""

    conversion_id: int
    answer: dict[str, Any]
    fired: dict[str, Any]


def conversion_of(data: Row) -> ConversionRow:
    """The conversion a Live row shows, in either view."""
    return data.conversion if isinstance(data, ChangeRow) else cast(ConversionRow, data)


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
        Binding(
            "v",
            "switch_view",
            "View",
            tooltip="Switch between new conversions and recent changes (every event, newest"
            " first: an update of an old conversion comes on top)",
            id="live.view",
        ),
        Binding("t", "trace", "Trace", tooltip="Trace this conversion's click", id="live.trace"),
        Binding("y", "copy_click", "Copy id", tooltip="Copy the click id", id="live.copy"),
        Binding(
            "c",
            "copy_curl",
            "Copy curl",
            tooltip="Copy the postback as curl",
            show=False,  # (in the keys panel and the palette: the footer has 80 columns)
            id="live.curl",
        ),
        Binding(
            "m",
            "manual",
            "By hand",
            tooltip="Enter a conversion by hand for this row's click",
            id="live.manual",
        ),
        Binding(
            "R",
            "reevaluate",
            "Re-evaluate",
            tooltip="Dry-run this conversion through the current rules; again: record",
            show=False,  # (in the keys panel and the palette: the footer has 80 columns)
            id="live.reevaluate",
        ),
        Binding(
            "F",
            "record(True)",
            "Record+fire",
            tooltip="Record the re-evaluation's dry run and send the newly fired postbacks",
            show=False,
            id="live.fire",
        ),
        Binding("tab", "switch_pane", "Detail", show=False, id="live.pane"),
        Binding("escape", "focus_table", "Table", show=False, id="live.back"),
    ]

    SOURCE = Conversions
    TABLE_TITLE = "Conversions"
    CHANGES_TITLE = "Recent changes"
    TABLE_PLACEHOLDER = "No conversions yet."
    DETAIL_PLACEHOLDER = "Select a conversion to see why each postback fired or not."

    def hint(self, source: Source) -> Text:
        # The line explains the postback marks, in short words on a narrow terminal.
        return fmt.legend(compact=self.size.width < WIDE_LEGEND)

    def on_resize(self, event: Any) -> None:
        for live in self.query(LiveTable):  # (none while the screen is still being built)
            live.set_hint(self.hint(live.source))

    @property
    def showing_changes(self) -> bool:
        """Whether Live shows recent changes (else new conversions)."""
        return isinstance(self.live.source, Changes)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._other: Source | None = None  # the view not shown, kept with its filters
        self._dry_run: DryRun | None = None  # shown in the detail of its conversion

    def action_switch_view(self) -> None:
        """Switch between new conversions and recent changes, each with its own filters,
        starting from the newest."""
        live = self.live
        source = self._other or Changes()
        self._other = live.source
        live.source = source
        live.title = self.CHANGES_TITLE if isinstance(source, Changes) else self.TABLE_TITLE
        self.filters_changed()  # (the new rows come with their columns)

    def action_export(self) -> None:
        if self.showing_changes:  # (the exports list conversions, decisions, deliveries, requests)
            self.notify(
                f"Recent changes are not exported: {self.key_of('view')} shows new conversions,"
                " which it exports",
                timeout=4,
                markup=False,
            )
            return
        super().action_export()

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
        row = self.live.table.get(key)
        if row is None:
            return None
        conversion_id = conversion_of(row.data).id
        dry_run = self._dry_run
        if dry_run is not None and dry_run.conversion_id == conversion_id:
            return self._dry_run_text(dry_run)
        self._show_dry_run(None)  # (another conversion's detail: that dry run is left)
        detail = await self.dash.store.read(
            lambda conn: queries.conversion_detail(conn, conversion_id)
        )
        source = self.live.source
        labels = short_labels(source.names) if isinstance(source, _PostbackMarks) else {}
        return None if detail is None else fmt.conversion_detail(detail, labels)

    def selected_conversion(self) -> ConversionRow | None:
        """The conversion of the row under the cursor, in either view."""
        row = self.live.table.cursor_row
        return None if row is None else conversion_of(row.data)

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
        row = self.selected_conversion()
        if row is None:
            self.nothing("conversion")
            return
        self.dash_app.trace(row.click_id)

    def action_copy_click(self) -> None:
        row = self.selected_conversion()
        if row is None:
            self.nothing("conversion")
            return
        self.copy(row.click_id, "click id")

    def action_manual(self) -> None:
        row = self.selected()
        click_id = "" if row is None else str(row["click_id"])
        self.app.push_screen(actions.manual_form(self.dash, click_id, self.notify))

    # -- re-evaluation --------------------------------------------------------------------------

    def action_reevaluate(self) -> None:
        """A dry run of the selected conversion through the current rules, shown in its
        detail; pressed again on the dry run shown, record it."""
        row = self.selected_conversion()
        if row is None:
            self.nothing("conversion")
            return
        if self._dry_run is not None and self._dry_run.conversion_id == row.id:
            self.action_record(False)
            return
        self._run_dry(row.id)

    def action_record(self, fire: bool) -> None:
        """Record the dry run shown (``fire``: and send the newly fired postbacks)."""
        row = self.selected_conversion()
        shown = self._dry_run
        if row is None or shown is None or shown.conversion_id != row.id:
            self.notify(
                f"Nothing to record: {self.key_of('reevaluate')} first runs a dry run of the "
                "selected conversion",
                severity="warning",
                markup=False,
            )
            return
        if not (shown.fired if fire else shown.answer)["changes"]:
            self.notify("The dry run changes no decision: nothing to record", markup=False)
            return
        self._record(shown.conversion_id, fire)

    def action_focus_table(self) -> None:
        if self._dry_run is not None:  # Esc closes the dry run shown
            self._show_dry_run(None)
            self._show_selected()
        super().action_focus_table()

    def _show_dry_run(self, dry_run: DryRun | None) -> None:
        """Keep ``dry_run`` for its conversion's detail (None: none). While one is shown, new
        conversions count above the table instead of moving the cursor off its row."""
        self._dry_run = dry_run
        self.live.hold(dry_run is not None)

    def _dry_run_text(self, dry_run: DryRun) -> Text:
        return reevaluation_text(
            dry_run.answer,
            Text(f"conversion #{dry_run.conversion_id}"),
            self.key_of("reevaluate"),
            self.key_of("fire"),
            dry_run.fired,
        )

    def _show_selected(self) -> None:
        """Read the selected row's detail again, now."""
        key = self.live.table.cursor_key
        if key is not None:
            self.load_detail(key, lambda: self.read_detail(key), now=True)

    @work(name="re-evaluate a conversion", group="reevaluate", exclusive=True, exit_on_error=False)
    async def _run_dry(self, conversion_id: int) -> None:
        selection = {"ids": [conversion_id]}
        answer, fired = await actions.reevaluation_dry_runs(self.dash, selection)
        self._show_dry_run(DryRun(conversion_id, answer, fired))
        self._show_selected()

    @work(name="record the re-evaluation", group="reevaluate", exclusive=True, exit_on_error=False)
    async def _record(self, conversion_id: int, fire: bool) -> None:
        selection = {"ids": [conversion_id]}
        answer = await actions.reevaluate(self.dash, selection, dry_run=False, fire=fire)
        self._show_dry_run(None)
        sentence = actions.reevaluated_sentence(answer, f"conversion #{conversion_id}")
        self.notify(sentence, markup=False)
        self._show_selected()

    def action_copy_curl(self) -> None:
        row = self.selected_conversion()
        if row is None:
            self.nothing("conversion")
            return
        key = row.id
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
