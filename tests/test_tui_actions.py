"""The dashboard's actions, through its real listener, a real SQLite file and a real receiving
server: replay from Inbound (as it was, or edited in the form), recover from Deliveries, a
conversion entered by hand and a conversion re-evaluated from Live. The forms are filled with
keys, as a person would."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from store import workspace
from store.config import parse
from tests.helpers import Driver, Target, attached, config_for, dashboard, toasts, until
from tui.widgets.forms import FormScreen
from tui.widgets.live_table import LiveTable

FAILS = [(500, "down")] * 3  # the first attempt and both retries of one delivery


def _config(target: Target, url: str = "/pb?c={clickid}&s={status}") -> str:
    return config_for(target.port, url)


def form(pw: Driver) -> FormScreen:
    screen = pw.app.screen
    assert isinstance(screen, FormScreen), f"no form is open: {screen}"
    return screen


async def open_form(pw: Driver, key: str) -> FormScreen:
    await pw.press(key)
    await until(lambda: isinstance(pw.app.screen, FormScreen))
    await pw.pilot.pause()
    return form(pw)


async def submit(pw: Driver) -> None:
    """ctrl+s, then wait until the form has the API's answer (closed, or a note or error)."""
    shown = form(pw)
    await pw.press("ctrl+s")
    await until(lambda: not shown.busy)
    await pw.pilot.pause()


async def closed(pw: Driver) -> None:
    await until(lambda: not isinstance(pw.app.screen, FormScreen))


async def type_in(pw: Driver, text: str) -> None:
    await pw.pilot.press(*text)
    await pw.pilot.pause()


def said(pw: Driver, words: str) -> bool:
    return any(words in text for _, text in toasts(pw.app))


async def inbound_rows(pw: Driver) -> list[dict[str, Any]]:
    _, rows = await pw.get("/api/inbound")
    return list(rows)


async def conversion(pw: Driver, clickid: str, txid: str | None = None) -> dict[str, Any]:
    _, rows = await pw.get("/api/conversions", q=clickid)
    found = [row for row in rows if txid is None or row["txid"] == txid]
    assert len(found) == 1, rows
    return dict(found[0])


async def delivered_once(pw: Driver, target: Target, count: int) -> None:
    """The receiving server has ``count`` requests, and no more come."""
    await until(lambda: len(target.received) == count)
    await asyncio.sleep(0.5)  # longer than the retry schedule: a second sending would show
    assert len(target.received) == count


async def show_top_inbound(pw: Driver, endpoint: str) -> None:
    await pw.show("inbound")
    await until(lambda: pw.table().rows and pw.table().rows[0].data["endpoint"] == endpoint)
    pw.table().move_cursor(0)
    await pw.pilot.pause()


# -- replay ----------------------------------------------------------------------------------


async def test_r_replays_the_request_and_the_new_row_names_the_original(
    tmp_path: Path, target: Target
) -> None:
    async with dashboard(tmp_path, config=_config(target), notifications=True) as pw:
        clickid = await pw.click()
        await pw.postback(clickid=clickid, type="Lead", status="approved", txid="T1")
        await delivered_once(pw, target, 1)
        await show_top_inbound(pw, "postback")
        original = pw.table().cursor_key
        await pw.press("r")

        new = await until(lambda: pw.table().rows[0].data["replay_of"] == original)
        assert new
        row = pw.table().rows[0]
        assert row.texts()["endpoint"].plain == "replay"
        assert row.texts()["reason"].plain == f"replay of #{original}"
        assert (await inbound_rows(pw))[0]["replay_of"] == original
        await until(lambda: said(pw, f"Replayed #{original} as #{row.key}: accepted"))
        assert said(pw, "all events skipped")  # already fired: the API's pipeline decides
        await delivered_once(pw, target, 1)  # never sent twice
        pw.table().move_cursor(0)
        await until(lambda: f"replay of #{original}" in pw.detail())
        # the original lists its replay, in its detail and in its click's story on Trace
        replayed = f"replayed as #{row.key} (accepted)"
        pw.table().move_cursor(1)
        await until(lambda: pw.table().cursor_key == original and replayed in pw.detail())
        await pw.press("t")
        await until(lambda: pw.app.current_mode == "trace" and replayed in pw.detail())
        (line,) = [line for line in pw.detail().splitlines() if replayed in line]
        assert line == f"    {replayed}"


