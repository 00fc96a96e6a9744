"""Trace: a click id, external id or transaction id in, the whole story out, as a timeline.

The story has a cursor on its links (the clicks an id matched, each conversion, inbound
request and delivery attempt): Enter follows the one under it, to that row on its screen or
to the other click. ``/`` finds text in the story, ``n``/``N`` go from match to match. The
id box has its own key, so the number keys switch screens whatever has focus but the box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Input

from listener.story import link_target, markdown, story, timeline
from store.read import queries
from store.read.model import Trace
from tui import format as fmt
from tui.screens.base import DashScreen
from tui.widgets.detail import DetailPane
from tui.widgets.field import Field
from tui.widgets.text_line import TextLine

# Which screen shows the row a link names, and the word for it.
ROW_SCREENS = {
    "conversion": ("live", "conversion"),
    "delivery": ("deliveries", "delivery"),
    "inbound": ("inbound", "request"),
}
CURSOR_STYLE = "reverse"
HIT_STYLE = "underline bold"
CURRENT_HIT_STYLE = "reverse bold"


@dataclass(frozen=True)
class StoryLink:
    """A link in the story's text: where it is and what it names (see ``listener.story``)."""

    start: int
    end: int
    what: str
    target: str

    def says(self) -> str:
        """What Enter does on it, in words."""
        if self.what in ROW_SCREENS:
            screen, word = ROW_SCREENS[self.what]
            return f"show {word} #{self.target} on {screen.capitalize()}"
        if self.what == "match":
            return f"show click {self.target}"
        return f"trace click {self.target} with all its conversions"


