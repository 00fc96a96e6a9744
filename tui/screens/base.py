"""What every screen shares: the header, the footer, data-change handling, loading an item's
detail off the UI's path, and copying to the clipboard; and what the screens of one live table
beside a detail pane share."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events, work
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.worker import Worker

from store.read import export, queries
from store.read.filters import ALL, FilterError, ListFilter, parameters
from tui import format as fmt
from tui.context import Dash
from tui.messages import DataChanged
from tui.sources import Row, Source
from tui.widgets.detail import DetailPane
from tui.widgets.filter_bar import FilterBar, read_filter, split_terms, terms_text
from tui.widgets.footer import KeyFooter
from tui.widgets.header import StatusBar
from tui.widgets.live_table import LiveTable
from tui.widgets.rows import RowTable
from tui.workers import report_failure

if TYPE_CHECKING:
    from tui.app import PostwatchApp

DETAIL_DELAY = 0.05  # seconds between detail reads while the cursor moves
FOLLOW_DELAY = 0.3  # seconds between detail reads while following a flood of new rows


@dataclass
class DetailLoaded(Message, bubble=False):
    key: object
    text: Text | None


class DashScreen(Screen[None]):
    """A dashboard screen. Its module (``tui/screens/<NAME>.py``) ends with ``SCREEN = <the
    class>``, and ``tui.screens.SCREENS`` finds it there: the app's number key ``KEY`` shows
    it (binding id ``app.<NAME>``), and ``LABEL`` names it on its header tab, in the keys
    and in the command palette."""

    NAME: ClassVar[str] = ""
    KEY: ClassVar[str] = ""
    LABEL: ClassVar[str] = ""

    def __init__(self, dash: Dash) -> None:
        super().__init__(id=f"screen-{self.NAME}")
        self.dash = dash
        self._detail_timer: Timer | None = None
        self._detail_key: object = None
        self._detail_loader: Callable[[], Awaitable[Text | None]] | None = None
        self._detail_due = 0.0
        self._detail_read_at = -math.inf  # when the last read started
        self._resumed = False  # shown at least once
        self._built_ahead = False  # mounted and laid out before its first switch
        self._version_seen: int | None = None  # the data version last refreshed for

    @property
    def dash_app(self) -> PostwatchApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> Any:
        yield StatusBar(self.NAME)
        yield from self.body()
        yield KeyFooter(compact=True)

    def body(self) -> Any:
        raise NotImplementedError

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_failure(self, event)

    # -- data ---------------------------------------------------------------------------------

    def on_data_changed(self, message: DataChanged) -> None:
        self._version_seen = message.version
        self.data_changed()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # (This runs before Textual's own handler, which reads the flag.) A screen shown
        # before kept its styles up to date while away: a class change restyles at once, and
        # a theme change restyles it at the switch. Restyling every widget again would cost
        # 10-40 ms at each switch.
        kept = self._resumed or self._built_ahead
        if kept:
            event.refresh_styles = False
        # Only the screen shown hears of changes: one coming back refreshes when the database
        # changed while it was away (or when that is not known yet).
        version = self.dash_app.data_version
        if not kept or version is None or version != self._version_seen:
            self._version_seen = version
            self.data_changed()
        self._resumed = True

    def settled(self) -> bool:
        """Whether this screen has read what it shows: its tables loaded and no read of its
        own (detail, campaigns) scheduled or under way."""
        if self._detail_timer is not None:
            return False
        if not all(table.loaded and not table._busy for table in self.query(LiveTable)):
            return False
        return not any(
            worker.is_running and worker.node is not None and _on(worker.node, self)
            for worker in self.app.workers
        )

    def built_ahead(self) -> None:
        """The app built this screen before its first switch: read its data now."""
        self._built_ahead = True
        self._version_seen = self.dash_app.data_version
        self.data_changed()

    def data_changed(self) -> None:
        """The database changed: refresh what this screen shows."""

    # -- detail -------------------------------------------------------------------------------

    def load_detail(
        self,
        key: object,
        loader: Callable[[], Awaitable[Text | None]],
        *,
        now: bool = False,
        delay: float = DETAIL_DELAY,
    ) -> None:
        """Read an item's detail off the UI's path, at most once per ``delay``: the first
        request after a quiet ``delay`` reads at once (a single keypress shows its detail
        without waiting); while a read is scheduled, newer requests replace its item instead
        of postponing it, so a detail that follows a flood of new rows or a held key is
        refreshed a few times a second, not at every row."""
        self._detail_key = key
        self._detail_loader = loader
        clock = time.monotonic()
        due = clock if now else max(clock, self._detail_read_at + delay)
        if self._detail_timer is not None:
            if due >= self._detail_due:
                return
            self._detail_timer.stop()
            self._detail_timer = None
        self._detail_due = due
        if due <= clock:
            self._start_detail()
        else:
            self._detail_timer = self.set_timer(due - clock, self._start_detail)

    def _start_detail(self) -> None:
        self._detail_timer = None
        self._detail_read_at = time.monotonic()
        if self._detail_loader is not None:
            self._read_detail(self._detail_key, self._detail_loader)

    @work(name="read the detail", group="detail", exclusive=True, exit_on_error=False)
    async def _read_detail(self, key: object, loader: Callable[[], Awaitable[Text | None]]) -> None:
        text = await loader()
        self.post_message(DetailLoaded(key, text))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.key != self._detail_key:
            return
        pane = self.query_one(DetailPane)
        if message.text is None:
            pane.clear()
        else:
            pane.show(message.key, message.text)

    # -- clipboard ----------------------------------------------------------------------------

    def copy(self, value: str, what: str) -> None:
        """Copy to the clipboard with OSC 52 (the terminal does it, so it works over SSH)."""
        self.app.copy_to_clipboard(value)
        shown = value if len(value) <= 60 else value[:59] + "…"
        self.notify(f"Copied {what}: {shown}", markup=False, timeout=3)

    def nothing(self, what: str) -> None:
        self.notify(f"No {what} selected", severity="warning", markup=False, timeout=3)


def _on(node: object, screen: Screen[Any]) -> bool:
    """Whether ``node`` is ``screen`` or one of its widgets."""
    return node is screen or (
        isinstance(node, Widget) and node.is_attached and node.screen is screen
    )


def table_bindings(name: str) -> list[BindingType]:
    """The keys every table screen has, with ids of that screen (``<name>.find``…)."""
    return [
        Binding(
            "slash",
            "find",
            "Filter",
            tooltip="Filter the rows: campaign=… status=… since=1h, or text to find",
            id=f"{name}.find",
        ),
        Binding(
            "x",
            "clear",
            "Clear filters",
            tooltip="Clear the filter bar's filters",
            show=False,
            id=f"{name}.clear",
        ),
        Binding(
            "z",
            "timezone",
            "UTC/local",
            tooltip="Show times in local time or in UTC",
            show=False,
            id=f"{name}.timezone",
        ),
        Binding(
            "E",
            "export",
            "Export",
            tooltip="Export this view as CSV",
            show=False,
            id=f"{name}.export",
        ),
    ]


class TableScreen(DashScreen):
    """A live table of one source beside the detail of its selected row, and the filter bar;
    tab moves between them, escape goes back to the table. The bindings stay in each
    screen's ``BINDINGS``, where the app finds them for the palette and the keymap: the keys
    every table screen shares (``table_bindings``) are added to them here."""

    SOURCE: ClassVar[type[Source]]
    TABLE_TITLE: ClassVar[str]
    TABLE_PLACEHOLDER: ClassVar[str]
    DETAIL_PLACEHOLDER: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # (Textual merges a class's bindings when the class is made: add them first.)
        if cls.NAME and "BINDINGS" in cls.__dict__:
            cls.BINDINGS = [*cls.__dict__["BINDINGS"], *table_bindings(cls.NAME)]
        super().__init_subclass__(**kwargs)

    def __init__(self, dash: Dash) -> None:
        super().__init__(dash)
        fmt.TIMES.clock = dash.options.clock
        fmt.TIMES.local = dash.options.local_time

    def body(self) -> Any:
        source = self.SOURCE()
        with Container(id=f"{self.NAME}-body", classes="split"):
            yield LiveTable(
                self.dash.store,
                source,
                title=self.TABLE_TITLE,
                placeholder=self.TABLE_PLACEHOLDER,
                hint=self.hint(source),
                id=f"{self.NAME}-table",
            )
            yield DetailPane(self.DETAIL_PLACEHOLDER)
        yield FilterBar(id=f"{self.NAME}-filter")

    def hint(self, source: Source) -> Text:
        """The line beside the table's title: the source's filters, the one shown marked."""
        text = Text(end="")
        for name in source.filters:
            text.append(f" {name}", style="bold reverse" if name == source.show else "dim")
        return text

    @property
    def live(self) -> LiveTable:
        return self.query_one(LiveTable)

    def on_mount(self) -> None:
        if self.dash_app.still_running():  # (a screen built ahead as the app closes: no table)
            self.live.table.focus()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # (DashScreen's handler runs too.) Coming back to the screen lands on its table:
        # a detail left focused would take the keys meant for the rows (up, down).
        self.live.table.focus()

    def data_changed(self) -> None:
        self.live.changed()

    def selected(self) -> Row | None:
        """A copy of the data of the row under the cursor."""
        row = self.live.table.cursor_row
        return None if row is None else dict(row.data)

    # -- detail -------------------------------------------------------------------------------

    def on_row_table_highlighted(self, message: RowTable.Highlighted) -> None:
        if message.key is not None:
            delay = DETAIL_DELAY if message.by_user else FOLLOW_DELAY
            self.show_detail(message.key, delay=delay)
        elif self.live.source.filtered:  # a filter left no row: no detail of a row not shown
            self._detail_key = None
            self.query_one(DetailPane).clear()

    def on_row_table_selected(self, message: RowTable.Selected) -> None:
        self.query_one(DetailPane).focus()

    def show_detail(self, key: int, *, delay: float) -> None:
        """Show the detail of row ``key`` once it is read (see ``load_detail``)."""
        self.load_detail(key, lambda: self.read_detail(key), delay=delay)

    async def read_detail(self, key: int) -> Text | None:
        """The detail of row ``key``, or None when the row is gone."""
        raise NotImplementedError

    # -- actions ------------------------------------------------------------------------------

    def next_filter(self) -> None:
        """Show the source's next filter."""
        self.live.source.next_filter()
        self.filters_changed()

    def filters_changed(self, then: Callable[[], None] | None = None) -> None:
        """The filters shown changed: read the rows again. As they are shown, say on the hint
        line and in an empty table which filters are shown, and do ``then``: all of it in the
        same refresh as the rows (see ``LiveTable.reload``)."""
        live = self.live

        def shown() -> None:
            source = live.source
            live.set_hint(self.hint(source))
            live.make_room(bool(source.found_text))  # (narrow: the hint makes room)
            live.table.placeholder = self.placeholder(source)
            self.refresh_bindings()  # the clear key is offered while the bar's filters are set
            if then is not None:
                then()

        live.reload(shown)

    def placeholder(self, source: Source) -> str:
        """What an empty table says: that nothing came yet, or which filters leave nothing
        and the keys that change them."""
        if not source.filtered:
            return self.TABLE_PLACEHOLDER
        shown = terms_text(parameters(source.shows[source.show]))
        keys = []
        if source.found_text:
            keys.append(f"{self.key_of('clear')} clears")
        if source.show != source.filters[0]:
            keys.append(f"{self.key_of('filter')}: the next filter")
        terms = " ".join(part for part in (shown, source.found_text) if part)
        return f"No {source.rows_name} match {terms} ({', '.join(keys)})"

    # -- the filter bar -----------------------------------------------------------------------

    @property
    def bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    def action_find(self) -> None:
        source = self.live.source
        self.bar.open(source.found_text, source.table)

    def on_filter_bar_applied(self, message: FilterBar.Applied) -> None:
        source = self.live.source
        try:
            chosen = read_filter(source.table, message.text, self.dash.options.clock())
        except FilterError as error:
            self.bar.refuse(str(error))
            return
        self._apply_filter(chosen, terms_text(split_terms(message.text)))

    @work(name="apply the filters", group="filter", exclusive=True, exit_on_error=False)
    async def _apply_filter(self, chosen: ListFilter, typed: str) -> None:
        """Show the rows of ``chosen`` (``typed``: as the bar shows it)."""
        try:  # the campaign or traffic source named must exist
            found = await self.dash.store.read(lambda conn: queries.resolve(conn, chosen))
        except FilterError as error:
            self.bar.refuse(str(error))
            return
        source = self.live.source
        source.found = found
        source.found_text = typed
        self.filters_changed(then=self.leave_bar)  # the bar stays open until the rows show

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Clearing is offered only while the bar's filters are set: otherwise its key does
        # what it does elsewhere (an app key remapped onto it, say).
        if action == "clear" and self.is_mounted:
            return bool(self.live.source.found_text) or self.bar.is_open
        return True

    def action_clear(self) -> None:
        source = self.live.source
        if source.found_text:
            source.found = ALL
            source.found_text = ""
            self.filters_changed(then=self.leave_bar)
        else:
            self.leave_bar()

    def leave_bar(self) -> None:
        """Close the filter bar and give the table the focus at once (not at the next
        message, which may come after a refresh: the rows shown with the table unfocused)."""
        self.bar.close()
        self.set_focus(self.live.table)

    # -- times and export ---------------------------------------------------------------------

    def action_timezone(self) -> None:
        """Show every time in local time, or in UTC again, on every table screen."""
        fmt.TIMES.local = not fmt.TIMES.local
        for view in self.dash_app.views.values():
            if isinstance(view, TableScreen) and view.is_mounted:
                view.times_changed()
        self.notify(f"Times are shown in {fmt.TIMES.zone}", timeout=2, markup=False)

    def times_changed(self) -> None:
        """Draw the times again in the zone now shown: the rows, and the detail."""
        live = self.live
        live.redraw()
        key = live.table.cursor_key
        if key is not None:
            self.show_detail(key, delay=0.0)

    def action_export(self) -> None:
        source = self.live.source
        self._export(source.table, source.chosen, source.rows_name)

    @work(name="export the rows", group="export", exclusive=True, exit_on_error=False)
    async def _export(self, kind: str, chosen: ListFilter | None, rows_name: str) -> None:
        """Write the rows of this view (its filters shown) to a CSV file in the working
        directory, a page at a time (constant memory, as ``postwatch export``)."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.dash.options.clock()))
        path = Path.cwd() / f"postwatch-{kind}-{stamp}.csv"
        job = export.Export(kind=kind, format="csv", chosen=(chosen or ALL).page(limit=export.PAGE))
        count = 0
        with path.open("w", encoding="utf-8", newline="") as out:
            out.write(export.header(job))
            before: int | None = None
            while chosen is not None:
                page = await self.dash.store.read(
                    partial(export.read_page, export=job, before=before)
                )
                out.write(export.text(job, page.rows))
                count += len(page.rows)
                if page.next_before is None:
                    break
                before = page.next_before
        self.notify(f"Exported {count:,} {rows_name} to {path}", timeout=8, markup=False)

    def key_of(self, binding: str) -> str:
        """The key that runs this screen's binding ``binding`` (``[keys]`` may remap it),
        whether or not it is offered at this moment (clear is only while filters are set)."""
        return self.dash_app.key_for(f"{self.NAME}.{binding}") or binding

    def action_follow(self) -> None:
        self.live.follow()

    async def reveal_row(self, key: int) -> bool:
        """Put the table's cursor on row ``key`` and focus the table (see
        ``LiveTable.reveal``); False when the list shown has no such row."""
        self.live.table.focus()
        return await self.live.reveal(key)

    def action_focus_table(self) -> None:
        self.leave_bar()

    def action_switch_pane(self) -> None:
        if self.live.table.has_focus:
            self.query_one(DetailPane).focus()
        else:
            self.live.table.focus()
