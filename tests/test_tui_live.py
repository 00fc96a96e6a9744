"""Live's whole story at a glance, through the real listener and database: a named place per
postback config summing up every event, the recent-changes view, and the header's failed and
retrying deliveries with a notification when one fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from store import workspace
from store.read.model import ChangeRow
from store.records import PostbackConfig
from tests.helpers import (
    ATTACH_CONFIG,
    BASE_CONFIG,
    Driver,
    dashboard,
    live_row,
    send_conversions,
    toasts,
    until,
)
from tui import format as fmt
from tui.screens.live import Changes, LiveScreen, short_labels
from tui.widgets.header import StatusBar
from tui.widgets.live_table import LiveTable


def marks_of(row: dict[str, Any] | None) -> dict[str, str]:
    """A Live row's mark by postback config name."""
    return {} if row is None else {item["postback"]: item["mark"] for item in row["marks"]}


def title_of(pw: Driver, name: str) -> str:
    """The title of postback config ``name``'s column as drawn: its name, or where the
    column is narrower its short label."""
    screen = pw.app.screen
    assert isinstance(screen, LiveScreen)
    header = f"{pw.screen_lines()[0]} "
    return name if f" {name} " in header else short_labels(screen.live.source.names)[name]


def column_of(pw: Driver, click_id: str, name: str) -> str:
    """What the row of ``click_id`` draws under the column of postback config ``name``."""
    lines = pw.screen_lines()
    header = lines[0]
    line = next(line for line in lines[1:] if click_id[-11:] in line)
    return line[f"{header} ".index(f" {title_of(pw, name)} ") + 1]


