"""A keyed, windowed table for live data, drawn with the line API.

Only the visible lines are rendered, rows can be added at the top or the bottom and updated in
place by key, and the window is trimmed cheaply; the DataTable's row bookkeeping is built for
tables that are filled once, and removing rows from it costs a full re-index per row.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

CURSOR_MARK = "▶"
EMPTY = Text("", end="")


@dataclass(frozen=True)
class Column:
    """A column: a minimum width, an optional maximum, a share of the spare width, and a
    priority (columns with a higher one are left out first when the table is narrow)."""

    key: str
    label: str
    min: int
    max: int | None = None
    weight: int = 0
    priority: int = 0
    justify: Literal["left", "right"] = "left"
    # How a cell too wide for the column is shortened to a width (default: cut at the end
    # with an ellipsis); a URL's column keeps its query and shortens its middle.
    shorten: Callable[[Text, int], Text] | None = None
    # A shorter title, drawn instead of the label when the column is narrower than it (a
    # title is never cut: "paid" rather than "paid de…").
    short: str = ""

    def title(self, width: int) -> str:
        """The column's title at ``width``: its label, or its short title when the label is
        wider."""
        return self.short if self.short and len(self.label) > width else self.label


@dataclass
class TableRow:
    """One row: its key, its cells by column key, and the data it was made from. The cells may
    be given as a function that makes them when the row is first drawn: in a flood of new
    rows most scroll past without ever being drawn."""

    key: int
    cells: dict[str, Text] | Callable[[], dict[str, Text]]
    data: Any = None
    version: int = 0

    def texts(self) -> dict[str, Text]:
        if callable(self.cells):
            self.cells = self.cells()
        return self.cells


def layout_columns(columns: Sequence[Column], width: int) -> list[tuple[Column, int]]:
    """The columns that fit in ``width`` (one space between them) and their widths."""
    shown = list(columns)
    while shown:
        needed = sum(column.min for column in shown) + len(shown) - 1
        if needed <= width:
            break
        drop = max(shown, key=lambda column: (column.priority, shown.index(column)))
        if drop.priority == 0:
            break
        shown.remove(drop)
    widths = {column.key: column.min for column in shown}
    spare = width - (sum(widths.values()) + len(shown) - 1)
    growing = [column for column in shown if column.weight > 0]
    while spare > 0 and growing:
        total = sum(column.weight for column in growing)
        given = 0
        for column in list(growing):
            share = max(1, spare * column.weight // total)
            if column.max is not None:
                share = min(share, column.max - widths[column.key])
            share = min(share, spare - given)
            widths[column.key] += share
            given += share
            if column.max is not None and widths[column.key] >= column.max:
                growing.remove(column)
        if given == 0:
            break
        spare -= given
    return [(column, widths[column.key]) for column in shown]


class RowTable(ScrollView, can_focus=True):
    """Rows keyed by an integer id, newest first by convention, with a cursor."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "row-table--header",
        "row-table--cursor",
        "row-table--cursor-blurred",
        "row-table--placeholder",
    }

    DEFAULT_CSS = """
    RowTable {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        height: 1fr;
    }
    RowTable > .row-table--header { text-style: bold; color: $text-muted; }
    RowTable > .row-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    RowTable > .row-table--cursor-blurred { background: $block-cursor-blurred-background; }
    RowTable > .row-table--placeholder { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("home,g", "first", "First row", show=False, id="table.first"),
        Binding("end,G", "last", "Last row", show=False, id="table.last"),
        Binding("enter", "select", "Open", show=False, id="table.select"),
    ]

    @dataclass
    class Highlighted(Message):
        """The cursor moved to another row (or the row under it changed)."""

        table: RowTable
        key: int | None
        by_user: bool = False  # the cursor moved (not the rows under it)

        @property
        def control(self) -> RowTable:
            return self.table

    @dataclass
    class Selected(Message):
        """Enter (or a second click) on a row."""

        table: RowTable
        key: int

        @property
        def control(self) -> RowTable:
            return self.table

    @dataclass
    class End(Message):
        """The user asked for the last row (beyond the rows held, there may be older ones)."""

        table: RowTable

        @property
        def control(self) -> RowTable:
            return self.table

    @dataclass
    class NearEnd(Message):
        """The cursor came close to the last row: time to page older rows in."""

        table: RowTable

        @property
        def control(self) -> RowTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        placeholder: str = "Nothing yet.",
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.columns = list(columns)
        self.placeholder = placeholder
        self.rows: list[TableRow] = []
        self._index: dict[int, int] = {}
        self.cursor = 0
        self._layout: tuple[int, list[tuple[Column, int]]] | None = None
        self._cache: OrderedDict[tuple[Any, ...], Strip] = OrderedDict()
        self._styles: dict[str, Style] = {}  # by component class; as long-lived as the strips
        self._last_highlight: int | None = None

    # -- reading ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def keys(self) -> list[int]:
        return [row.key for row in self.rows]

    @property
    def top_key(self) -> int | None:
        return self.rows[0].key if self.rows else None

    @property
    def bottom_key(self) -> int | None:
        return self.rows[-1].key if self.rows else None

    @property
    def cursor_key(self) -> int | None:
        return self.rows[self.cursor].key if self.rows else None

    @property
    def cursor_row(self) -> TableRow | None:
        return self.rows[self.cursor] if self.rows else None

    def get(self, key: int) -> TableRow | None:
        index = self._index.get(key)
        return None if index is None else self.rows[index]

    @property
    def at_top(self) -> bool:
        """The cursor is on the first row and the first row is in view."""
        return self.cursor == 0 and round(self.scroll_y) == 0

    # -- changing -----------------------------------------------------------------------------

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Show these columns (the rows' cells are kept: a row draws the cells it has)."""
        if list(columns) == self.columns:
            return
        self.columns = list(columns)
        self._layout = None
        self._forget_strips()
        self.refresh()

    def _reindex(self) -> None:
        self._index = {row.key: index for index, row in enumerate(self.rows)}
        size = Size(self.size.width, len(self.rows) + 1)
        if size != self.virtual_size:
            # Only the scroll range moves: set it the way Textual does when a layout resizes a
            # scroll view, without laying the whole screen out again (a scrollbar that appears
            # or goes still does).
            self.set_reactive(RowTable.virtual_size, size)
            self._scroll_update(size)
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        self.refresh()
        self._post_highlight()

    def set_rows(self, rows: Iterable[TableRow], *, keep_cursor: bool = True) -> None:
        """Replace every row; keep the cursor on the same key when it is still there."""
        key = self.cursor_key if keep_cursor else None
        self.rows = list(rows)
        self._cache.clear()
        self._index = {row.key: index for index, row in enumerate(self.rows)}
        self.cursor = self._index.get(key, 0) if key is not None else 0
        if key is None or key not in self._index:
            self.scroll_to(y=0, animate=False)
        self._reindex()

    def prepend(self, rows: Sequence[TableRow], *, keep: int | None = None) -> None:
        """Add rows above the first (``rows`` in display order), then drop rows beyond the
        first ``keep``. A cursor on the first row stays there (following); one further down
        stays on its row, and so does the view. (One re-index: a table whose height did not
        change needs no new layout.)"""
        rows = [row for row in rows if row.key not in self._index]
        if not rows:
            return
        following = self.at_top
        self.rows[0:0] = rows
        if keep is not None and len(self.rows) > keep:
            del self.rows[keep:]
        if not following and len(self.rows) > len(rows):
            self.cursor += len(rows)
            self.scroll_to(y=self.scroll_y + len(rows), animate=False, force=True)
        self._reindex()

    def append(self, rows: Sequence[TableRow]) -> None:
        rows = [row for row in rows if row.key not in self._index]
        if rows:
            self.rows.extend(rows)
            self._reindex()

    def update(self, rows: Iterable[TableRow]) -> list[int]:
        """Replace rows in place by key; return the keys that were there. Redraws once, and
        only when one of them is in view."""
        updated = []
        first, last = self.visible_range()
        in_view = False
        for row in rows:
            index = self._index.get(row.key)
            if index is None:
                continue
            row.version = self.rows[index].version + 1
            self.rows[index] = row
            updated.append(row.key)
            in_view = in_view or first <= index < last
        if in_view:
            self.refresh()
        if self.cursor_key in updated:
            self._post_highlight(force=True)
        return updated

    def visible_range(self, margin: int = 0) -> tuple[int, int]:
        """The indexes of the rows in view (first, last + 1), widened by ``margin``."""
        top = round(self.scroll_y)
        height = max(1, self.scrollable_content_region.height - 1)
        return max(0, top - margin), min(len(self.rows), top + height + margin)

    def drop_top(self, count: int) -> None:
        """Drop the first ``count`` rows, keeping the cursor on its row and the view still."""
        count = min(count, max(0, self.cursor))
        if count <= 0:
            return
        del self.rows[:count]
        self.cursor -= count
        self.scroll_to(y=max(0, self.scroll_y - count), animate=False, force=True)
        self._reindex()

    def clear(self) -> None:
        self.set_rows([], keep_cursor=False)

    # -- cursor -------------------------------------------------------------------------------

    def move_cursor(self, index: int, *, reveal: bool = True) -> None:
        if not self.rows:
            return
        previous = self.cursor
        self.cursor = max(0, min(index, len(self.rows) - 1))
        if reveal:
            self._reveal()
        # Only the two rows change (a scroll redraws the whole view by itself); the header is
        # line 0, so row i is line i + 1.
        self.refresh_line(previous + 1)
        self.refresh_line(self.cursor + 1)
        self._post_highlight(by_user=True)
        if len(self.rows) - self.cursor <= max(10, self._page_size()):
            self.post_message(self.NearEnd(self).set_sender(self))

    def _page_size(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _reveal(self) -> None:
        top = round(self.scroll_y)
        visible = self._page_size()
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, force=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, force=True)

    def _post_highlight(self, force: bool = False, by_user: bool = False) -> None:
        key = self.cursor_key
        if force or key != self._last_highlight:
            self._last_highlight = key
            self.post_message(self.Highlighted(self, key, by_user).set_sender(self))

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor + direction * self._page_size())

    def action_first(self) -> None:
        self.move_cursor(0)
        self.scroll_to(y=0, animate=False, force=True)

    def action_last(self) -> None:
        self.move_cursor(len(self.rows) - 1)
        self.post_message(self.End(self).set_sender(self))

    def action_select(self) -> None:
        if self.rows:
            self.post_message(self.Selected(self, self.rows[self.cursor].key).set_sender(self))

    async def on_click(self, event: events.Click) -> None:
        if event.y < 1 or not self.rows:
            return
        index = round(self.scroll_y) + event.y - 1
        if index >= len(self.rows):
            return
        if index == self.cursor and event.chain >= 2:
            self.action_select()
        self.move_cursor(index, reveal=False)

    def on_focus(self, event: events.Focus) -> None:
        self._forget_strips()
        self.refresh()

    def on_blur(self, event: events.Blur) -> None:
        self._forget_strips()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._layout = None
        self._forget_strips()
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)
        self._reveal()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget_strips()

    def _forget_strips(self) -> None:
        self._cache.clear()
        self._styles.clear()

    # -- drawing ------------------------------------------------------------------------------

    def _columns(self, width: int) -> list[tuple[Column, int]]:
        if self._layout is None or self._layout[0] != width:
            self._layout = (width, layout_columns(self.columns, max(0, width - 2)))
        return self._layout[1]

    def _line_text(self, cells: dict[str, Text], width: int, marker: str) -> Text:
        line = Text(marker + " ", no_wrap=True, end="")
        for number, (column, size) in enumerate(self._columns(width)):
            if number:
                line.append(" ")
            cell = cells.get(column.key, EMPTY)
            if cell.cell_len > size:
                if column.shorten is not None:
                    cell = column.shorten(cell, size)
                else:
                    cell = cell.copy()  # the row keeps its whole value
                    cell.truncate(size, overflow="ellipsis")
            # padded in the cell's style, as Text.align would (without copying the cell)
            padding = " " * (size - cell.cell_len)
            if column.justify == "right":
                line.append(padding, style=cell.style)
            line.append_text(cell)
            if column.justify == "left":
                line.append(padding, style=cell.style)
        return line

    def _strip(self, text: Text, width: int, style: Style) -> Strip:
        segments = list(text.render(self.app.console))
        strip = Strip(segments).adjust_cell_length(width)
        return strip.apply_style(style)

    def _style(self, component: str = "") -> Style:
        """The table's style, plus a component's: worked out once for all the lines drawn
        until the strip cache is dropped."""
        style = self._styles.get(component)
        if style is None:
            style = self.rich_style
            if component:
                style += self.get_component_rich_style(component)
            self._styles[component] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            key: tuple[Any, ...] = ("header", width)
            if key not in self._cache:
                labels = {
                    column.key: Text(column.title(size)) for column, size in self._columns(width)
                }
                header_style = self._style("row-table--header")
                self._remember(
                    key, self._strip(self._line_text(labels, width, " "), width, header_style)
                )
            return self._cache[key]
        index = round(self.scroll_y) + y - 1
        if not self.rows:
            if y == 1:
                style = self._style("row-table--placeholder")
                return self._strip(Text("  " + self.placeholder, no_wrap=True), width, style)
            return Strip([Segment(" " * width, self._style())], width)
        if index >= len(self.rows):
            return Strip([Segment(" " * width, self._style())], width)
        row = self.rows[index]
        on_cursor = index == self.cursor
        key = ("row", row.key, row.version, width, on_cursor, self.has_focus)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        style = self._style()
        if on_cursor:
            style = self._style(
                "row-table--cursor" if self.has_focus else "row-table--cursor-blurred"
            )
        marker = CURSOR_MARK if on_cursor else " "
        strip = self._strip(self._line_text(row.texts(), width, marker), width, style)
        self._remember(key, strip)
        return strip

    def _remember(self, key: tuple[Any, ...], strip: Strip) -> None:
        self._cache[key] = strip
        if len(self._cache) > 400:
            self._cache.popitem(last=False)
