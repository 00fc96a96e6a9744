"""Keys typed right behind one that opens a text field land in the field."""

from __future__ import annotations

from collections import deque
from typing import Any

from textual import events
from textual.app import App
from textual.widget import Widget

from tui.widgets.field import Field


class TypeAheadApp(App[None]):
    """An app that sends keys typed ahead of a focus change where the focus went.

    Textual sends each key on to the widget focused when the key comes, and a key that
    widget does not take goes round to the app, which runs its binding. So a burst such as
    ``/status=approved`` (typed fast, or arriving at once over SSH) sent every letter to the
    table, and each came back round after ``/`` had opened the filter bar, to run as the
    table's key: ``t`` traced the row, ``d`` started demo traffic. A key that comes back
    round from a widget the focus has since left for a text field is typed into the field
    instead, as it would have been had it come a moment later."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the keys sent on lately, each with the widget it went to (None: the screen)
        self._sent: deque[tuple[events.Key, Widget | None]] = deque(maxlen=64)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._sent.append((event, self.focused))
        await super().on_event(event)

    async def _on_key(self, event: events.Key) -> None:
        field = self.focused
        if not isinstance(field, Field):
            return
        sent_to = next((widget for key, widget in self._sent if key is event), field)
        if sent_to is not field:
            event.prevent_default()  # (not the binding of the widget the key went to)
            field._forward_event(events.Key(event.key, event.character))
