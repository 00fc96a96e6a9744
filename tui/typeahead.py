"""Keys typed ahead: each acts as if the keys before it had all been handled."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from textual import events
from textual.app import App
from textual.widget import Widget

from tui.widgets.field import Field

# How long a key sent on to a widget may take to come back round to the app before it
# counts as taken by the widget (one that types it, or handles it itself).
ROUND = 0.1  # seconds


@dataclass
class Sent:
    """A key the app sent on to a widget, and whether it came while others still went round."""

    key: events.Key
    to: Widget | None  # (None: the screen)
    at: float
    held: bool


class TypeAheadApp(App[None]):
    """An app whose keys act in the order they came, also in a burst.

    Textual sends each key on to the widget focused when the key comes, and a key that
    widget does not take goes round to the app, which runs its binding; a priority binding
    (the screen numbers) runs before the key is sent on. So in a burst such as
    ``/status=approved`` or ``/tx-1`` (typed fast, or arriving at once over SSH) every
    letter went to the table and ran as the table's key when it came back round, after
    ``/`` had opened the filter bar (``t`` traced the row, ``d`` started demo traffic), and
    ``1`` switched to Live before ``/`` was handled at all. Here a key that comes back round
    from a widget the focus has since left for a text field is typed into the field, and a
    key that comes while keys before it still go round is sent on like them: its priority
    binding runs when it comes back round itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sent: deque[Sent] = deque(maxlen=64)
        self._holding = False  # (while a key that came behind others is sent on)

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key) or event.is_forwarded:
            await super().on_event(event)
            return
        now = time.monotonic()
        held = any(not isinstance(sent.to, Field) and now - sent.at < ROUND for sent in self._sent)
        self._sent.append(Sent(event, self.focused, now, held))
        self._holding = held
        try:
            await super().on_event(event)
        finally:
            self._holding = False

    async def _check_bindings(self, key: str, priority: bool = False) -> bool:
        if priority and self._holding:
            return False  # (sent on: checked when it comes back round, in ``_on_key``)
        return await super()._check_bindings(key, priority)

    async def _on_key(self, event: events.Key) -> None:
        sent = next((sent for sent in self._sent if sent.key is event), None)
        if sent is None:
            return
        self._sent.remove(sent)
        field = self.focused
        if isinstance(field, Field) and sent.to is not field:
            event.prevent_default()  # (not the binding of the widget the key went to)
            field._forward_event(events.Key(event.key, event.character))
        elif sent.held and await self._check_bindings(event.key, priority=True):
            event.prevent_default()