class StoryField(Field):
    """A text field of the Trace screen whose Enter and Escape act at once: a key pressed
    right after either (a number key, ``n``) already finds the focus on the story. (The
    screen's Escape is a binding, run once the key went round the app, after the keys that
    came with it were typed into the field.)"""

    def __init__(
        self, done: Callable[[str], None], leave: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(compact=True, **kwargs)
        self._done = done
        self._leave = leave

    async def action_submit(self) -> None:
        self._done(self.value)

    async def _on_key(self, event: events.Key) -> None:
        # (the screen's focus, not has_focus: that changes once the Blur is handled)
        if event.key == "escape" and self.screen.focused is self:
            event.prevent_default()
            event.stop()
            self._leave()
        # (any other key: the field's own handler, next)


class StoryPane(DetailPane):
    """The story: up and down move the cursor from link to link (and scroll past the last)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "screen.entry(-1)", "Previous line", show=False, id="trace.up"),
        Binding("down,j", "screen.entry(1)", "Next line", show=False, id="trace.down"),
    ]


class TraceScreen(DashScreen):
    NAME = "trace"
    KEY = "5"
    LABEL = "Trace"

    BINDINGS: ClassVar[list[BindingType]] = [
        # (i and / come before the focused widget's keys, so that what is typed right after
        # them lands in their box; in a box they type, see check_action)
        Binding("i", "type_id", "Id", tooltip="Type an id to trace", id="trace.id", priority=True),
        Binding("enter", "open", "Open", tooltip="Show the line's row or click", id="trace.open"),
        Binding(
            "slash",
            "find",
            "Find",
            tooltip="Find text in the story",
            id="trace.find",
            priority=True,
        ),
        Binding("n", "next_hit(1)", "Next", tooltip="Next match", show=False, id="trace.next"),
        Binding(
            "N", "next_hit(-1)", "Previous", tooltip="Previous match", show=False, id="trace.prev"
        ),
        Binding("y", "copy", "Copy story", id="trace.copy"),
        Binding(
            "m", "copy_markdown", "Copy Markdown", tooltip="Copy as a ticket", id="trace.markdown"
        ),
        Binding("escape", "leave_input", "Story", show=False, id="trace.back"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.traced: str | None = None
        self.shown: str | None = None  # the click shown of those the id matched (None: newest)
        self.found: Trace | None = None
        self.lines: list[str] = []
        self.story_text = Text(end="")
        self.links: list[StoryLink] = []
        self.cursor = 0  # index in links
        self.find_text = ""
        self.hits: list[int] = []  # offsets of the matches of find_text
        self.hit = 0

    def body(self) -> Any:
        yield StoryField(
            self.trace,
            self.action_leave_input,
            placeholder="i: type a click id, external id or transaction id — Enter traces",
            id="trace-input",
        )
        with Horizontal(id="trace-bar"):
            yield StoryField(
                self._found_text,
                self.action_leave_input,
                placeholder="find in the story",
                id="trace-find",
            )
            yield TextLine(Text(""), id="trace-status")
        yield StoryPane(
            "Press i (or click the box above), type a click id, an external id or a transaction "
            "id and press Enter: the click, every postback for it, each conversion update, every "
            "decision with its reasons and every delivery attempt, in order."
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """In a text box, ``i`` and ``/`` are typed, not bindings."""
        if action in ("type_id", "find") and isinstance(self.focused, Input):
            return False
        return super().check_action(action, parameters)

    @property
    def id_box(self) -> Input:
        return self.query_one("#trace-input", Input)

    @property
    def find_box(self) -> Input:
        return self.query_one("#trace-find", Input)

    @property
    def pane(self) -> StoryPane:
        return self.query_one(StoryPane)

    def on_mount(self) -> None:
        if not self.dash_app.still_running():  # (built ahead as the app closes: no widgets)
            return
        self.find_box.display = False
        self.set_focus(self.pane)
        self._show_status()

    def on_screen_suspend(self, event: Any) -> None:
        # Coming back lands on the story, never in a text field: the number keys must switch
        # screens again at once. (Done when leaving: at the resume, a key pressed right after
        # the switch may already have focused the id box.)
        if isinstance(self.focused, Input):
            self.set_focus(self.pane)

    # -- tracing ------------------------------------------------------------------------------

    def trace(self, any_id: str, shown: str | None = None) -> None:
        """Trace ``any_id`` (also called from other screens); ``shown``: which of the clicks
        it matches to show (the newest when None)."""
        any_id = any_id.strip()
        self.id_box.value = any_id
        self.set_focus(self.pane)
        if not any_id:
            return
        self.cursor = 0  # a trace asked for starts at its first link
        self.traced, self.shown = any_id, shown
        self.load_detail(self._key(), lambda: self._story(any_id, shown), now=True)

    def _key(self) -> object:
        return ("trace", self.traced, self.shown)

    def _found_text(self, value: str) -> None:
        """Enter in the find box: back to the story, on the match shown."""
        self.set_focus(self.pane)
        self._step_to_hit(0)

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input is self.find_box:
            self.find_text = message.value
            self._find()
            self._step_to_hit(0)

    def data_changed(self) -> None:
        if self.traced is not None:
            traced, shown = self.traced, self.shown
            self.load_detail(self._key(), lambda: self._story(traced, shown))

    async def _story(self, any_id: str, shown: str | None) -> Text:
        found = await self.dash.store.read(lambda conn: queries.trace(conn, any_id, shown))
        self.found = found
        if found.empty:
            self.lines = []
            self.links = []
            text = Text(end="")
            text.append_text(fmt.literal(f"Nothing is known about '{any_id}'.", "bold"))
            text.append("\nNo click, external id, transaction id or request has this id.")
            self.story_text = text
        else:
            lines = timeline(found, focused=True)
            self.lines = story(found, focused=True)
            spans: list[tuple[int, int, str]] = []
            self.story_text = fmt.timeline_text(lines, links=spans)
            before = self.links[self.cursor] if self.cursor < len(self.links) else None
            self.links = []
            for start, end, role in spans:
                target = link_target(role)
                if target is not None:
                    self.links.append(StoryLink(start, end, *target))
            self.cursor = self._same_link(before)
        self._find()
        self.call_later(self._redraw)
        return self.story_text

    def _same_link(self, before: StoryLink | None) -> int:
        """The index of the link naming what ``before`` named (the story may have grown)."""
        if before is not None:
            for index, item in enumerate(self.links):
                if (item.what, item.target) == (before.what, before.target):
                    return index
        return min(self.cursor, max(0, len(self.links) - 1))

    def _marks(self) -> list[tuple[int, int, str]]:
        """The find's matches and the cursor's link, drawn over the story (see
        ``DetailPane.mark``: moving them does not draw the story again)."""
        size = len(self.find_text)
        marks = [
            (offset, offset + size, CURRENT_HIT_STYLE if number == self.hit else HIT_STYLE)
            for number, offset in enumerate(self.hits)
        ]
        if self.links:
            item = self.links[self.cursor]
            marks.append((item.start, item.end, CURSOR_STYLE))
        return marks

    def _redraw(self) -> None:
        self.pane.mark(self._marks())
        self._show_status()

    def _show_status(self) -> None:
        status = Text(no_wrap=True, overflow="ellipsis", end="")
        key = self.dash_app.key_for
        if self.find_text:
            status.append("find ", style="dim")
            status.append_text(fmt.literal(self.find_text, "bold"))
            if self.hits:
                status.append(f": {self.hit + 1} of {len(self.hits)}", style="bold")
                status.append(
                    f" ({key('trace.next')}/{key('trace.prev')}: next/previous)", style="dim"
                )
            else:
                status.append(": no match", style="bold")
        elif self.links:
            status.append(f"{key('trace.open')}: ", style="bold")
            status.append(self.links[self.cursor].says())
            status.append(
                f" · {key('trace.up')}/{key('trace.down')} move · {key('trace.find')} find"
                " · times in UTC",
                style="dim",
            )
        elif self.found is None:
            status.append(f"{key('trace.id')}: type an id to trace", style="dim")
        self.query_one("#trace-status", TextLine).show(status)

    # -- the cursor and its links -------------------------------------------------------------

    def action_entry(self, delta: int) -> None:
        """Move the cursor to the next or previous link; past the last (or the first) line
        with a link, scroll the story instead."""
        pane = self.pane
        target = self.cursor + delta
        if not self.links or not 0 <= target < len(self.links):
            pane.scroll_to(y=pane.scroll_y + delta, animate=False)
            return
        self.cursor = target
        self._redraw()
        pane.reveal(self.links[target].start)

    def action_open(self) -> None:
        if not self.links:
            self.nothing("line with a link")
            return
        item = self.links[self.cursor]
        if item.what in ROW_SCREENS:
            screen, word = ROW_SCREENS[item.what]
            self.dash_app.show_row(screen, int(item.target), word)
        elif item.what == "match" and self.traced is not None:
            at = self.cursor
            self.trace(self.traced, shown=item.target)
            self.cursor = at  # stays on the click picked
        else:
            self.trace(item.target)

    # -- find ---------------------------------------------------------------------------------

    def action_find(self) -> None:
        box = self.find_box
        box.display = True
        # At once, not after the keys queued (Widget.focus waits): what is typed right after
        # the key must land in the box.
        self.set_focus(box)

    def _find(self) -> None:
        """Every place the story holds the find's text (ignoring case)."""
        self.hits = []
        wanted = self.find_text.lower()
        if wanted:
            plain = self.story_text.plain.lower()
            at = plain.find(wanted)
            while at >= 0:
                self.hits.append(at)
                at = plain.find(wanted, at + len(wanted))
        self.hit = min(self.hit, max(0, len(self.hits) - 1))

    def _step_to_hit(self, delta: int) -> None:
        if self.hits:
            self.hit = (self.hit + delta) % len(self.hits)
        self._redraw()
        if self.hits:
            self.pane.reveal(self.hits[self.hit])

    def action_next_hit(self, delta: int) -> None:
        if not self.find_text:
            self.action_find()
            return
        self._step_to_hit(delta)

    def action_type_id(self) -> None:
        box = self.id_box
        self.set_focus(box)  # at once, as in action_find
        box.select_all()

    def action_leave_input(self) -> None:
        """Escape: out of the id box (back to the id traced) or the find (which it ends), or
        on the story, the end of the find."""
        if self.focused is self.id_box:
            self.id_box.value = self.traced or ""
        elif self.focused is self.find_box or (self.find_text and self.focused is self.pane):
            # leaving the find ends it
            self.find_box.value = ""
            self.find_box.display = False
            self.find_text = ""
            self.hits = []
            self._redraw()
        self.set_focus(self.pane)

    # -- copying ------------------------------------------------------------------------------

    def action_copy(self) -> None:
        if not self.lines:
            self.nothing("trace")
            return
        self.copy("\n".join(self.lines), "trace")

    def action_copy_markdown(self) -> None:
        if self.found is None or self.traced is None or self.found.empty:
            self.nothing("trace")
            return
        self.copy(markdown(self.found, self.traced), "trace as Markdown")


SCREEN = TraceScreen
