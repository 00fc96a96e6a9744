"""One line of Text that redraws without a layout pass (a Static's update lays the whole screen
out again, which a status line changing ten times a second cannot afford)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget


class TextLine(Widget):
    DEFAULT_CSS = """
    TextLine { height: 1; width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    TextLine.live-hint { width: auto; }
    """

    def __init__(self, text: Text, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text

    def show(self, text: Text) -> None:
        if text == self.text:
            return
        # Only a line sized by its text needs a layout pass, and only when its length changes.
        resized = self.has_class("live-hint") and text.cell_len != self.text.cell_len
        self.text = text
        self.refresh(layout=resized)

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        # A layout that resizes a widget sets its virtual size, which asks for a second layout
        # of the whole screen (for a container whose children follow its size). A line has
        # none: it is only drawn again at its new size.
        return super()._size_updated(size, virtual_size, container_size, layout=False)

    def render(self) -> Text:
        return self.text

    def get_content_width(self, container: Any, viewport: Any) -> int:
        return self.text.cell_len
