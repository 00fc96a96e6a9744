"""The filter bar of a table screen: one line where the user types the list's filters as the
JSON API takes them (``campaign=summer status=approved since=1h``) and any other words as
free text; the API's own parser reads them (``store.read.filters.from_parameters``)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input

from store.read.filters import TERMS, FilterError, ListFilter, from_parameters, terms_of
from tui.widgets.field import Field
from tui.widgets.footer import KeepsKeys
from tui.widgets.text_line import TextLine


def split_terms(text: str) -> dict[str, str]:
    """The query parameters of what was typed: ``name=value`` for each filter's name, and
    every other word (quoted words kept together) joined into the free text ``q``. Raises
    ``FilterError`` when a quote is not closed."""
    try:
        words = shlex.split(text)
    except ValueError:
        raise FilterError(f"a quote is not closed in {text!r}: close it or leave it out") from None
    given: dict[str, str] = {}
    free: list[str] = []
    for word in words:
        name, equals, value = word.partition("=")
        if equals and name in TERMS and name != "q":
            given[name] = value
        else:
            free.append(value if equals and name == "q" else word)
    if free:
        given["q"] = " ".join(free)
    return given


def read_filter(table: str, text: str, now: float) -> ListFilter:
    """The filter of what was typed on the bar of ``table``'s screen (ages in since/until are
    before ``now``). Raises ``FilterError`` with the API's sentence for a value it refuses."""
    return from_parameters(table, split_terms(text), now=now)


def terms_text(given: dict[str, str]) -> str:
    """Parameters as the bar shows them: ``name=value`` each, a value with a space quoted."""
    return " ".join(f"{name}={shlex.quote(value)}" for name, value in given.items())


def help_text(table: str) -> str:
    """The bar's second line on ``table``'s screen: the filters that list takes."""
    names = [name for name in terms_of(table) if name not in ("q", "since", "until")]
    terms = " ".join(f"{name}=" for name in names)
    return f"{terms} since=1h until= and any other words to find · Enter applies · Esc closes"


class FilterBar(KeepsKeys, Vertical):
    """An input line for the filters, and below it what it accepts or why a value was
    refused. Hidden until opened. The footer keeps the screen's keys while the user types
    (dimmed): opening and closing the bar rebuild nothing there."""

    # Over the bottom of the screen's body, above the footer, on a layer of its own: opening
    # or closing it changes the size of nothing else, and the screen is laid out only once
    # (a widget that changes size is laid out twice).
    DEFAULT_CSS = """
    FilterBar { layer: bar; dock: bottom; margin-bottom: 1; height: auto; display: none; }
    FilterBar > Input { border: none; height: 1; padding: 0 1; }
    FilterBar > .filter-said { height: 1; padding: 0 1; }
    """

    @dataclass
    class Applied(Message):
        """Enter on the bar: the text typed."""

        bar: FilterBar
        text: str

        @property
        def control(self) -> FilterBar:
            return self.bar

    def compose(self) -> Any:
        yield Field(
            placeholder="filters, e.g. status=approved since=1h ext-42", select_on_focus=False
        )
        yield TextLine(Text(""), classes="filter-said")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def is_open(self) -> bool:
        return self.display

    def open(self, text: str, table: str) -> None:
        """Show the bar holding ``text`` (the filters applied now), ready to edit, and the
        filters the list read from ``table`` takes."""
        self.display = True  # (not a class: that would restyle the bar and its lines)
        field = self.input
        field.value = text
        field.cursor_position = len(text)
        self.query_one(".filter-said", TextLine).show(Text(help_text(table), style="dim"))
        self.screen.set_focus(field)  # now, for the keys typed right behind the one that opened it

    def close(self) -> None:
        self.display = False

    def refuse(self, sentence: str) -> None:
        """Say why the filters typed cannot be used; the bar stays open to fix them."""
        line = Text("✗ ", style="bold red", end="")
        line.append(sentence, style="bold red")
        self.query_one(".filter-said", TextLine).show(line)
        self.input.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Applied(self, event.value))
