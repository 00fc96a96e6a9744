"""The keys panel (``?``): every key of the screen shown, of every screen and of the lists,
each with what it does and its binding id, the name the config's ``[keys]`` table remaps it
by (``"deliveries.resend" = "R"``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rich.text import Text
from textual.binding import Binding, BindingType

from tui.widgets.detail import TextPane

KEY_WIDTH = 7  # cells of the key column


def keys_text(
    groups: Iterable[tuple[str, Iterable[BindingType]]], keys_of: Callable[[Binding], str]
) -> Text:
    """The bindings of each group under its title: its keys (as ``keys_of`` names them, after
    any remapping), description, id."""
    text = Text(end="")
    text.append("Keys", style="bold")
    text.append(' · remap one in the config: [keys] "deliveries.resend" = "R"', style="dim")
    for title, bindings in groups:
        text.append(f"\n\n{title}", style="bold underline")
        for binding in bindings:
            if not isinstance(binding, Binding) or not binding.id:
                continue
            text.append("\n")
            text.append(f"{keys_of(binding):<{KEY_WIDTH}}", style="bold")
            text.append(f"{binding.description} ")
            text.append(binding.id, style="dim")
    return text


class KeysPanel(TextPane, can_focus=False):
    """The panel beside the screen that lists the keys (it never takes the focus, so the
    keys it lists keep working while it shows)."""

    DEFAULT_CSS = """
    KeysPanel {
        dock: right;
        width: 46;
        max-width: 60%;
        height: 1fr;
        border-left: solid $primary;
        background: $surface;
    }
    """

    def __init__(self, text: Text, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.show("keys", text)
