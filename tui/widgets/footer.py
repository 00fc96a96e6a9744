"""The key footer: Textual's, recomposed only when the keys it would show change.

Textual's footer rebuilds all its key widgets whenever the screen says its bindings may have
changed, which it says at every screen switch (twice: when the screen is left and when it is
shown again) and at every focus change. Rebuilding means mounting, styling and laying out a
dozen widgets and the screen around them: about half the cost of a switch between screens
that are kept. Switching back to a screen shows the same keys it showed before, so nothing
needs rebuilding."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    """A ``Footer`` that skips a rebuild when the keys it shows are the ones it shows now."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: Hashable | None = None  # what the last compose showed
        self.rebuilds = 0  # how many times it was composed with keys (for tests)

    def keys_shown(self) -> Hashable:
        """What decides the footer's content: the active bindings it shows (and the command
        palette's) with their state and how each key is displayed (a keymap changes that),
        in order. Bindings it does not show may differ: focus moving into a text field
        changes those."""
        app = self.app
        palette = app.COMMAND_PALETTE_BINDING
        return tuple(
            (key, binding, enabled, tooltip, app.get_key_display(binding))
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            if binding.show or key == palette
        )

    def compose(self) -> Any:
        if self._bindings_ready:
            self._shown = self.keys_shown()
            self.rebuilds += 1
        return super().compose()

    def bindings_changed(self, screen: Screen[Any]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        # Checked when the rebuild would run, not when it was asked for: a switch asks several
        # times, and the focus may have moved meanwhile.
        if self.is_attached and self.app.screen_stack and self.keys_shown() != self._shown:
            await self.recompose()
