"""A scrollable pane showing one item's detail as literal text."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static


class DetailPane(VerticalScroll, can_focus=True):
    """Shows a Text; keeps the scroll position while the same item is re-shown."""

    DEFAULT_CSS = """
    DetailPane { height: 1fr; padding: 0 1; }
    DetailPane > Static { width: 1fr; }
    """

    def __init__(self, placeholder: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.key: object = None
        self.text = Text(placeholder, style="dim")

    def compose(self) -> Any:
        yield Static(self.text, markup=False)

    def show(self, key: object, text: Text) -> None:
        """Show ``text`` for item ``key``; back to the top when the item changes."""
        same = key == self.key
        if same and text == self.text:
            return
        self.key = key
        self.text = text
        static = self.query_one(Static)
        static.update(text, layout=False)
        # A layout pass lays the whole screen out again; it is only needed when the text's
        # height changes, which the details of a flood of alike conversions seldom do.
        size = static.content_size
        if not size.width or static.get_content_height(size, size, size.width) != size.height:
            static.refresh(layout=True)
        if not same:
            self.scroll_home(animate=False)

    def clear(self, message: str | None = None) -> None:
        self.show(None, Text(message or self.placeholder, style="dim"))

    @property
    def plain(self) -> str:
        return self.text.plain
