"""The Trace screen and what it hands on, driven through Pilot with the real listener and
database: the clicks an id matches, a transaction id's conversion, jumping from a line to its
row on another screen, finding text in the story, copying it as Markdown, and the focus and
keys around it (number keys, the Live detail, the palette, the keys panel)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events

from tests.helpers import BASE_CONFIG, Driver, dashboard, live_row, until
from tui.screens.trace import StoryPane, TraceScreen
from tui.widgets.detail import DetailPane
from tui.widgets.keys_panel import KeysPanel
from tui.widgets.live_table import LiveTable


def trace_screen_of(pw: Driver) -> TraceScreen:
    view = pw.app.views["trace"]
    assert isinstance(view, TraceScreen)
    return view


def trace_screen(pw: Driver) -> TraceScreen:
    screen = pw.app.screen
    assert isinstance(screen, TraceScreen)
    return screen


async def trace(pw: Driver, any_id: str) -> TraceScreen:
    """Trace ``any_id`` from the keyboard as a user does: 5, i, the id, Enter."""
    await pw.press("5")
    await until(lambda: pw.app.current_mode == "trace")
    await pw.press("i", *any_id, "enter")
    screen = trace_screen(pw)
    await until(lambda: screen.found is not None and screen.found.traced == any_id)
    await until(lambda: screen.pane.key == screen._key())
    return screen


async def cursor_to(pw: Driver, screen: TraceScreen, what: str, target: str = "") -> None:
    """Move the story's cursor down to the first link to a ``what`` (``target``, if given)."""
    for _ in range(len(screen.links)):
        item = screen.links[screen.cursor]
        if item.what == what and (not target or item.target == target):
            return
        await pw.press("down")
    raise AssertionError(f"no link to a {what} {target} in the story")


async def test_an_external_id_on_two_clicks_lists_both_and_shows_the_other(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path, size=(80, 24)) as pw:
        older = await pw.click(ref_id="dup-ext")
        newer = await pw.click(ref_id="dup-ext")
        await pw.postback(clickid=older, type="Lead", status="1")
        screen = await trace(pw, "dup-ext")
        assert "2 clicks match 'dup-ext' — showing the newest" in pw.detail()
        assert f"click {newer}: campaign 'casino-fr'" in pw.detail()
        assert "conversion #" not in pw.detail()  # the newest click has none
        await cursor_to(pw, screen, "match", older)
        assert f"show click {older}" in str(screen.query_one("#trace-status").render())
        await pw.press("enter")
        await until(lambda: f"showing click {older}" in pw.detail())
        assert screen.links[screen.cursor].target == older  # the cursor stays on it
        lines = pw.detail().splitlines()
        assert lines[1].startswith(f"  click {newer}: ") and not lines[1].endswith("(shown)")
        assert lines[2].startswith(f"  click {older}: ") and lines[2].endswith("(shown)")
        assert "conversion #1 created: type Lead" in pw.detail()
        # the Markdown ticket tells the click shown, secrets masked
        await pw.press("m")
        ticket = pw.app.clipboard
        assert ticket.startswith("# postwatch trace of `dup-ext`\n")
        assert f"- `{older}`: campaign `casino-fr`" in ticket and "(shown)" in ticket
        assert f"- click id: `{older}`" in ticket


async def test_a_txid_trace_focuses_its_conversion(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="ext-many")
        for n in range(4):
            await pw.postback(clickid=clickid, type="Lead", status="1", txid=f"T{n}")
        await until(lambda: len(pw.table().rows) == 4)
        wanted = next(row.key for row in pw.table().rows if row.data["txid"] == "T2")
        screen = await trace(pw, "T2")
        shown = pw.detail()
        assert f"transaction id 'T2' is conversion #{wanted}" in shown
        assert "the click's 3 other conversions are not shown" in shown
        assert [line for line in shown.splitlines() if "conversion #" in line and "created" in line]
        assert "txid T2" in shown and "txid T1" not in shown and "txid T3" not in shown
        # the click's id in that line traces the whole click
        await cursor_to(pw, screen, "click", clickid)
        await pw.press("enter")
        await until(lambda: "txid T3" in pw.detail() and "txid T0" in pw.detail())


async def test_enter_on_a_delivery_line_lands_on_its_row_even_beyond_the_loaded_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small window, so that the first delivery is older than the rows loaded.
    monkeypatch.setattr(LiveTable, "WINDOW", 6)
    monkeypatch.setattr(LiveTable, "PAGE", 4)
    async with dashboard(tmp_path) as pw:
        first = await pw.click(ref_id="ext-first")
        await pw.postback(clickid=first, type="Lead", status="1")
        for n in range(8):
            clickid = await pw.click(ref_id=f"ext-{n}")
            await pw.postback(clickid=clickid, type="Lead", status="1")
        await pw.show("deliveries")
        await until(lambda: len(pw.table().rows) == 6)
        screen = await trace(pw, first)
        await cursor_to(pw, screen, "delivery")
        delivery = int(screen.links[screen.cursor].target)
        assert delivery not in pw.app.views["deliveries"].query_one(LiveTable).table.keys
        await pw.press("enter")
        await until(lambda: pw.app.current_mode == "deliveries")
        await until(lambda: pw.table().cursor_key == delivery)
        assert pw.table().has_focus
        row = pw.table().cursor_row
        assert row is not None and row.data["click_id"] == first
        # the rows around it are there, newer ones above it
        assert pw.table().keys.index(delivery) > 0
        await until(lambda: f"#{delivery}" in pw.detail() or first in pw.detail())
        # and a conversion line lands on Live
        screen = await trace(pw, first)
        await cursor_to(pw, screen, "conversion")
        conversion = int(screen.links[screen.cursor].target)
        await pw.press("enter")
        await until(lambda: pw.app.current_mode == "live")
        await until(lambda: pw.table().cursor_key == conversion)


