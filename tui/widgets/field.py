"""A one-line text field whose editing keys act in the order they were typed."""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class Field(Input):
    """Textual's ``Input``, whose own bound keys (backspace, delete, ctrl+u, ctrl+w, the
    arrows, home, end, Enter) act as they come, between the characters typed around them.

    Textual types a character the moment its key reaches the field, but runs a bound key's
    action only once the key has gone round to the app, so characters that came in the same
    burst are typed first: over SSH, which often delivers several keys at once, ``ab``,
    backspace, ``c`` read ``ab``, and ctrl+u followed by new text left the field empty. The
    field's own bindings run here instead, as the app would run them; keys bound elsewhere
    (the screen's, the app's) still go round. A key sent on to the field before one of its
    own moved the focus away (Enter, say) goes back to the app, which sends it on to where
    the focus is now."""

    async def _on_key(self, event: events.Key) -> None:
        # (the screen's focus, not has_focus: that changes once the Blur is handled)
        if self.screen.focused is not self:
            event.prevent_default()
            event.stop()
            self.app.post_message(events.Key(event.key, event.character))
            return
        if not event.is_printable:
            for binding in self._bindings.key_to_bindings.get(event.key, ()):
                if not binding.priority and await self.app.run_action(binding.action, self):
                    event.prevent_default()
                    event.stop()
                    return
