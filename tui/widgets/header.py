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
        figures = _figures(stats, narrow=narrow)
        tail = Text(end="")
        if app.outbox_elsewhere:  # another process on this database sends the postbacks
            tail.append("  ")
            tail.append("sent by another process" if not narrow else "sent elsewhere", "yellow")
        if app.demo_running:
            tail.append("  ")
            tail.append(" demo ", style="bold reverse yellow")
        # The figures that fit, dropping the least important first: the demo mark and the
        # failures are never the ones cut.
        for name in ("", *DROP_ORDER):
            figures.pop(name, None)
            if text.cell_len + sum(f.cell_len for f in figures.values()) + tail.cell_len <= width:
                break
        for figure in figures.values():
            text.append_text(figure)
        text.append_text(tail)
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


# The header's figures, the first left out first when the line is too narrow for them all.
DROP_ORDER = ("size", "clicks", "rejected", "rate", "conversions", "retrying")


def _figures(stats: Stats, *, narrow: bool) -> dict[str, Text]:
    """Each figure of the header, by name, as it is drawn (" · 12 clicks"); the failed and
    retrying deliveries only when there are some."""
    parts = {
        "clicks": (f"{stats.clicks}", _counted(stats.clicks, "click"), "bold"),
        "conversions": (
            f"{stats.conversions}",
            " conv" if narrow else _counted(stats.conversions, "conversion"),
            "bold",
        ),
        "rejected": (f"{stats.rejected}", " rej" if narrow else " rejected", "bold"),
        "rate": (f"{stats.rate:.1f}", "/s" if narrow else " postbacks/s", "bold"),
        "size": (size_text(stats.size), "", "bold"),  # the database file and its WAL
    }
    if stats.retrying:
        parts["retrying"] = (f"↻ {stats.retrying}", " retrying", "bold yellow")
    if stats.failed:
        # light on red: under NO_COLOR red alone turns a grey too dark to read
        parts["failed"] = (f"✗ {stats.failed}", " failed", "bold bright_white on red")
    figures = {}
    for name, (value, label, style) in parts.items():
        figure = Text(end="")
        figure.append(" · ", style="dim")
        figure.append(value, style=style)
        figure.append(label, style=style if name in ("failed", "retrying") else "")
        figures[name] = figure
    return figures


def _counted(count: int, word: str) -> str:
    """The label after a count: `` conversion`` for one, `` conversions`` for more."""
    return f" {word}" if count == 1 else f" {word}s"
