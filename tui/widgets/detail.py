"""A scrollable pane showing one item's detail as literal text, drawn with the line API.

The pane keeps its size whatever it shows: a text of another height only changes its scroll
range. (A pane holding a text widget was laid out again, with the whole screen, each time
the next item's detail was taller or shorter.) A line too long for the pane wraps under its
own indent, so a wrapped reason or URL stays inside its block.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from rich.cells import cell_len, get_character_cell_size
from rich.style import Style
from rich.text import Span, Text
from textual import events
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.visual import Visual, visualize

HANGING = 2  # cells a wrapped line's later rows are indented beyond its first


def _breaks(plain: str, width: int, indent: int, own: int) -> list[tuple[int, int]]:
    """Where a line wraps at ``width`` cells: (start, end) offsets of each row, breaking at
    the last space that fits (or inside a word longer than a row), never inside the line's
    ``own`` indent; the rows after the first have ``indent`` cells less room."""
    rows: list[tuple[int, int]] = []
    start, room, length = 0, width, len(plain)
    narrow = plain.isascii()  # one cell a character: no need to measure them one by one
    while start < length:
        if narrow:
            end = min(length, start + room)
        else:
            cells, end = 0, start
            while end < length and cells + get_character_cell_size(plain[end]) <= room:
                cells += get_character_cell_size(plain[end])
                end += 1
        if end >= length:
            rows.append((start, length))
            break
        floor = start + (own if not rows else 0)
        space = plain.rfind(" ", floor + 1, end + 1)
        cut = space if space > floor else max(end, start + 1)
        rows.append((start, cut))
        start = cut
        while start < length and plain[start] == " ":
            start += 1
        room = max(1, width - indent)
    return rows or [(0, 0)]


def hanging_wrap(text: Text, width: int) -> tuple[Text, list[int]]:
    """``text`` wrapped to ``width`` cells, each wrapped line's later rows indented two cells
    further than its first (a hanging indent, up to half the width); and the offset in
    ``text`` where each row starts. (The wrapped text is made from the plain string and the
    spans moved, in one pass: cutting a long story into Text pieces took 100 ms.)"""
    plain = text.plain
    starts: list[int] = []
    cuts: list[int] = []  # where a row ends: the spaces from there to ``begins`` are dropped
    begins: list[int] = []
    inserts: list[str] = []  # what replaces them: a newline and the indent
    offset = 0
    for line in plain.split("\n"):
        if len(line) <= width and (line.isascii() or cell_len(line) <= width):
            starts.append(offset)  # most lines fit: nothing to work out
        else:
            own = len(line) - len(line.lstrip(" "))
            indent = min(own + HANGING, width // 2)
            breaks = _breaks(line, width, indent, own)
            for number, (begin, _) in enumerate(breaks):
                starts.append(offset + begin)
                if number:
                    cuts.append(offset + breaks[number - 1][1])
                    begins.append(offset + begin)
                    inserts.append("\n" + " " * indent)
        offset += len(line) + 1
    if not cuts:
        return text, starts
    pieces, shifts, at, shift = [], [], 0, 0
    for cut, begin, insert in zip(cuts, begins, inserts, strict=True):
        pieces += [plain[at:cut], insert]
        shifts.append(shift)  # before this break
        shift += len(insert) - (begin - cut)
        at = begin
    pieces.append(plain[at:])
    after = [*shifts[1:], shift]  # after each break

    def moved(x: int, *, end: bool = False) -> int:
        index = bisect_right(cuts, x) - 1
        if index < 0:
            return x
        if x < begins[index] or (end and x == cuts[index]):
            return cuts[index] + shifts[index]  # in the spaces dropped, or a span ending there
        return x + after[index]

    def kept(x: int) -> int:
        """``x``, or past the spaces dropped at a break when it is among them."""
        index = bisect_right(cuts, x) - 1
        return begins[index] if index >= 0 and x < begins[index] else x

    spans = []
    for span in text.spans:
        start = kept(span.start)
        # a span over a break is cut in two: the newline and the indent stay unstyled
        for index in range(bisect_right(cuts, span.start), bisect_right(cuts, span.end - 1)):
            spans.append(Span(moved(start), cuts[index] + shifts[index], span.style))
            start = max(start, begins[index])
        if start < span.end:
            spans.append(Span(moved(start), moved(span.end, end=True), span.style))
    wrapped = Text("".join(pieces), style=text.style, end="")
    wrapped.spans = [span for span in spans if span.end > span.start]
    return wrapped, starts


class TextPane(ScrollView, can_focus=True):
    """Shows a Text; keeps the scroll position while the same item is re-shown."""

    DEFAULT_CSS = """
    TextPane {
        height: 1fr;
        padding: 0 1;
        overflow-x: hidden;
        overflow-y: auto;
    }
    """

    def __init__(self, placeholder: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.key: object = None
        self.text = Text(placeholder, style="dim")
        self._visual: Visual | None = None
        self._strips: tuple[int, list[Strip]] | None = None  # (width, the text's lines)
        self._starts: list[int] = []  # where each drawn row starts in the text
        self._visual_width = 0
        self._wrapped = self.text
        self._rows: list[str] = []  # the wrapped text's rows
        self.marks: list[tuple[int, int, Style]] = []  # see mark()

    def show(self, key: object, text: Text) -> None:
        """Show ``text`` for item ``key``; back to the top when the item changes."""
        same = key == self.key
        if same and text == self.text:
            return
        self.key = key
        self.text = text
        self._visual = None
        self._fit()
        self.refresh()
        if not same:
            self.scroll_home(animate=False)

    def mark(self, marks: list[tuple[int, int, str]]) -> None:
        """Draw these (start, end, style) ranges of the text over its own styles (a cursor, the
        matches of a find): only the rows drawn change, the text is not wrapped again."""
        self.marks = [(start, end, Style.parse(style)) for start, end, style in marks]
        self.refresh()

    def clear(self, message: str | None = None) -> None:
        self.show(None, Text(message or self.placeholder, style="dim"))

    @property
    def plain(self) -> str:
        return self.text.plain

    def drawn(self) -> list[str]:
        """The text's lines as the pane draws them (wrapped to its width), top to bottom."""
        return [strip.text for strip in self._lines()]

    # -- size -----------------------------------------------------------------------------------

    def _fit(self) -> None:
        """Wrap the text to the pane's width and set the scroll range to its height. Only the
        range moves, the way Textual sets it when a layout resizes a scroll view, so the
        screen is not laid out again (a scrollbar that appears or goes still is)."""
        self._strips = None
        width, height = self.container_size
        if not width:
            return  # not laid out yet: the first resize fits it
        lines = self._wrap(width)
        if len(lines) > height and self.styles.scrollbar_size_vertical:
            # A scrollbar takes its column from the text, which may then wrap longer.
            width = max(1, width - self.styles.scrollbar_size_vertical)
            lines = self._wrap(width)
        self._strips = (width, lines)
        size = Size(width, len(lines))
        if size != self.virtual_size:
            self.set_reactive(TextPane.virtual_size, size)
            self._scroll_update(size)

    def _wrap(self, width: int) -> list[Strip]:
        if self._visual is None or self._visual_width != width:
            self._wrapped, self._starts = hanging_wrap(self.text, width)
            self._rows = self._wrapped.plain.split("\n")
            self._visual = visualize(self, self._wrapped, markup=False)
            self._visual_width = width
        strips = Visual.to_strips(self, self._visual, width, None, self.visual_style)
        style = self.visual_style.rich_style
        return [strip.adjust_cell_length(width, style) for strip in strips]

    def _lines(self) -> list[Strip]:
        width = self.scrollable_content_region.width
        if self._strips is None or self._strips[0] != width:
            self._strips = (width, self._wrap(width)) if width else (0, [])
        return self._strips[1]

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips = None

    # -- drawing --------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        lines = self._lines()
        index = round(self.scroll_y) + y
        if index < len(lines):
            return self._marked(index, lines[index]) if self.marks else lines[index]
        width = self.scrollable_content_region.width
        return Strip.blank(width, self.visual_style.rich_style)

    def _marked(self, row: int, strip: Strip) -> Strip:
        """Row ``row`` with the marks that fall on it drawn."""
        if row >= len(self._starts) or row >= len(self._rows):
            return strip
        first = self._starts[row]
        last = self._starts[row + 1] if row + 1 < len(self._starts) else len(self.text)
        text = self._rows[row]
        # a row that continues a line starts with its indent; the text's characters follow
        continued = first > 0 and self.text.plain[first - 1] != "\n"
        prefix = len(text) - len(text.lstrip(" ")) if continued else 0
        for start, end, style in self.marks:
            if end <= first or start >= last:
                continue
            a = cell_len(text[: prefix + max(start, first) - first])
            b = cell_len(text[: prefix + min(end, last) - first])
            if b <= a:
                continue
            before, middle, after = strip.divide([a, b, strip.cell_length])[:3]
            strip = Strip.join([before, middle.apply_style(style), after])
        return strip

    def row_of(self, offset: int) -> int:
        """The drawn row that holds the text's character at ``offset``."""
        self._lines()
        return max(0, bisect_right(self._starts, offset) - 1)

    def reveal(self, offset: int, *, rows: int = 1) -> None:
        """Scroll so that the drawn row of ``offset`` (and the ``rows`` - 1 after it, when they
        fit) is in view, moving as little as possible."""
        row = self.row_of(offset)
        height = self.scrollable_content_region.height
        top = round(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False, force=True)
        elif row + rows > top + height:
            self.scroll_to(y=max(row, row + rows - height), animate=False, force=True)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        # what is drawn: the wrapped rows (a selection's coordinates are the rows')
        return selection.extract(self._wrapped.plain), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self._strips = None  # the selection is drawn into the lines
        self.refresh()


class DetailPane(TextPane):
    """The detail of the item selected on a screen (a screen has one: its queries find it by
    this type, so a pane of another job, such as the keys panel, is a ``TextPane``)."""
