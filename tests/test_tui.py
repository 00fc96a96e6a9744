"""The dashboard driven through Pilot, with its real listener on a loopback port and a real
SQLite file: postbacks go in over HTTP and the tests read what the screens show."""

from __future__ import annotations

import asyncio
import gc
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from store import workspace
from tests.helpers import (
    ATTACH_CONFIG,
    BASE_CONFIG,
    dashboard,
    free_port,
    live_row,
    send_conversions,
    toasts,
    until,
)
from tui.app import PostwatchApp
from tui.context import DashOptions
from tui.screens.campaigns import CampaignsScreen
from tui.sources import Fetch, Snapshot
from tui.widgets.detail import DetailPane
from tui.widgets.header import StatusBar
from tui.widgets.live_table import LiveTable
from tui.widgets.rows import CURSOR_MARK


async def test_a_postback_sent_over_http_appears_in_live_with_its_marks(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Deposit", status="2", sum="50")

        def delivered() -> dict[str, Any] | None:
            row = live_row(pw, clickid)
            return row if row and row["marks"][0]["mark"] == "delivered" else None

        row = await until(delivered)
        assert [mark["mark"] for mark in row["marks"]] == ["delivered", "filtered"]
        lines = pw.screen_lines()
        # one named column per postback config, each row's mark under its name
        header, line = lines[0], next(line for line in lines if clickid[-11:] in line)
        # (at 120 columns "paid deposits" is titled by its first word: no title is cut)
        assert " all events " in header and " paid " in header and "…" not in header
        assert line[header.index(" all events ") + 1] == "✓"
        assert line[header.index(" paid ") + 1] == "⊘"
        assert "pending (2)" in line
        await until(lambda: "FILTERED" in pw.detail())
        assert "status 'pending' is not one of: approved" in pw.detail()
        assert "status '2' is an alias of 'pending'" in pw.detail()  # how it was parsed


async def test_captured_markup_is_shown_literally(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="[b]ext[/]")
        await pw.postback(clickid=clickid, type="[b]D[/]", status="[/]", note="[/]x[b]")
        # sent as a network sends an unfilled macro: the brackets unencoded, as the log keeps them
        raw = URL(f"{pw.base}/postback?clickid=[red]x[/red][/]&type=Lead", encoded=True)
        async with pw.session.get(raw) as response:
            assert response.status == 400
        row = await until(lambda: live_row(pw, clickid))
        assert row["type"] == "[b]D[/]"
        shown = re.compile(r"\[b\]D\[/\]\s+other \(\[/\]\)")
        await until(lambda: shown.search("\n".join(pw.screen_lines())))
        await until(lambda: "external id [b]ext[/]" in pw.detail())
        assert "status '[/]' maps to no known status" in pw.detail()
        assert "external id [b]ext[/]" in pw.drawn_detail()
        await pw.show("inbound")
        drawn = await until(lambda: "\n".join(pw.screen_lines()) if pw.table().rows else "")
        assert "GET /postback?clickid=[red]x[/red][/]&type=Lead" in drawn
        await until(lambda: "looks like an unreplaced macro" in pw.drawn_detail())
        assert "click id '[red]x[/red][/]' in 'clickid'" in pw.drawn_detail()


async def test_toggling_a_rule_from_the_keyboard_filters_the_next_conversion(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        first = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=first, type="Lead", status="2")
        await until(lambda: live_row(pw, first))
        await pw.show("campaigns")
        screen = pw.app.screen
        assert isinstance(screen, CampaignsScreen)
        await until(lambda: screen.selected is not None)
        assert screen.configs[screen.selected][1].name == "all events"
        # "all events" fires for everything: make it conditional on approved conversions.
        await pw.press("c")
        await pw.press("s", "space")

        async def saved() -> bool:
            configs = await pw.dash.store.read(workspace.campaigns)
            rule = configs[0].postbacks[0]
            return rule.conditional and rule.statuses == ["approved"]

        await until(saved)
        # The screen shows what the last change does to the campaign's latest conversions.
        what_if = await until(lambda: screen.what_if if screen.what_if.after == 0 else None)
        assert (what_if.sample, what_if.before, what_if.after) == (1, 1, 0)
        second = await pw.click(ref_id="ext-2")
        answer = await pw.postback(clickid=second, type="Lead", status="2")
        assert answer["decisions"][0]["verdict"] == "filtered"
        await pw.show("live")
        row = await until(lambda: live_row(pw, second))
        assert row["marks"][0]["mark"] == "filtered"
        await until(lambda: "status 'pending' is not one of: approved" in pw.detail())


async def test_trace_finds_a_click_by_each_of_its_three_ids(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="ext-42")
        await pw.postback(clickid=clickid, type="Deposit", status="1", sum="10", txid="TX-42")
        for any_id in (clickid, "ext-42", "TX-42"):
            await pw.press("5")
            await until(lambda: pw.app.current_mode == "trace")
            await pw.press("i", *any_id, "enter")
            await until(lambda: f"click {clickid}" in pw.detail())
            assert "FIRED postback 'paid deposits'" in pw.detail()
            await pw.press("1")
        await pw.press("5", "i", *"nobody", "enter")
        await until(lambda: "Nothing is known about 'nobody'" in pw.detail())


async def test_resend_creates_a_new_attempt(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Lead", status="1")
        await pw.show("deliveries")
        first = await until(
            lambda: pw.table().rows and pw.table().rows[0].data["outcome"] == "delivered"
        )
        assert first
        original = pw.table().cursor_row
        assert original is not None
        await pw.press("r")

        def resent() -> dict[str, Any] | None:
            row = pw.table().rows[0].data
            return row if row["resend_of"] == original.key else None

        row = await until(resent)
        assert row["attempt"] == 2
        await until(lambda: pw.table().rows[0].data["outcome"] == "delivered")
        await pw.press("c")
        assert pw.app.clipboard.startswith("curl -sS ")
        assert "/sink/propeller?visitor_id=ext-1" in pw.app.clipboard


async def test_live_follows_new_rows_until_the_user_moves_away(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        clicks = [await pw.click(ref_id=f"ext-{n}") for n in range(3)]
        for clickid in clicks:
            await pw.postback(clickid=clickid, type="Lead")
        await until(lambda: len(pw.table().rows) == 3)
        await pw.press("down")
        assert pw.table().cursor_key == pw.table().rows[1].key
        later = [await pw.click(ref_id=f"late-{n}") for n in range(2)]
        for clickid in later:
            await pw.postback(clickid=clickid, type="Lead")
        live = pw.app.screen.query_one(LiveTable)
        await until(lambda: live.new_count == 2)
        assert len(pw.table().rows) == 3
        assert "▲ 2 new" in str(live.query_one(".live-status").render())
        await pw.press("f")
        await until(lambda: len(pw.table().rows) == 5)
        assert pw.table().rows[0].data["click_id"] == later[-1]
        assert live.new_count == 0


async def test_new_rows_fetched_as_the_user_moves_away_stay_counted(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        for n in range(3):
            await pw.postback(clickid=await pw.click(ref_id=f"ext-{n}"), type="Lead")
        await until(lambda: len(pw.table().rows) == 3)
        await pw.press("down")
        for n in range(2):
            await pw.postback(clickid=await pw.click(ref_id=f"late-{n}"), type="Lead")
        live = pw.app.screen.query_one(LiveTable)
        await until(lambda: live.new_count == 2)

        counts: list[int] = []  # the "N new" of every status line drawn from now on
        show_status = live._show_status

        def recorded() -> None:
            counts.append(live.new_count)
            show_status()

        fetch = live.source.fetch
        raced: list[bool] = []

        def racing(conn: sqlite3.Connection, snapshot: Snapshot) -> Fetch:
            result = fetch(conn, snapshot)
            if result.newer and not raced:  # the user moves away again meanwhile
                raced.append(True)
                pw.app.call_from_thread(pw.table().move_cursor, 1)
            return result

        live._show_status = recorded  # type: ignore[method-assign]
        live.source.fetch = racing  # type: ignore[method-assign]
        await pw.press("up")  # back on top: the new rows are fetched...
        await until(lambda: raced)
        await pw.pilot.pause(0.3)
        assert len(pw.table().rows) == 3, "...but the user left before they came: not taken"
        assert counts and all(count == 2 for count in counts), counts


async def test_the_cursor_mark_moves_on_screen_with_the_keys(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        for n in range(3):
            await pw.postback(clickid=await pw.click(ref_id=f"ext-{n}"), type="Lead")
        await until(lambda: len(pw.table().rows) == 3)

        def marked() -> list[int]:
            return [y for y, line in enumerate(pw.drawn_lines()) if line.startswith(CURSOR_MARK)]

        await until(lambda: marked() == [1])
        for key, line in (("down", 2), ("down", 3), ("up", 2), ("home", 1)):
            await pw.press(key)
            assert marked() == [line]


async def test_a_change_noticed_during_a_fetch_is_read_after_it_is_shown(tmp_path: Path) -> None:
    config = BASE_CONFIG.replace(
        "[delivery]", '[listener]\nunknown_clicks = "attach:casino-fr"\n\n[delivery]'
    )
    async with dashboard(tmp_path, config=config) as pw:
        live = pw.app.screen.query_one(LiveTable)
        fetch = live.source.fetch
        read: list[int] = []

        def recorded(conn: sqlite3.Connection, snapshot: Snapshot) -> Fetch:
            result = fetch(conn, snapshot)
            if result.newer and not read:
                pw.app.call_from_thread(live.changed)  # noticed while this fetch is under way
            read.extend(row["id"] for row in result.newer or [])
            return result

        live.source.fetch = recorded  # type: ignore[method-assign]
        for n in range(3):
            await pw.postback(clickid=f"c{n}", type="Lead")
        await until(lambda: pw.table().top_key == 3)
        await pw.pilot.pause(0.3)  # the fetches the change and the polls asked for
        assert pw.table().keys == [3, 2, 1]
        assert sorted(read) == [1, 2, 3], "each new row is read once"


async def test_a_flood_of_unsettled_rows_is_fetched_once_a_poll(tmp_path: Path) -> None:
    # Every conversion fires a postback to a port nobody listens on: its row stays unsettled
    # (retrying) while the table follows the flood.
    config = BASE_CONFIG.replace(
        "[delivery]", '[listener]\nunknown_clicks = "attach:casino-fr"\n\n[delivery]'
    ).replace("PORT/sink/propeller?visitor_id={external_id}&", f"{free_port()}/nobody?")
    async with dashboard(tmp_path, config=config) as pw:
        live = pw.app.screen.query_one(LiveTable)
        fetch = live.source.fetch
        fetches = 0

        def counted(conn: sqlite3.Connection, snapshot: Snapshot) -> Fetch:
            nonlocal fetches
            fetches += 1
            return fetch(conn, snapshot)

        live.source.fetch = counted  # type: ignore[method-assign]
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < 0.6:
            sent += 1
            await pw.postback(clickid=f"c{sent}", type="Lead")
        await until(lambda: pw.table().top_key == sent)
        polls = (time.monotonic() - started) / pw.app.options.poll_interval
        assert fetches <= polls + 2


async def test_the_table_keeps_a_window_and_pages_older_rows_in(tmp_path: Path) -> None:
    async with dashboard(tmp_path, config=ATTACH_CONFIG) as pw:
        await send_conversions(pw, 620)
        assert len(pw.table().rows) == LiveTable.WINDOW
        keys = pw.table().keys
        assert keys == sorted(keys, reverse=True) and keys[0] == 620
        await until(lambda: gc.get_freeze_count() > 0)  # the screens are built, the heap frozen
        frozen = gc.get_freeze_count()
        while len(pw.table().rows) < 600:  # down the window: one page of older rows
            await pw.press("pagedown")
        await until(lambda: len(pw.table().rows) == 600)
        # the rows paged in are frozen too: a full collection over them stays off the keys
        assert gc.get_freeze_count() > frozen
        await pw.press("home")
        await until(lambda: pw.table().cursor == 0 and pw.table().top_key == 620)


async def test_the_last_row_key_reaches_the_oldest_row_beyond_the_window(tmp_path: Path) -> None:
    """G (end) reads the oldest page at once, rather than the next 100 rows; g goes back to
    the newest, and "row N of M" counts from either end."""
    async with dashboard(tmp_path, config=ATTACH_CONFIG) as pw:
        await send_conversions(pw, 620)
        live = pw.app.screen.query_one(LiveTable)
        await until(lambda: "row 1 of 620" in live.position() or None)
        await pw.press("G")
        await until(lambda: pw.table().cursor_key == 1)
        assert pw.table().keys == list(range(500, 0, -1))
        await until(lambda: live.position() == "row 620 of 620")
        assert "▲ 120 newer (f: show)" in live._status().plain
        await pw.press("up", "up")
        assert live.position() == "row 618 of 620"
        await pw.press("g")
        await until(lambda: pw.table().top_key == 620 and pw.table().cursor == 0)
        await until(lambda: live.position() == "row 1 of 620")
        await pw.press("down")
        assert live.position() == "row 2 of 620"


async def test_an_empty_database_shows_how_to_start(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        text = await until(lambda: "No conversions yet" in pw.detail() and pw.detail())
        assert f"curl -s '{pw.base}/click/casino-fr?ref_id=ext-1'" in text
        assert f"curl -sG '{pw.base}/postback' -d clickid=CLICKID \\\n" in text
        assert "-d type=Deposit -d status=approved -d sum=50" in text
        assert "Or press d to start demo traffic" in text


async def test_the_empty_state_curl_lines_fit_an_80_column_terminal(tmp_path: Path) -> None:
    """Copied from the terminal, a command must not carry a wrap inside it: at 80x24 each
    curl line is drawn whole on one screen line."""
    async with dashboard(tmp_path, size=(80, 24)) as pw:
        await until(lambda: "No conversions yet" in pw.detail())
        await pw.pilot.pause()
        lines = [line.strip() for line in pw.drawn_detail().splitlines()]
        assert f"curl -s '{pw.base}/click/casino-fr?ref_id=ext-1'" in lines
        assert f"curl -sG '{pw.base}/postback' -d clickid=CLICKID \\" in lines
        assert "-d type=Deposit -d status=approved -d sum=50" in lines


async def test_demo_traffic_starts_and_stops_from_a_key(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        await pw.press("d")
        assert pw.app.demo_running
        await until(lambda: pw.app.stats.clicks > 0)
        await pw.press("d")
        await until(lambda: not pw.app.demo_running)


async def test_keys_are_remapped_from_the_config(tmp_path: Path) -> None:
    # A dotted TOML key is a nested table; both spellings name a binding id.
    config = BASE_CONFIG + '\n[keys]\napp.trace = "x"\n"live.copy" = "Y"\n'
    async with dashboard(tmp_path, config=config) as pw:
        assert pw.app.key_for("app.trace") == "x"
        assert pw.app.key_for("live.copy") == "Y"
        await pw.press("x")
        await until(lambda: pw.app.current_mode == "trace")


async def test_copy_as_curl_repeats_the_request_byte_for_byte(tmp_path: Path) -> None:
    # An unreplaced macro, a bracketed one and a double-encoded value: curl globs the first
    # two unless told not to, and the third must not be decoded on the way.
    query = "clickid={clickid}&sub1=[sub1]&sub2=%257B&sub3=a%20b"
    async with dashboard(tmp_path) as pw:
        raw = URL(f"{pw.base}/postback?{query}", encoded=True)
        async with pw.session.get(raw) as response:
            assert response.status == 400
        await pw.show("inbound")
        await until(lambda: pw.table().rows)
        await pw.press("c")
        command = pw.app.clipboard
        assert command.startswith("curl -sS -g ")
        curl = await asyncio.create_subprocess_exec(
            "bash", "-c", command + " --max-time 10", stdout=asyncio.subprocess.PIPE
        )
        answer, _ = await curl.communicate()
        assert curl.returncode == 0, answer
        assert b"unreplaced macro" in answer
        rows = await until(lambda: len(pw.table().rows) == 2 and pw.table().rows)
        assert [row.data["query"] for row in rows] == [query, query]


async def test_failing_background_work_is_shown_and_the_dashboard_keeps_running(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path, notifications=True) as pw:
        first = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=first, type="Lead", status="2")
        await until(lambda: live_row(pw, first))
        # Another connection takes a table away: every read that needs it fails, from the
        # table's fetch to the detail pane's.
        other = sqlite3.connect(pw.dash.store.path)
        # decisions is a view over decision_rows (schema step 8): drop it, with its triggers
        taken = other.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'decisions' ORDER BY type = 'trigger'"
        ).fetchall()
        other.execute("DROP VIEW decisions")

        def failure() -> list[tuple[str, str]]:
            return [t for t in toasts(pw.app) if "no such table: decisions" in t[1]]

        shown = await until(failure)
        assert all(severity == "error" for severity, _ in shown)
        assert all(text.startswith("Could not ") for _, text in shown), shown
        await pw.press("down", "up")  # the detail is read again, and fails again
        assert pw.app.is_running and pw.app.return_code is None
        # Put the table back: the screen takes new conversions as before.
        for (sql,) in taken:
            other.execute(sql)
        other.close()
        second = await pw.click(ref_id="ext-2")
        await pw.postback(clickid=second, type="Lead", status="2")
        await until(lambda: live_row(pw, second))
        await until(lambda: "status 'pending' is not one of: approved" in pw.detail())
        assert pw.app.is_running


async def test_the_database_watch_starts_again_after_a_failed_poll(tmp_path: Path) -> None:
    async with dashboard(tmp_path, notifications=True) as pw:
        other = sqlite3.connect(pw.dash.store.path)
        other.execute("ALTER TABLE clicks RENAME TO clicks_away")  # the header counts clicks

        def failure() -> list[str]:
            return [text for _, text in toasts(pw.app) if "no such table: clicks" in text]

        (text,) = await until(failure)
        assert text.startswith("Could not watch the database for changes:")
        assert "trying again" in text
        other.execute("ALTER TABLE clicks_away RENAME TO clicks")
        other.close()
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Lead", status="2")
        await until(lambda: live_row(pw, clickid))
        await until(lambda: pw.app.stats.clicks == 1)
        assert pw.app.is_running


def header(app: PostwatchApp) -> list[str]:
    """The header's two lines as drawn."""
    return app.screen.query_one(StatusBar).render().plain.split("\n")


async def test_on_all_addresses_the_header_says_so_and_a_new_token_is_shown_once(
    tmp_path: Path,
) -> None:
    options = DashOptions(db=tmp_path / "p.db", host="0.0.0.0", port=0, poll_interval=0.05)
    app = PostwatchApp(options)
    async with (
        app.run_test(size=(120, 34), notifications=True) as pilot,
        aiohttp.ClientSession() as session,
    ):
        await app.wait_ready()
        assert app.dash is not None and app.dash.runner is not None
        port = app.dash.runner.addresses[0][1]
        token = (await app.dash.store.read(workspace.load_settings)).token
        assert token
        await until(lambda: any(token in text for _, text in toasts(app)))
        first, second = header(app)
        assert f"● 0.0.0.0:{port} (all addresses)" in first
        assert second.endswith("API token: `postwatch token` shows it")
        assert token not in first + second
        # The curl lines' address reaches it, and the token shown is the one it wants.
        base = app.dash.base_url
        assert base == f"http://127.0.0.1:{port}"
        async with session.get(f"{base}/api/conversions") as response:
            assert response.status == 401
        bearer = {"Authorization": f"Bearer {token}"}
        async with session.get(f"{base}/api/conversions", headers=bearer) as response:
            assert response.status == 200
        await pilot.pause()
    again = PostwatchApp(options)
    async with again.run_test(size=(80, 24), notifications=True) as pilot:
        await again.wait_ready()
        await until(lambda: "needs the API token" in again.screen.query_one(DetailPane).plain)
        await pilot.pause()
        assert not any(token in text for _, text in toasts(again)), "shown only when made up"
        assert header(again)[1].endswith("token: postwatch token")
        assert "`postwatch token` shows it" in again.screen.query_one(DetailPane).plain


async def test_an_unknown_binding_id_in_the_stored_keys_is_named_at_start(tmp_path: Path) -> None:
    config = BASE_CONFIG + '\n[keys]\n"live.folow" = "F"\n"live.copy" = "Y"\n'
    async with dashboard(tmp_path, config=config, notifications=True) as pw:

        def warned() -> list[tuple[str, str]]:
            return [t for t in toasts(pw.app) if "live.folow" in t[1]]

        ((severity, text),) = await until(warned)
        assert severity == "warning"
        assert "there is no binding with the id 'live.folow'" in text
        assert "did you mean 'live.follow'" in text
        assert pw.app.key_for("live.copy") == "Y"  # the known ones still apply


async def test_the_header_says_when_another_process_sends_the_postbacks(tmp_path: Path) -> None:
    from tests.helpers import outbox, start_listener, stop_listener

    serving = await start_listener(tmp_path / "postwatch.db")  # `postwatch serve`, say
    running = True
    try:
        await until(lambda: outbox(serving).delivering)
        async with dashboard(tmp_path, notifications=True) as pw:
            ((severity, text),) = await until(
                lambda: [t for t in toasts(pw.app) if "another postwatch process" in t[1]]
            )
            assert severity == "warning" and "leaves the outbox to it" in text
            assert "sent by another process" in header(pw.app)[0]
            await stop_listener(serving)  # the other one stops: this one takes over
            running = False
            await until(lambda: "sent by another" not in header(pw.app)[0], timeout=10)
            assert pw.app.dash is not None and pw.app.dash.outbox_elsewhere == ""
    finally:
        if running:
            await stop_listener(serving)


async def test_the_header_counts_one_click_and_one_conversion_in_the_singular(
    tmp_path: Path,
) -> None:
    from tui.widgets.header import StatusBar

    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Lead", status="approved")
        bar = pw.app.screen.query_one(StatusBar)
        header = await until(lambda: "1 conversion " in bar.render().plain and bar.render().plain)
        assert " 1 click · " in header and "clicks" not in header
        await pw.postback(clickid=clickid, type="Deposit", status="approved", txid="t-2")
        await until(lambda: "2 conversions" in bar.render().plain)


async def test_an_empty_filtered_table_names_its_filter(tmp_path: Path) -> None:
    """A filter that leaves nothing says so, not that nothing came yet."""
    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Lead", status="approved")
        await pw.show("deliveries")
        await until(lambda: len(pw.table().rows) > 0)
        await pw.press("o")  # pending: the sink answers at once, none stays pending
        await until(lambda: pw.table().rows == [] or None)
        said = "No deliveries match outcome=pending (o: the next filter)"
        await until(lambda: any(said in line for line in pw.screen_lines()))
        for _ in range(4):  # pending, retrying, delivered, failed: back round to 'all'
            await pw.press("o")
        await until(lambda: len(pw.table().rows) > 0)
        assert pw.table().placeholder == "No deliveries yet."
