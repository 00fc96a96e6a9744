"""Trace: a click id, external id or transaction id in, the whole story out, as a timeline."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Input

from listener.story import story
from store.read import queries
from tui import format as fmt
from tui.screens.base import DashScreen
from tui.widgets.detail import DetailPane


class TraceScreen(DashScreen):
    NAME = "trace"
    KEY = "5"
    LABEL = "Trace"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Find", tooltip="Type an id to trace", id="trace.search"),
        Binding("y", "copy", "Copy story", id="trace.copy"),
        Binding("escape", "leave_input", "Story", show=False, id="trace.back"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.traced: str | None = None
        self.lines: list[str] = []

    def body(self) -> Any:
        yield Input(
            placeholder="click id, external id or transaction id — Enter to trace",
            id="trace-input",
            compact=True,
        )
        yield DetailPane(
            "Type a click id, an external id or a transaction id and press Enter: the click, "
            "every postback for it, each conversion update, every decision with its reasons "
            "and every delivery attempt, in order."
        )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_screen_resume(self, event: Any) -> None:
        # Arriving here means "trace something": the id field has focus, its text selected.
        self.query_one(Input).focus()

    def trace(self, any_id: str) -> None:
        """Trace ``any_id`` (also called from other screens)."""
        any_id = any_id.strip()
        self.query_one(Input).value = any_id
        if not any_id:
            return
        self.traced = any_id
        self.load_detail(("trace", any_id), lambda: self._story(any_id), now=True)
        self.query_one(DetailPane).focus()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        self.trace(message.value)

    def data_changed(self) -> None:
        if self.traced is not None:
            traced = self.traced
            self.load_detail(("trace", traced), lambda: self._story(traced))

    async def _story(self, any_id: str) -> Text:
        found = await self.dash.store.read(lambda conn: queries.trace(conn, any_id))
        self.lines = story(found)
        text = Text(end="")
        if found.empty:
            text.append_text(fmt.literal(f"Nothing is known about '{any_id}'.", "bold"))
            text.append("\nNo click, external id, transaction id or request has this id.")
            return text
        return fmt.trace_text(found)

    def action_search(self) -> None:
        field = self.query_one(Input)
        field.focus()

    def action_leave_input(self) -> None:
        self.query_one(DetailPane).focus()

    def action_copy(self) -> None:
        if not self.lines:
            self.nothing("trace")
            return
        self.copy("\n".join(self.lines), "trace")


SCREEN = TraceScreen