async def test_an_edited_replay_changes_the_conversion_as_edited(
    tmp_path: Path, target: Target
) -> None:
    async with dashboard(tmp_path, config=_config(target), notifications=True) as pw:
        clickid = await pw.click()
        await pw.postback(clickid=clickid, type="Lead", txid="T1", status="approved")
        await delivered_once(pw, target, 1)
        await show_top_inbound(pw, "postback")
        original = pw.table().cursor_key
        shown = await open_form(pw, "e")
        text = shown.values()["request"]
        assert text.splitlines()[:2] == [
            "[query]",
            f"clickid={clickid}&type=Lead&txid=T1&status=approved",
        ]
        # the query line's end: "approved" becomes "declined"
        await pw.press("down", "end", *["backspace"] * len("approved"))
        await type_in(pw, "declined")
        await submit(pw)
        await closed(pw)

        assert (await conversion(pw, clickid))["status"] == "declined"
        (replay, *_) = await inbound_rows(pw)
        assert replay["replay_of"] == original and "status=declined" in replay["query"]
        assert said(pw, f"Replayed #{original} edited as #{replay['id']}: accepted")
        await delivered_once(pw, target, 1)  # "all events" fired once already


# -- recover ---------------------------------------------------------------------------------


async def _failed(pw: Driver, target: Target) -> str:
    """A conversion whose one delivery ends failed (three 500s)."""
    target.answers += FAILS
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Lead")

    async def failed() -> bool:
        _, rows = await pw.get("/api/deliveries", q=clickid)
        return bool(rows) and rows[0]["outcome"] == "failed"

    await until(failed)
    return clickid


async def test_recover_counts_then_queues_each_failed_delivery_once(
    tmp_path: Path, target: Target
) -> None:
    async with dashboard(tmp_path, config=_config(target), notifications=True) as pw:
        failed = [await _failed(pw, target) for _ in range(2)]
        assert len(target.received) == 6
        await pw.show("deliveries")
        shown = await open_form(pw, "R")
        assert shown.values() == {"since": "24h", "traffic_source": "", "postback": ""}
        await submit(pw)
        assert shown.note.startswith("Would queue 2 failed deliveries since ")
        assert shown.note.endswith(" UTC: press ctrl+s again to queue them.")
        await asyncio.sleep(0.3)
        assert len(target.received) == 6  # the count queued nothing

        await submit(pw)
        await closed(pw)
        assert said(pw, "Queued 2 failed deliveries since ")
        await delivered_once(pw, target, 8)
        for clickid in failed:
            _, rows = await pw.get("/api/deliveries", q=clickid)
            assert [row["outcome"] for row in rows] == [
                "delivered",
                "failed",
                "retrying",
                "retrying",
            ]

        again = await open_form(pw, "R")
        await submit(pw)
        assert again.note.startswith("No failed delivery since ")
        await pw.press("ctrl+s")  # the count found none: ctrl+s counts again, queues nothing
        await until(lambda: not again.busy)
        assert isinstance(pw.app.screen, FormScreen)
        await pw.press("escape")
        await closed(pw)
        await delivered_once(pw, target, 8)


async def test_recover_for_a_traffic_source_and_a_name_no_one_has(
    tmp_path: Path, target: Target
) -> None:
    async with dashboard(tmp_path, config=_config(target), notifications=True) as pw:
        await _failed(pw, target)
        await pw.show("deliveries")
        shown = await open_form(pw, "R")
        await pw.press("tab")
        await type_in(pw, "Nobody")
        await submit(pw)
        assert shown.error == (
            "traffic_source 'Nobody' is no traffic source's name; traffic sources: Receiver"
        )
        assert isinstance(pw.app.screen, FormScreen)  # open, the values as typed
        assert shown.values()["traffic_source"] == "Nobody"

        await pw.press(*["backspace"] * len("Nobody"))
        await type_in(pw, "Receiver")
        await submit(pw)
        assert shown.error == ""
        assert shown.note.startswith("Would queue 1 failed delivery of 'Receiver' since ")
        await submit(pw)
        await closed(pw)
        assert said(pw, "Queued 1 failed delivery of 'Receiver' since ")
        await delivered_once(pw, target, 4)


# -- a conversion entered by hand ------------------------------------------------------------


async def _live_row(pw: Driver, clickid: str) -> None:
    await until(lambda: pw.table().rows and pw.table().rows[0].data["click_id"] == clickid)
    pw.table().move_cursor(0)
    await pw.pilot.pause()


