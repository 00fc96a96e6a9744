"""One input line that asks for what an action needs (a URL template, test values, a time
range): a prompt above it, a help line below it. Enter posts ``ActionBar.Answered``; the
screen closes it (Escape, or when the action is done)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from tui.widgets.field import Field


class ActionBar(Vertical):
    """The input line of a screen's actions; hidden while nothing is asked."""

    @dataclass
    class Answered(Message):
        """Enter in the line: what was asked and the value typed."""

        asking: str
        value: str

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asking: str | None = None  # what is asked (None: the line is closed)
        self.help_shown = Text()  # the help line as shown

    def compose(self) -> Any:
        yield Static("", classes="action-prompt", markup=False)
        yield Field(compact=True, select_on_focus=False)
        yield Static("", classes="action-help", markup=False)

    def on_mount(self) -> None:
        self.display = False

    @property
    def line(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.line.value

    def ask(self, asking: str, prompt: str, value: str = "", placeholder: str = "") -> None:
        """Open the line for ``asking`` with ``value`` in it, the cursor at its end."""
        self.asking = asking
        self.display = True
        self.query_one(".action-prompt", Static).update(prompt)
        self.help("")
        line = self.line
        line.placeholder = placeholder
        line.value = value
        line.cursor_position = len(value)
        # at once, not after the keys already queued: typed ahead, they belong to the line
        self.screen.set_focus(line)

    def help(self, text: Text | str) -> None:
        self.help_shown = Text(text) if isinstance(text, str) else text
        self.query_one(".action-help", Static).update(self.help_shown)

    def close(self) -> None:
        self.asking = None
        self.display = False

    def on_input_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        if self.asking is not None:
            self.post_message(self.Answered(self.asking, message.value))
