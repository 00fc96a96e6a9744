"""A scrollable pane showing one item's detail as literal text, drawn with the line API.

The pane keeps its size whatever it shows: a text of another height only changes its scroll
range. (A pane holding a text widget was laid out again, with the whole screen, each time
the next item's detail was taller or shorter.)
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.visual import Visual, visualize


class DetailPane(ScrollView, can_focus=True):
    """Shows a Text; keeps the scroll position while the same item is re-shown."""

    DEFAULT_CSS = """
    DetailPane {
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
            self.set_reactive(DetailPane.virtual_size, size)
            self._scroll_update(size)

    def _wrap(self, width: int) -> list[Strip]:
        if self._visual is None:
            self._visual = visualize(self, self.text, markup=False)
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
            return lines[index]
        width = self.scrollable_content_region.width
        return Strip.blank(width, self.visual_style.rich_style)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract(self.text.plain), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self._strips = None  # the selection is drawn into the lines
        self.refresh()
