"""The key footer: Textual's, recomposed only when the keys it would show change.

Textual's footer rebuilds all its key widgets whenever the screen says its bindings may have
changed, which it says at every screen switch (twice: when the screen is left and when it is
shown again) and at every focus change. Rebuilding means mounting, styling and laying out a
dozen widgets and the screen around them: about half the cost of a switch between screens
that are kept. Switching back to a screen shows the same keys it showed before, so nothing
needs rebuilding; and a key only enabled or disabled is dimmed or brightened in place.

A field the user types in for a moment (the filter bar) keeps the keys: they stay, the
ones it takes dimmed, instead of the footer being rebuilt for the few keys left and again
when the focus leaves it."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# What a footer shows: (key, binding, enabled, tooltip, key display) of each key, in order.
Keys = tuple[tuple[str, Binding, bool, str, str], ...]


class KeepsKeys:
    """A widget in which the focus keeps the footer's keys (see the module's docstring)."""


class KeyFooter(Footer):
    """A ``Footer`` that skips a rebuild when the keys it shows are the ones it shows now."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: Keys | None = None  # what it shows
        self.rebuilds = 0  # how many times it was composed with keys (for tests)

    def keys_shown(self) -> Keys:
        """What decides the footer's content: the active bindings it shows (and the command
        palette's) with their state and how each key is displayed (a keymap changes that),
        in order. Bindings it does not show may differ: focus moving into a text field
        changes those. While the focus is in a ``KeepsKeys`` widget, the keys shown stay,
        those no longer active disabled."""
        if self._shown is None or not self._keeping():
            return self._active_keys()
        active = self.screen.active_bindings
        return tuple(
            (key, binding, enabled and key in active and active[key].enabled, tooltip, display)
            for key, binding, enabled, tooltip, display in self._shown
        )

    def _active_keys(self) -> Keys:
        """The keys of the active bindings, as Textual's footer shows them."""
        app = self.app
        palette = app.COMMAND_PALETTE_BINDING
        return tuple(
            (key, binding, enabled, tooltip, app.get_key_display(binding))
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            if binding.show or key == palette
        )

    def _keeping(self) -> bool:
        focused = self.screen.focused
        return focused is not None and any(
            isinstance(node, KeepsKeys) for node in focused.ancestors_with_self
        )

    def compose(self) -> Any:
        if self._bindings_ready:
            self._shown = self._active_keys()  # (what Textual's compose shows, kept or not)
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
        if not self.is_attached or not self.app.screen_stack:
            return
        keys = self.keys_shown()
        if keys == self._shown:
            return
        if self._shown is not None and _unstated(keys) == _unstated(self._shown):
            self._enable(keys)
        else:
            await self.recompose()

    def _enable(self, keys: Keys) -> None:
        """Show the same keys, each enabled or disabled as in ``keys`` (a restyle, no
        layout: the keys keep their size)."""
        enabled = {binding.key: on for _, binding, on, _, _ in keys}
        for widget in self.query(FooterKey):
            off = not enabled.get(widget.key, not widget._disabled)
            widget._disabled = off  # (what a click checks)
            widget.set_class(off, "-disabled")
        self._shown = keys


def _unstated(keys: Keys) -> tuple[tuple[str, Binding, str, str], ...]:
    """The keys without whether each is enabled."""
    return tuple((key, binding, tooltip, display) for key, binding, _, tooltip, display in keys)