async def test_m_enters_a_conversion_that_fires_its_postbacks(
    tmp_path: Path, target: Target
) -> None:
    async with dashboard(tmp_path, config=_config(target), notifications=True) as pw:
        clickid = await pw.click()
        await pw.postback(clickid=clickid, type="Lead", txid="L1")
        await delivered_once(pw, target, 1)
        await _live_row(pw, clickid)
        shown = await open_form(pw, "m")
        assert shown.values()["click_id"] == clickid  # the selected row's
        assert shown.values()["fire"] is True
        await pw.press("tab")
        await type_in(pw, "Deposit")
        await pw.press("tab")
        await type_in(pw, "approved")
        await pw.press("tab")
        await type_in(pw, "50")
        await pw.press("tab", "tab")
        await type_in(pw, "D1")
        await pw.press("enter")
        await closed(pw)

        made = await conversion(pw, clickid, txid="D1")
        assert made["manual"] is True and made["status"] == "approved" and made["payout"] == 50
        assert said(pw, f"Conversion #{made['id']} created by hand (postbacks decided and sent)")
        await delivered_once(pw, target, 2)
        assert target.received[1].query["s"] == "approved"
        await _live_row(pw, clickid)
        await until(lambda: "manual (entered by hand)" in pw.detail())


async def test_m_without_fire_only_records(tmp_path: Path, target: Target) -> None:
    async with dashboard(tmp_path, config=_config(target), notifications=True) as pw:
        clickid = await pw.click()
        await pw.postback(clickid=clickid, type="Lead", txid="L1")
        await delivered_once(pw, target, 1)
        await _live_row(pw, clickid)
        shown = await open_form(pw, "m")
        await pw.press("tab")
        await type_in(pw, "Deposit")
        await pw.press(*["tab"] * 4)
        await type_in(pw, "D2")
        await pw.press("tab", "space")  # "fire its postbacks" off
        assert shown.values()["fire"] is False
        await submit(pw)
        await closed(pw)

        made = await conversion(pw, clickid, txid="D2")
        assert made["manual"] is True
        assert said(pw, "only recorded, nothing sent): all events skipped")
        await delivered_once(pw, target, 1)


async def test_a_bad_value_shows_the_apis_sentence_in_the_form(
    tmp_path: Path, target: Target
) -> None:
    async with dashboard(tmp_path, config=_config(target)) as pw:
        clickid = await pw.click()
        await pw.postback(clickid=clickid, type="Lead")
        await _live_row(pw, clickid)
        shown = await open_form(pw, "m")
        await pw.press("tab", "tab", "tab")
        await type_in(pw, "lots")
        await pw.press("enter")
        await until(lambda: not shown.busy)
        payload = {"click_id": clickid, "payout": "lots"}
        async with pw.session.post(pw.base + "/api/conversions", json=payload) as response:
            assert response.status == 400
            refused = (await response.json())["error"]
        assert shown.error == refused and "'lots'" in refused  # the API's own sentence
        assert isinstance(pw.app.screen, FormScreen)
        assert shown.values()["payout"] == "lots"  # kept as typed

        await pw.press("escape")
        await closed(pw)
        _, rows = await pw.get("/api/conversions", q=clickid)
        assert len(rows) == 1  # nothing entered


async def test_an_unknown_click_id_is_named_in_the_form(tmp_path: Path, target: Target) -> None:
    async with dashboard(tmp_path, config=_config(target)) as pw:
        shown = await open_form(pw, "m")  # no row: the click id is typed
        assert shown.values()["click_id"] == ""
        await type_in(pw, "nope-1")
        await submit(pw)
        assert shown.error.startswith("unknown click id 'nope-1': no click with this id")
        assert isinstance(pw.app.screen, FormScreen)


async def test_pressing_ctrl_s_twice_enters_one_conversion(tmp_path: Path, target: Target) -> None:
    async with dashboard(tmp_path, config=_config(target)) as pw:
        clickid = await pw.click()
        await pw.postback(clickid=clickid, type="Lead", txid="L1")
        await delivered_once(pw, target, 1)
        await _live_row(pw, clickid)
        shown = await open_form(pw, "m")
        await pw.press("tab")
        await type_in(pw, "Lead")
        # two ctrl+s handled before the first answer comes (Pilot would wait in between)
        shown.action_submit()
        shown.action_submit()
        await closed(pw)
        await asyncio.sleep(0.3)
        entries = [row for row in await inbound_rows(pw) if row["endpoint"] == "manual"]
        assert len(entries) == 1  # one entry reached the listener


# -- attached to a database another process serves --------------------------------------------


# -- a conversion re-evaluated from Live ------------------------------------------------------

PAID_DEPOSITS = """
[[campaigns.postbacks]]
name = "paid deposits"
conditional = true
types = ["Deposit"]
statuses = ["approved"]
"""