async def test_slash_finds_text_in_the_story_and_n_moves_between_matches(tmp_path: Path) -> None:
    async with dashboard(tmp_path, size=(80, 24)) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Deposit", status="2", sum="50")
        await pw.postback(clickid=clickid, status="1")
        await pw.dash.store.read(lambda conn: None)
        screen = await trace(pw, clickid)
        await until(lambda: pw.detail().count("attempt 1") >= 2)
        await pw.press("slash", *"POSTBACK '", "enter")
        count = pw.detail().lower().count("postback '")
        assert count >= 3
        status = screen.query_one("#trace-status")
        assert f"1 of {count}" in str(status.render())
        assert screen.pane.has_focus
        await pw.press("n")
        assert f"2 of {count}" in str(status.render())
        assert screen.hit == 1
        await pw.press("N", "N")
        assert f"{count} of {count}" in str(status.render())
        # the match shown is drawn reversed, in view
        pane = screen.pane
        row = pane.row_of(screen.hits[screen.hit])
        assert round(pane.scroll_y) <= row < round(pane.scroll_y) + pane.size.height
        strip = pane.render_line(row - round(pane.scroll_y))
        reversed_text = "".join(
            segment.text for segment in strip if segment.style and segment.style.reverse
        )
        assert reversed_text.lower() == "postback '"
        await pw.press("escape")
        assert screen.hits == [] and not screen.find_box.display


async def test_number_keys_switch_screens_from_trace_in_every_focus_state(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="ext-1")

        async def back_to_live() -> None:
            await pw.press("1")
            await until(lambda: pw.app.current_mode == "live")

        await pw.press("5")  # arriving: the story has the focus, not the id box
        await until(lambda: pw.app.current_mode == "trace")
        assert isinstance(pw.app.focused, StoryPane)
        await back_to_live()
        await trace(pw, clickid)  # after tracing
        assert isinstance(pw.app.focused, StoryPane)
        await back_to_live()
        await pw.press("5", "i", "x", "escape")  # after typing in the id box and leaving it
        await back_to_live()
        await pw.press("5", "slash", "c", "l", "enter")  # after a find
        await back_to_live()
        await pw.press("5", "slash", "escape")  # after a find left
        await back_to_live()
        await pw.press("5")
        await pw.pilot.click("#trace-input")  # the box stays clickable
        focused: object = pw.app.focused
        assert focused is trace_screen(pw).id_box
        await pw.press("2")  # in the box, a digit is part of the id
        assert "2" in trace_screen(pw).id_box.value
        await pw.press("enter", "3")
        await until(lambda: pw.app.current_mode == "deliveries")
        await pw.press("5")  # coming back never lands in the box
        await until(lambda: pw.app.current_mode == "trace")
        assert isinstance(pw.app.focused, StoryPane)
        # Keys typed fast, as a terminal sends them in one read: Enter and a number key
        # reach the app before the box has handled the Enter.
        await pw.press("i", *clickid)
        for key, character in (("enter", "\r"), ("4", "4")):
            pw.app.post_message(events.Key(key, character))
        await until(lambda: pw.app.current_mode == "inbound")
        assert trace_screen_of(pw).id_box.value == clickid
        await until(lambda: trace_screen_of(pw).found is not None)


