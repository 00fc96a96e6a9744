"""The two header lines: where postwatch listens and its figures, then the screens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tui.feed import size_text
from tui.messages import Stats

if TYPE_CHECKING:
    from tui.app import PostwatchApp


class StatusBar(Widget):
    """Listening address (or attached database), totals, postbacks per second, the demo
    state, and the screen tabs (number keys switch)."""

    DEFAULT_CSS = """
    StatusBar {
        height: 2;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        background: $panel;
        link-style: none;
        link-style-hover: reverse;
        link-background-hover: $panel;
    }
    """

    def __init__(self, current: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.current = current

    @property
    def dash_app(self) -> PostwatchApp:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.watch(self.app, "stats", self._changed, init=False)
        self.watch(self.app, "demo_running", self._changed, init=False)
        self.watch(self.app, "outbox_elsewhere", self._changed, init=False)

    def _changed(self, _value: object) -> None:
        self.refresh()

    def _status(self, width: int) -> Text:
        app = self.dash_app
        stats: Stats = app.stats
        dash = app.dash
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(" postwatch ", style="bold reverse")
        text.append(" ")
        if dash is None:
            text.append("opening…")
            return text
        if dash.attached:
            text.append("attached ", style="yellow")
            text.append(dash.options.db.name)
        else:
            text.append("● ", style="green")
            text.append(dash.address)
        narrow = width < 100
        parts = [
            (f"{stats.clicks}", _counted(stats.clicks, "click")),
            (
                f"{stats.conversions}",
                " conv" if narrow else _counted(stats.conversions, "conversion"),
            ),
            (f"{stats.rejected}", " rej" if narrow else " rejected"),
            (f"{stats.rate:.1f}", "/s" if narrow else " postbacks/s"),
            (size_text(stats.size), ""),  # the database file and its WAL
        ]
        for value, label in parts:
            text.append(" · ", style="dim")
            text.append(value, style="bold")
            text.append(label)
        if app.outbox_elsewhere:  # another process on this database sends the postbacks
            text.append("  ")
            text.append("sent by another process" if not narrow else "sent elsewhere", "yellow")
        if app.demo_running:
            text.append("  ")
            text.append(" demo ", style="bold reverse yellow")
        return text

    def _tabs(self, *, compact: bool = False) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        gap = "" if compact else " "
        from tui.screens import SCREENS  # (the screens hold this header: not at import)

        for name, screen in SCREENS.items():
            key, label = screen.KEY, screen.LABEL
            action = Style(meta={"@click": f"app.show_screen('{name}')"})
            text.append(" ")
            if name == self.current:
                text.append(f" {key} {label}{gap}", style=Style(bold=True, reverse=True) + action)
            else:
                text.append(f" {key} ", style=Style(dim=True) + action)
                text.append(f"{label}{gap}", style=action)
        return text

    def _tabs_and_token(self, width: int) -> Text:
        """The tabs, then where the API token is, right-aligned, in as many words as fit:
        "API token: `postwatch token` shows it", or, on a narrow terminal, the tabs closer
        together and "token: postwatch token"."""
        dash = self.dash_app.dash
        hint = "" if dash is None else dash.token_hint
        tabs = self._tabs()
        if not hint:
            return tabs
        choices = [(tabs, hint)]
        if "postwatch token" in hint:
            choices += [(tabs, "token: `postwatch token`")]
            choices += [(self._tabs(compact=True), "token: postwatch token")]
        for text, shown in choices:
            room = width - text.cell_len - 1
            if len(shown) <= room:
                text.append(" " * (room - len(shown)))
                text.append(shown, style="dim")
                return text
        return tabs

    def render(self) -> Text:
        width = self.size.width
        text = self._status(width)
        text.append("\n")
        text.append_text(self._tabs_and_token(width))
        return text


def _counted(count: int, word: str) -> str:
    """The label after a count: `` conversion`` for one, `` conversions`` for more."""
    return f" {word}" if count == 1 else f" {word}s"
