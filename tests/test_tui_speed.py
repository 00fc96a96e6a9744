"""What keeps switching screens and paging quick, checked as behaviour (bench/tui.py --screens
times it): every screen is built ahead and shows its rows and keys at its first switch, the
footer is rebuilt only when the keys it shows change, a screen that comes back follows what
changed while it was away (rows and theme), a single move reads its detail at once while a
held key waits, the detail pane takes a text of another height without laying the screen out
again, Enter on the filter bar lays the screen out once, and the heap is set aside from the
collector while the dashboard runs."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets._footer import FooterKey

from tests.helpers import BASE_CONFIG, free_port, until
from tui.app import PostwatchApp
from tui.context import DashOptions
from tui.screens import base
from tui.screens.base import DashScreen, TableScreen
from tui.widgets.detail import DetailPane
from tui.widgets.footer import KeyFooter
from tui.widgets.live_table import LiveTable

CONFIG = BASE_CONFIG.replace(
    "[delivery]", '[listener]\nunknown_clicks = "attach:casino-fr"\n\n[delivery]'
)


@dataclass
class Running:
    app: PostwatchApp
    pilot: Pilot[None]
    session: aiohttp.ClientSession

    async def postback(self, clickid: str) -> None:
        assert self.app.dash is not None
        url = f"{self.app.dash.base_url}/postback"
        async with self.session.get(url, params={"clickid": clickid, "type": "Lead"}) as answer:
            assert answer.status == 200, await answer.text()

    def view(self, name: str) -> DashScreen:
        return self.app.views[name]

    def built(self) -> bool:
        return all(view.is_mounted for view in self.app.views.values())


@asynccontextmanager
async def dashboard(tmp_path: Path) -> AsyncIterator[Running]:
    port = free_port()
    config = tmp_path / "postwatch.toml"
    config.write_text(CONFIG.replace("PORT", str(port)), encoding="utf-8")
    options = DashOptions(db=tmp_path / "postwatch.db", host="127.0.0.1", port=port, config=config)
    options.poll_interval = 0.05
    app = PostwatchApp(options)
    async with app.run_test(size=(120, 34)) as pilot, aiohttp.ClientSession() as session:
        await until(lambda: app.dash is not None and app.current_mode == "live")
        await app.wait_ready()
        yield Running(app, pilot, session)


def rows(screen: DashScreen) -> list[str]:
    return [str(row.data.get("click_id")) for row in screen.query_one(LiveTable).table.rows]


async def test_every_screen_is_built_ahead_and_shows_its_rows_and_keys_at_its_first_switch(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        await pw.postback("c-1")
        await until(lambda: rows(pw.view("live")) == ["c-1"])
        await until(pw.built)
        inbound = pw.view("inbound")
        # read while hidden: the first switch has nothing left to read or compose
        await until(lambda: rows(inbound) == ["c-1"])
        footer = inbound.query_one(KeyFooter)
        await until(lambda: footer.rebuilds == 1)
        assert pw.app.screen is pw.view("live")
        await pw.pilot.press("4")
        assert pw.app.screen is inbound
        assert rows(inbound) == ["c-1"]
        assert footer.rebuilds == 1, "the footer composed ahead is the one shown"
        assert any(key.description == "Copy URL" for key in footer.query(FooterKey))


async def test_the_footer_is_rebuilt_only_when_the_keys_it_shows_change(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        await until(pw.built)
        live = pw.view("live").query_one(KeyFooter)
        shown = live.rebuilds
        for key in ("2", "3", "1", "4", "1"):
            await pw.pilot.press(key)
            await pw.pilot.pause()
        assert live.rebuilds == shown, "switching back shows the same keys: nothing to rebuild"
        trace = pw.view("trace").query_one(KeyFooter)
        await pw.pilot.press("5", "i")  # the id field takes the focus: printable keys type into it
        await pw.pilot.pause()
        typing = trace.rebuilds
        keys_typing = len(trace.query(FooterKey))
        await pw.pilot.press("escape")  # the story takes it: the screen's keys work again
        await until(lambda: trace.rebuilds == typing + 1)
        await pw.pilot.pause()
        assert len(trace.query(FooterKey)) > keys_typing


def count_layouts(screen: Screen[object], monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The layout passes of ``screen`` from now on (one each; a pass that only moves what a
    scroll shows is not one)."""
    layouts: list[object] = []
    original = screen._refresh_layout

    def counted(*args: object, **kwargs: object) -> None:
        if not kwargs.get("scroll") or screen._layout_widgets:
            layouts.append(args)
        original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(screen, "_refresh_layout", counted)
    return layouts