async def test_r_on_live_dry_runs_the_conversion_then_records_and_f_sends_once(
    tmp_path: Path, target: Target
) -> None:
    config = _config(target) + PAID_DEPOSITS
    async with dashboard(tmp_path, config=config, notifications=True) as pw:
        clickid = await pw.click()
        answer = await pw.postback(clickid=clickid, type="Deposit", status="pending", txid="T1")
        conversion = answer["conversion_id"]
        assert [d["verdict"] for d in answer["decisions"]] == ["fired", "filtered"]
        await delivered_once(pw, target, 1)  # "all events"
        # the rule takes pending deposits now: "paid deposits" would fire
        loaded = parse(config.replace('["approved"]', '["approved", "pending"]'))
        await pw.dash.store.write(lambda conn: workspace.apply_workspace(conn, loaded))
        await _live_row(pw, clickid)
        _, before = await pw.get(f"/api/trace/{clickid}")

        await pw.press("R")
        await until(lambda: f"Re-evaluate (dry run) conversion #{conversion}" in pw.detail())
        assert "1 decision would change" in pw.detail()
        assert f"#{conversion} paid deposits: filtered → fired: " in pw.detail()
        _, after = await pw.get(f"/api/trace/{clickid}")
        assert after == before  # the dry run changed nothing
        await delivered_once(pw, target, 1)

        await pw.press("R")  # records it, without sending
        await until(lambda: said(pw, f"Re-evaluated conversion #{conversion}: recorded 1 changed"))
        _, after = await pw.get(f"/api/trace/{clickid}")
        (recorded,) = after["conversions"]
        assert [event["change"] for event in recorded["history"]] == ["created", "reevaluated"]
        assert len(recorded["decisions"]) == len(before["conversions"][0]["decisions"]) + 1
        await until(lambda: "Why (latest event)" in pw.detail())  # its detail again
        await delivered_once(pw, target, 1)  # recorded, not sent

        await pw.press("R")
        await until(lambda: "change no decision" in pw.detail())
        assert "F also sends 1 decision recorded earlier without sending" in pw.detail()
        await pw.press("F")
        await until(lambda: said(pw, "queued 1 delivery"))
        await delivered_once(pw, target, 2)  # "paid deposits", once

        await pw.press("R")  # sent now: nothing is left to record or to send
        await until(lambda: "change no decision" in pw.detail())
        assert "also sends" not in pw.detail()
        await pw.press("F")
        await until(lambda: said(pw, "The dry run changes no decision: nothing to record"))
        await pw.press("escape")  # closes the dry run
        await until(lambda: "Why (latest event)" in pw.detail())
        await delivered_once(pw, target, 2)


async def test_a_dry_run_on_live_stays_while_new_conversions_come(
    tmp_path: Path, target: Target
) -> None:
    """Following the newest row, a new conversion would move the cursor off the dry run: while
    one is shown they count above the table instead, and Esc follows again."""
    config = _config(target) + PAID_DEPOSITS
    async with dashboard(tmp_path, config=config) as pw:
        clickid = await pw.click()
        answer = await pw.postback(clickid=clickid, type="Deposit", status="pending", txid="T1")
        conversion = answer["conversion_id"]
        await _live_row(pw, clickid)
        live = pw.app.screen.query_one(LiveTable)
        assert live.following
        await pw.press("R")
        await until(lambda: f"Re-evaluate (dry run) conversion #{conversion}" in pw.detail())

        later = await pw.click()
        await pw.postback(clickid=later, type="Lead", txid="L2")
        await until(lambda: "▲ 1 new" in live._status().plain)
        assert pw.table().cursor_key == conversion
        assert f"Re-evaluate (dry run) conversion #{conversion}" in pw.detail()

        await pw.press("escape")  # closes the dry run: following again, the new row on top
        await until(lambda: pw.table().rows[0].data["click_id"] == later)
        await until(lambda: "following" in live._status().plain)
        assert pw.table().cursor_key == pw.table().rows[0].key
        await until(lambda: "Why (latest event)" in pw.detail())


async def test_f_on_live_without_a_dry_run_records_nothing(tmp_path: Path, target: Target) -> None:
    async with dashboard(tmp_path, config=_config(target), notifications=True) as pw:
        clickid = await pw.click()
        await pw.postback(clickid=clickid, type="Lead", status="approved")
        await delivered_once(pw, target, 1)
        await _live_row(pw, clickid)
        await pw.press("F")
        await until(lambda: said(pw, "Nothing to record: R first runs a dry run of the selected"))
        await delivered_once(pw, target, 1)


async def test_attached_the_serving_listener_replays(served: tuple[Path, str]) -> None:
    db, base = served
    async with attached(db, base, size=(80, 24)) as pw:
        clickid = await pw.click(ref_id="ext-1")
        await pw.postback(clickid=clickid, type="Lead", status="2")
        await show_top_inbound(pw, "postback")
        original = pw.table().cursor_key
        await pw.press("r")
        await until(lambda: pw.table().rows[0].data["replay_of"] == original)
