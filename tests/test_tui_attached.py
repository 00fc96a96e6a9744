"""``postwatch dash``: the dashboard attached to a database that a separate ``postwatch serve``
process writes. Rows written by that process appear, and rule changes made in the dashboard
decide that process's next conversion."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.widgets._toast import Toast

from store import workspace
from store.config import parse
from store.db import Store
from tests.helpers import BASE_CONFIG, attached, free_port, live_row, until
from tui.app import PostwatchApp
from tui.context import DashOptions
from tui.screens.campaigns import CampaignsScreen


async def test_attached_dashboard_sees_rows_and_its_rule_changes_reach_the_listener(
    served: tuple[Path, str],
) -> None:
    db, base = served
    async with attached(db, base) as pw:
        app = pw.app
        assert pw.base == base
        clickid = await pw.click(ref_id="ext-1")
        sent = time.monotonic()
        await pw.postback(clickid=clickid, type="Lead", status="2")
        row = await until(lambda: live_row(pw, clickid))
        assert time.monotonic() - sent < 5
        assert row["marks"][1]["mark"] == "filtered"
        await until(
            lambda: (
                (live_row(pw, clickid) or {"marks": [{}]})["marks"][0].get("mark") == "delivered"
            )
        )

        # A resend from the dashboard is sent by the serving process's outbox.
        await pw.show("deliveries")
        original = await until(lambda: pw.table().cursor_row)
        await pw.press("r")

        def resent() -> dict[str, Any] | None:
            rows = pw.table().rows
            row = rows[0].data if rows else None
            ok = row and row["resend_of"] == original.key and row["outcome"] == "delivered"
            return row if ok else None

        assert (await until(resent, timeout=10))["attempt"] == 2

        # Turn "all events" off in the dashboard: the serving process skips it next time.
        await pw.show("campaigns")
        screen = app.screen
        assert isinstance(screen, CampaignsScreen)
        await until(lambda: screen.selected is not None)
        await pw.press("e")
        await until(lambda: not screen.configs[screen.selected][1].enabled)

        async def saved() -> bool:
            from store import workspace

            assert app.dash is not None
            campaigns = await app.dash.store.read(workspace.campaigns)
            return not campaigns[0].postbacks[0].enabled

        await until(saved)
        second = await pw.click(ref_id="ext-2")
        answer = await pw.postback(clickid=second, type="Lead", status="1")
        assert answer["decisions"][0] == {
            "postback": "all events",
            "verdict": "skipped",
            "reasons": ["postback 'all events' is disabled"],
        }
        await pw.show("live")
        row = await until(lambda: live_row(pw, second))
        assert row["marks"][0]["mark"] == "skipped"


async def test_attaching_to_a_missing_database_says_what_to_do(tmp_path: Path) -> None:
    app = PostwatchApp(DashOptions(db=tmp_path / "nothing.db", attached=True))
    async with app.run_test() as pilot:
        await pilot.pause()
    assert app.return_code == 1
    assert not (tmp_path / "nothing.db").exists()


async def test_demo_traffic_with_no_listener_says_it_reached_nothing(tmp_path: Path) -> None:
    """Attached to a database whose listener is not running, `d` says why the demo reached
    nothing instead of sending into the void."""
    db = tmp_path / "pw.db"
    async with Store(db) as store:
        loaded = parse(BASE_CONFIG.replace("PORT", "9"))
        await store.write(lambda conn: workspace.apply_workspace(conn, loaded))
    nobody = f"http://127.0.0.1:{free_port()}"
    app = PostwatchApp(DashOptions(db=db, attached=True, listener_url=nobody))
    async with app.run_test(size=(120, 34), notifications=True) as pilot:
        await until(lambda: app.current_mode == "live")
        await pilot.press("d")
        said = await until(
            lambda: [
                str(toast.render())
                for toast in app.screen.query(Toast)
                if "reached nothing" in str(toast.render())
            ]
        )
        assert f"nothing is listening at {nobody} (Connection refused)" in said[0]
        await until(lambda: not app.demo_running)
