"""Timing a key press on the dashboard driven by Textual's Pilot, as bench/scale.py and
bench/tui.py --screens do: until what the key shows holds (a screen shown, its tables idle,
every screen built ahead), and until the last frame before that which changed the screen."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any


class Frames:
    """When the dashboard last drew a frame that changed the screen (headless: composed, not
    written). A refresh that finds nothing to draw is not a frame: Pilot's wait after a key
    leaves one such refresh of a hidden input, 60-90 ms after the screen itself is drawn."""

    def __init__(self) -> None:
        self.last: float | None = None
        self._installed = False

    def install(self) -> None:
        """Wrap the app's display of a screen update, once."""
        if self._installed:
            return
        from textual.app import App

        frames = self
        display = App._display

        def shown(app: Any, screen: Any, update: Any) -> None:
            display(app, screen, update)
            if update is not None:
                frames.last = time.perf_counter()

        App._display = shown  # type: ignore[method-assign]
        self._installed = True


FRAMES = Frames()


async def settle(pilot: Any, until: Callable[[], bool], limit: float = 10.0) -> None:
    """Wait until ``until`` holds (at most ``limit`` seconds), then until Pilot sees the
    process idle."""
    deadline = time.perf_counter() + limit
    while not until() and time.perf_counter() < deadline:
        await asyncio.sleep(0.001)
    await pilot.pause()


async def timed_press(
    pilot: Any, key: str, until: Callable[[], bool], frames: Frames = FRAMES
) -> tuple[float, float]:
    """Press ``key``; return (settled, painted) in ms: settled is until ``until`` holds and
    Pilot sees the process idle (that check alone takes 20 ms or more), painted is until the
    last frame before that which changed the screen, what the user waits for."""
    frames.last = None
    started = time.perf_counter()
    await pilot.press(key)
    await settle(pilot, until)
    settled = time.perf_counter()
    painted = frames.last if frames.last is not None else started
    return (settled - started) * 1000, (painted - started) * 1000


def tables_idle(app: Any) -> bool:
    """Every table of the active screen has its rows and reads nothing more."""
    from tui.widgets.live_table import LiveTable

    tables = list(app.screen.query(LiveTable))
    return all(t.loaded and not t._busy and not t._paging for t in tables)


def shown(app: Any, mode: str) -> bool:
    """The screen ``mode`` is shown with its tables idle."""
    return bool(app.current_mode == mode) and tables_idle(app)


def built(app: Any) -> bool:
    """Every screen built ahead and the heap frozen after them (what the dashboard does once
    Live shows; older code builds none ahead: nothing to wait for). Live itself is shown, not
    built ahead, so its flag says nothing."""
    views = getattr(app, "views", {})
    if not all(view.is_mounted for view in views.values()):
        return False
    return not getattr(app, "BUILD_AHEAD", False) or gc.get_freeze_count() > 0
