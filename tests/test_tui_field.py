"""The dashboard's text fields (tui/widgets/field.py) apply keys in the order they came, also
when several come at once, as over SSH: the editing keys are not overtaken by the characters
typed after them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.app import App
from textual.widgets import Input

from tests.helpers import dashboard, until
from tui.widgets.field import Field
from tui.widgets.filter_bar import FilterBar


def burst(app: App[Any], *keys: str) -> None:
    """Send ``keys`` to the app in one go, as a terminal delivers keys read at once (Pilot's
    press waits for the app after every key)."""
    for key in keys:
        character = key if len(key) == 1 else None
        app.post_message(events.Key(key, character))


class Fields(App[None]):
    def compose(self) -> Any:
        yield Field(id="field")
        yield Input(id="input")


BURSTS = [
    (("a", "b", "backspace", "c"), "ac"),
    (("a", "b", "ctrl+u", "x", "y"), "xy"),
    (("a", "b", "left", "c"), "acb"),
    (("a", "b", "home", "c"), "cab"),
]


@pytest.mark.parametrize(("keys", "typed"), BURSTS, ids=str)
async def test_a_burst_of_keys_is_applied_in_order(keys: tuple[str, ...], typed: str) -> None:
    app = Fields()
    async with app.run_test() as pilot:
        for name in ("field", "input"):
            app.query_one(f"#{name}").focus()
            await pilot.pause()
            burst(app, *keys)
            await pilot.pause()
        assert app.query_one("#field", Field).value == typed
        # Textual's own field applies the editing key last: what the field is for (when
        # Textual applies them in order, this fails and the field can go)
        assert app.query_one("#input", Input).value != typed


async def test_the_filter_bar_takes_a_fast_correction(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        await pw.press("slash")
        bar = pw.app.screen.query_one(FilterBar)
        assert isinstance(bar.input, Field)
        burst(pw.app, *"status=declinde", "backspace", "backspace", *"ed", "enter")
        try:
            await until(lambda: not bar.is_open)  # (once the filter's rows show)
        except AssertionError:
            pytest.fail(f"the bar stayed open, holding {bar.input.value!r}")
        assert pw.app.screen.live.source.found_text == "status=declined"


async def test_keys_typed_right_behind_the_slash_land_in_the_filter_bar(tmp_path: Path) -> None:
    """``/status=approved`` and Enter arriving at once: every letter is typed into the bar
    that ``/`` opens, none runs as the table's key (``t`` would trace the row, ``d`` start
    demo traffic, ``e`` open a form)."""
    async with dashboard(tmp_path) as pw:
        click = await pw.click()
        await pw.postback(clickid=click, type="Deposit", status="approved", sum="5")
        await until(lambda: pw.table().keys)
        burst(pw.app, "slash", *"status=approved type=Deposit", "enter")
        await until(lambda: pw.app.screen.live.source.found_text != "")
        await pw.pilot.pause()
        assert pw.app.screen.live.source.found_text == "status=approved type=Deposit"
        assert pw.app.current_mode == "live"
        assert not pw.app.demo_running
        assert len(pw.app.screen_stack) == 1  # no form opened


async def test_a_number_typed_right_behind_the_slash_is_typed_not_a_screen_switch(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        burst(pw.app, "slash", *"tx-12", "enter")
        await until(lambda: pw.app.screen.live.source.found_text != "")
        assert pw.app.current_mode == "live"
        assert pw.app.screen.live.source.found_text == "q=tx-12"


async def test_a_number_right_behind_a_table_key_still_switches_screens(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        burst(pw.app, "down", "2")
        await until(lambda: pw.app.current_mode == "campaigns")
        burst(pw.app, "1")  # nothing before it going round: at once
        await until(lambda: pw.app.current_mode == "live")
