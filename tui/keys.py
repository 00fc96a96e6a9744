"""Key bindings by id, for the config's ``[keys]`` table: which ids exist.

Importing this module does not import Textual: ``postwatch config import`` gets
``binding_ids`` from the command line's context and calls it only when a file has ``[keys]``."""

from __future__ import annotations

from typing import Any


def binding_ids() -> frozenset[str]:
    """Every binding id of the dashboard: the app's, its screens' and their widgets'."""
    from textual.binding import Binding

    from tui.app import SCREENS, PostwatchApp
    from tui.screens.trace import StoryPane
    from tui.widgets.forms import FormScreen
    from tui.widgets.rows import RowTable

    owners: list[Any] = [PostwatchApp, *SCREENS.values(), RowTable, FormScreen, StoryPane]
    return frozenset(
        binding.id
        for owner in owners
        for binding in owner.BINDINGS
        if isinstance(binding, Binding) and binding.id
    )