async def test_the_first_switch_to_a_screen_built_ahead_lays_nothing_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building ahead lays a screen out until its widgets keep their size (the Campaigns
    rule's lists measure their content when first drawn), so its first switch only paints."""
    async with dashboard(tmp_path) as pw:
        await pw.postback("c-1")
        await until(pw.built)
        for key, name in (("2", "campaigns"), ("3", "deliveries"), ("4", "inbound")):
            view = pw.view(name)
            layouts = count_layouts(view, monkeypatch)
            await pw.pilot.press(key)
            assert pw.app.screen is view
            await pw.pilot.pause()
            await pw.pilot.pause()
            assert layouts == [], name


async def test_enter_on_the_filter_bar_lays_the_screen_out_once_and_rebuilds_no_footer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Enter closes the bar, gives the table the focus and replaces its rows: each laid the
    # screen out (10-30 ms a pass), the table's scrollbar went and came, the footer was
    # rebuilt for the table's keys, and every widget that changed size laid it out again.
    async with dashboard(tmp_path) as pw:
        for number in range(40):  # more rows than the table shows: it has a scrollbar
            await pw.postback(f"c-{number}")
        live = pw.view("live")
        assert isinstance(live, TableScreen)
        await until(lambda: len(rows(live)) == 40)
        await until(pw.built)
        footer = live.query_one(KeyFooter)
        shown = footer.rebuilds
        trace = next(key for key in footer.query(FooterKey) if key.action == "trace")
        await pw.pilot.press("slash")
        await pw.pilot.pause()
        assert live.bar.is_open and live.bar.input.has_focus
        # the table's keys stay in the footer, dimmed while the bar takes them
        assert trace.has_class("-disabled")
        await pw.pilot.press(*"c-7")
        layouts = count_layouts(live, monkeypatch)
        await pw.pilot.press("enter")
        await until(lambda: rows(live) == ["c-7"] and "c-7" in live.query_one(DetailPane).plain)
        await pw.pilot.pause()
        assert not live.bar.is_open and live.live.table.has_focus
        assert "q=c-7" in live.live._status().plain
        assert len(layouts) == 1
        assert footer.rebuilds == shown
        assert not trace.has_class("-disabled")
        # the clear key brings every row back in one pass too
        layouts.clear()
        await pw.pilot.press("x")
        await until(lambda: len(rows(live)) == 40 and "c-39" in live.query_one(DetailPane).plain)
        await pw.pilot.pause()
        assert len(layouts) <= 1
        assert footer.rebuilds == shown


async def test_a_screen_that_comes_back_shows_what_changed_while_it_was_away(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        await pw.postback("c-1")
        await until(pw.built)
        await pw.pilot.press("4")
        inbound = pw.view("inbound")
        await until(lambda: rows(inbound) == ["c-1"])
        await pw.pilot.press("1")
        await pw.postback("c-2")
        await until(lambda: rows(pw.view("live")) == ["c-2", "c-1"])
        await pw.pilot.press("4")
        await until(lambda: rows(inbound) == ["c-2", "c-1"])


async def test_a_screen_built_ahead_takes_a_theme_chosen_before_its_first_switch(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        await until(pw.built)
        deliveries = pw.view("deliveries")
        dark = deliveries.query_one(LiveTable).table.rich_style
        pw.app.theme = "textual-light"
        await pw.pilot.pause()
        await pw.pilot.press("3")
        await pw.pilot.pause()
        assert pw.app.screen is deliveries
        light = deliveries.query_one(LiveTable).table.rich_style
        assert light != dark
        assert light == pw.view("live").query_one(LiveTable).table.rich_style


async def test_one_move_reads_its_detail_at_once_and_a_quick_next_one_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At most one detail read per delay: the first move after a quiet delay reads at once,
    # a move within the delay of a read waits for the rest of it.
    monkeypatch.setattr(base, "DETAIL_DELAY", 2.0)
    async with dashboard(tmp_path) as pw:
        for n in range(3):
            await pw.postback(f"c-{n}")
        live = pw.view("live")
        await until(lambda: rows(live) == ["c-2", "c-1", "c-0"])
        pane = live.query_one(DetailPane)
        table = live.query_one(LiveTable).table
        await until(lambda: pane.key == table.cursor_key)
        await pw.pilot.pause(2.2)  # quiet for longer than the delay
        await pw.pilot.press("down")
        second = table.cursor_key
        await until(lambda: pane.key == second, timeout=1.5)  # not 2 s later
        await pw.pilot.press("down")
        await pw.pilot.pause(0.3)
        assert table.cursor_key != second
        assert pane.key == second, "a move right after a read waits for the delay"
        await until(lambda: pane.key == table.cursor_key)  # and then it is read


async def test_the_heap_is_frozen_once_the_screens_are_built_and_thawed_at_exit(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        await until(pw.built)
        await until(lambda: gc.get_freeze_count() > 0)
    assert gc.get_freeze_count() == 0


class PaneAndList(App[None]):
    def compose(self) -> ComposeResult:
        yield DetailPane("nothing yet")


async def test_a_detail_of_another_height_does_not_lay_the_screen_out_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A layout pass lays the whole screen out (20-40 ms on the dashboard): only a scrollbar
    # that appears or goes may need one, not a text that is taller or shorter.
    app = PaneAndList()
    async with app.run_test(size=(40, 10)) as pilot:
        pane = app.query_one(DetailPane)
        await pilot.pause()
        layouts: list[object] = []
        original = app.screen._refresh_layout

        def counted(*args: object, **kwargs: object) -> None:
            layouts.append(args)
            original(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(app.screen, "_refresh_layout", counted)
        for key, height in enumerate((2, 5, 3, 8)):  # all within the pane's 10 lines
            pane.show(key, Text("\n".join(f"short {key}.{n}" for n in range(height))))
            await pilot.pause()
            assert pane.drawn()[-1].strip() == f"short {key}.{height - 1}"
        assert layouts == []
        pane.show("tall", Text("\n".join(f"tall {n}" for n in range(30))))
        await pilot.pause()  # the scrollbar appears: one layout may come
        layouts.clear()
        for key, height in enumerate((40, 25, 60)):  # all taller than the pane
            pane.show(key, Text("\n".join(f"long {key}.{n}" for n in range(height))))
            await pilot.pause()
            assert pane.max_scroll_y == height - pane.size.height
        assert layouts == []