async def test_a_deposit_delivered_at_pending_stays_delivered_after_its_approval(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Deposit", status="pending", sum="50", txid="T1")
        await until(lambda: marks_of(live_row(pw, clickid)).get("all events") == "delivered")
        # approved: "all events" fired already (skipped now), "paid deposits" fires
        await pw.postback(clickid=clickid, type="Deposit", status="approved", sum="50", txid="T1")
        marks = {"all events": "delivered", "paid deposits": "delivered"}
        await until(lambda: marks_of(live_row(pw, clickid)) == marks)
        assert column_of(pw, clickid, "all events") == "✓"
        assert column_of(pw, clickid, "paid deposits") == "✓"
        # the row shows when it last changed
        row = live_row(pw, clickid)
        assert row is not None and row["updated_at"] > row["created_at"]
        assert fmt.clock_time(row["updated_at"]) in "\n".join(pw.screen_lines())


async def test_a_config_added_later_keeps_the_first_two_in_place(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as pw:
        old = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=old, type="Lead", status="approved")
        await until(lambda: marks_of(live_row(pw, old)).get("all events") == "delivered")
        before = pw.screen_lines()[0]

        def add(conn: Any) -> int:
            return workspace.save_postback_config(conn, 1, PostbackConfig(name="meta leads"), 2)

        await pw.dash.store.write(add)
        new = await pw.click(ref_id="ext-2")
        await pw.postback(clickid=new, type="Lead", status="approved")
        await until(lambda: marks_of(live_row(pw, new)).get("meta leads") == "delivered")
        await until(lambda: " meta " in f"{pw.screen_lines()[0]} ")
        header = pw.screen_lines()[0]
        # the first two configs keep the first two places; the new one comes after them
        assert before.index(" all ") < before.index(" paid ")
        assert header.index(" all ") < header.index(" paid ") < header.index(" meta ")
        assert [item["postback"] for item in live_row(pw, new)["marks"]] == [  # type: ignore[index]
            "all events",
            "paid deposits",
            "meta leads",
        ]
        # the old conversion has no decision of the new config: a dot, not a shifted mark
        assert marks_of(live_row(pw, old))["meta leads"] == "none"
        assert column_of(pw, old, "all events") == "✓"
        assert column_of(pw, old, "paid deposits") == "⊘"
        assert column_of(pw, old, "meta leads") == "·"
        assert column_of(pw, new, "meta leads") == "✓"


THREE_CONFIGS = (
    BASE_CONFIG
    + """
[[campaigns.postbacks]]
name = "meta purchases"
conditional = true
types = ["Deposit"]
"""
)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
async def test_three_configs_are_titled_whole_and_leave_room_for_the_changed_column(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """No title is cut: a column narrower than its config's name is titled by a short label
    (the name's first word), which the detail tells; at 80 columns "changed" still shows."""
    names = ("all events", "paid deposits", "meta purchases")
    async with dashboard(tmp_path, size=size, config=THREE_CONFIGS) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Deposit", status="pending", sum="50", txid="T1")
        await pw.postback(clickid=clickid, status="approved", txid="T1")
        marks = {"all events": "delivered", "paid deposits": "delivered"}
        await until(lambda: marks_of(live_row(pw, clickid)).items() >= marks.items())
        await until(lambda: marks_of(live_row(pw, clickid))["meta purchases"] == "delivered")
        header = pw.screen_lines()[0]
        assert "…" not in header and " changed " in header
        titles = [title_of(pw, name) for name in names]
        assert titles == ["all", "paid", "meta"]  # (whole names do not fit either size)
        assert [column_of(pw, clickid, name) for name in names] == ["✓", "✓", "✓"]
        row = live_row(pw, clickid)
        assert row is not None
        line = next(line for line in pw.screen_lines()[1:] if clickid[-11:] in line)
        assert line[header.index("changed") :].startswith(fmt.clock_time(row["updated_at"]))
        legend = "columns: all = all events · paid = paid deposits · meta = meta purchases"
        await until(lambda: legend in pw.detail())


def change_rows(pw: Driver) -> list[Any]:
    return [row.data for row in pw.table().rows]


async def test_an_approval_of_an_old_conversion_comes_on_top_of_recent_changes(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        old = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=old, type="Deposit", status="pending", sum="50", txid="T1")
        newer = []
        for n in range(3):
            clickid = await pw.click(ref_id=f"ext-n{n}")
            await pw.postback(clickid=clickid, type="Lead", status="approved")
            newer.append(clickid)
        await until(lambda: live_row(pw, newer[-1]))
        screen = pw.app.screen
        assert isinstance(screen, LiveScreen)
        await pw.press("v")
        live = screen.query_one(LiveTable)
        assert isinstance(live.source, Changes) and live.title == "Recent changes"
        await until(lambda: len(pw.table().rows) == 4)
        # yesterday's pending deposit is approved now: its event comes first
        await pw.postback(clickid=old, type="Deposit", status="approved", sum="50", txid="T1")
        top = await until(
            lambda: change_rows(pw)[0] if change_rows(pw)[0].change == "updated" else None
        )
        assert top.conversion.click_id == old and top.status == "approved"
        _, body = await pw.get(f"/api/trace/{old}")
        history = body["conversions"][0]["history"]
        assert [event["change"] for event in history] == ["created", "updated"]
        drawn = pw.screen_lines()
        line = next(line for line in drawn[1:] if "updated" in line)
        assert fmt.clock_time(top.at) in line and old[-11:] in line and "approved" in line
        # the conversion's marks as they stand now, on both of its rows
        await until(
            lambda: marks_of(dict(change_rows(pw)[0].conversion))["paid deposits"] == "delivered"
        )
        older = next(
            row
            for row in change_rows(pw)
            if row.conversion.click_id == old and row.change == "created"
        )
        await until(
            lambda: (
                marks_of(dict(next(r for r in change_rows(pw) if r.id == older.id).conversion))[
                    "paid deposits"
                ]
                == "delivered"
            )
        )
        # following and "N new": away from the top, a new event is counted, not shown
        await pw.press("down")
        clickid = await pw.click(ref_id="ext-last")
        await pw.postback(clickid=clickid, type="Lead", status="approved")
        await until(lambda: live.new_count == 1)
        assert change_rows(pw)[0].conversion.click_id == old
        await pw.press("f")
        await until(lambda: change_rows(pw)[0].conversion.click_id == clickid)
        # back to new conversions: the old one is where it was, below the newer ones
        await pw.press("v")
        await until(lambda: live_row(pw, clickid) is not None and live.title == "Conversions")
        assert [row.data["click_id"] for row in pw.table().rows][-1] == old


FAILING = BASE_CONFIG + '\n[[sinks]]\nname = "propeller"\nstatus = 500\nbody = "down"\n'


async def test_a_sink_answering_500_is_counted_in_the_header_and_said(tmp_path: Path) -> None:
    async with dashboard(tmp_path, config=FAILING, notifications=True) as pw:
        bar = pw.app.screen.query_one(StatusBar)
        assert "failed" not in bar.render().plain
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Lead", status="approved")
        await until(lambda: "✗ 1 failed" in bar.render().plain)
        header = bar.render().plain
        assert "retrying" not in header  # (the retries ran out)
        await until(lambda: marks_of(live_row(pw, clickid)).get("all events") == "failed")
        _, body = await pw.get(f"/api/trace/{clickid}")
        last = body["conversions"][0]["decisions"][0]["deliveries"][-1]
        said = f"Delivery #{last['id']} to 'all events' failed: HTTP 500"
        await until(lambda: any(said in text for _, text in toasts(pw.app)))
        assert ("error", said) in [(kind, text.split("\n")[-1]) for kind, text in toasts(pw.app)]


async def test_the_header_fits_80_columns_with_failures_and_the_demo_mark(tmp_path: Path) -> None:
    async with dashboard(tmp_path, size=(80, 24), config=FAILING) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Lead", status="approved")
        bar = pw.app.screen.query_one(StatusBar)
        await until(lambda: "✗ 1 failed" in bar.render().plain)
        pw.app.demo_running = True
        await pw.pilot.pause()
        first = bar.render().plain.split("\n")[0]
        assert first.rstrip().endswith("demo") and "✗ 1 failed" in first
        assert len(first) <= 80
        # the legend beside the table's title explains the marks at 80 columns too
        hint = "\n".join(pw.app.screen.query_one(LiveTable).hint.plain.split())
        assert "✓deliv" in hint and "✗fail" in hint and "·none" in hint


async def test_recent_changes_keep_a_window_and_page_older_events_in(tmp_path: Path) -> None:
    async with dashboard(tmp_path, config=ATTACH_CONFIG) as pw:
        await send_conversions(pw, 620)
        await pw.press("v")
        live = pw.app.screen.query_one(LiveTable)
        assert isinstance(live.source, Changes)
        # one row per event (here one per conversion), keyed by the event's id: a page first,
        # and older ones paged in as the view nears them
        await until(lambda: len(pw.table().rows) == LiveTable.PAGE)
        assert pw.table().top_key == 620 and isinstance(pw.table().rows[0].data, ChangeRow)
        await pw.press(*["pagedown"] * 6)  # near the last row held
        await until(lambda: len(pw.table().rows) > LiveTable.PAGE)
        assert pw.table().keys == list(range(620, 620 - len(pw.table().rows), -1))
        # End reads the oldest page of events at once, the cursor on the very first event
        await pw.press("end")
        await until(lambda: pw.table().keys[-1:] == [1] and pw.table().cursor_key == 1)
        keys = pw.table().keys
        assert keys == list(range(keys[0], 0, -1)) and keys[0] < 620