async def test_y_after_tab_into_the_detail_and_back_copies_the_selected_row(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        clicks = [await pw.click(ref_id=f"ext-{n}") for n in range(3)]
        for clickid in clicks:
            await pw.postback(clickid=clickid, type="Lead")
        await until(lambda: all(live_row(pw, clickid) for clickid in clicks))
        table = pw.table()
        for back in ("tab", "escape"):
            await pw.press("home", "tab")
            detail = pw.app.screen.query_one(DetailPane)
            assert detail.has_focus
            await pw.press(back)
            assert table.has_focus
            await pw.press("down", "y")
            assert pw.app.clipboard == table.rows[1].data["click_id"]
        # in the detail, y still copies the selected row's click id
        await pw.press("tab", "y")
        assert pw.app.clipboard == table.rows[1].data["click_id"]
        # and away to another screen and back, the table has the focus again
        await pw.press("3")
        await until(lambda: pw.app.current_mode == "deliveries")
        await pw.press("1")
        await until(lambda: pw.app.current_mode == "live")
        assert pw.table().has_focus


async def test_the_palette_on_live_finds_resend_and_runs_it_on_deliveries(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Lead", status="1")
        titles = [command.title for command in pw.app.get_system_commands(pw.app.screen)]
        assert "Deliveries: Resend — Send this request again" in titles
        assert "Trace: Copy Markdown — Copy as a ticket" in titles
        await pw.show("deliveries")
        await until(lambda: pw.table().rows and pw.table().rows[0].data["outcome"] == "delivered")
        first = pw.table().rows[0].key
        await pw.show("live")
        await pw.press("ctrl+p")
        await pw.press(*"resend")
        await pw.pilot.pause(0.3)
        await pw.press("enter")
        await until(lambda: pw.app.current_mode == "deliveries")
        await until(lambda: pw.table().rows[0].data["resend_of"] == first)


async def test_the_keys_panel_lists_every_binding_id(tmp_path: Path) -> None:
    async with dashboard(tmp_path, size=(80, 24)) as pw:
        await pw.press("question_mark")
        panel = pw.app.screen.query_one(KeysPanel)
        for binding_id in ("live.copy", "deliveries.resend", "trace.markdown", "app.trace"):
            assert binding_id in panel.plain
        assert panel.plain.index("On Live") < panel.plain.index("On Deliveries")
        await pw.press("3")  # its keys still work while it shows
        await until(lambda: pw.app.current_mode == "deliveries")
        await pw.press("question_mark")
        assert pw.app.screen.query_one(KeysPanel).plain.startswith("Keys")
        assert "On Deliveries" in pw.app.screen.query_one(KeysPanel).plain.split("\n\n")[1]
        await pw.press("question_mark")
        assert not pw.app.screen.query(KeysPanel)


async def test_wrapped_detail_lines_keep_a_hanging_indent(tmp_path: Path) -> None:
    long_path = "/sink/propeller/" + "a-long-path-segment/" * 4
    config = BASE_CONFIG.replace("/sink/propeller?", long_path + "?")
    async with dashboard(tmp_path, size=(80, 24), config=config) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Lead", status="1")
        await trace(pw, clickid)
        await until(lambda: "attempt 1" in pw.detail())
        drawn = trace_screen(pw).pane.drawn()
        at = next(n for n, line in enumerate(drawn) if "attempt 1" in line)
        indent = len(drawn[at]) - len(drawn[at].lstrip())
        following = drawn[at + 1]
        assert len(following) - len(following.lstrip()) == indent + 2
        assert "".join(line.strip() for line in drawn[at : at + 4]).count("a-long-path") == 4


async def test_a_wide_deliveries_table_keeps_the_query_of_a_long_url(tmp_path: Path) -> None:
    long_path = "/sink/propeller/" + "a-long-path-segment/" * 6
    config = BASE_CONFIG.replace("/sink/propeller?", long_path + "?")
    async with dashboard(tmp_path, size=(200, 50), config=config) as pw:
        clickid = await pw.click(ref_id="ext-kept")
        await pw.postback(clickid=clickid, type="Lead", status="1", sum="12")
        await pw.show("deliveries")
        await until(lambda: pw.table().rows)
        line = next(line for line in pw.screen_lines() if "ext-kept" in line)
        assert "?visitor_id=ext-kept&payout=12" in line
        assert "…" in line  # the middle of the path gave way


def test_the_hanging_wrap_keeps_each_style_on_its_characters() -> None:
    from rich.text import Text

    from tui.widgets.detail import hanging_wrap

    line = "    attempt 1: GET http://127.0.0.1:8080/sink/a?visitor_id=ext-102&payout=50 -> 200"
    text = Text(f"short\n{line}\nlast", end="")
    url = line.index("http")
    text.stylize("underline", 6 + url, 6 + url + 50)
    text.stylize("bold", 6 + 4, 6 + 13)
    wrapped, starts = hanging_wrap(text, 30)
    rows = wrapped.plain.split("\n")
    assert all(len(row) <= 30 for row in rows)
    assert rows[1] == "    attempt 1: GET" and all(row.startswith("      ") for row in rows[2:-1])
    assert text.plain[starts[0] : starts[0] + 4] == "shor"
    assert len(starts) == len(rows) and text.plain[starts[-1] :] == "last"
    styled = {str(span.style): "" for span in wrapped.spans}
    for span in wrapped.spans:
        styled[str(span.style)] += wrapped.plain[span.start : span.end]
    assert styled["bold"] == "attempt 1"
    assert styled["underline"] == line[url : url + 50]  # not the newlines or the indents


async def test_the_keys_panel_keeps_its_keys_while_the_detail_changes(tmp_path: Path) -> None:
    async with dashboard(tmp_path, size=(80, 24)) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Deposit", status="approved", sum="5")
        await pw.show("deliveries")
        await until(lambda: len(pw.table().rows) >= 2)
        await pw.press("question_mark")
        await pw.press("down")  # a new row's detail is read while the panel shows
        detail = pw.app.screen.query_one(DetailPane)
        await until(lambda: detail.plain.startswith("Delivery #"))
        assert pw.app.screen.query_one(KeysPanel).plain.startswith("Keys")
