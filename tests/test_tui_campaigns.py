"""The Campaigns screen's actions through Pilot, with the dashboard's real listener, a real
SQLite file and a real receiving server: the config's target, editing its URL template, a
test postback, the before/after preview, and re-evaluating the campaign."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from store import workspace
from tests.helpers import BASE_CONFIG, Driver, Target, attached, dashboard, until
from tui.screens.campaigns import CampaignsScreen

SECRET = "EAAB-very-secret-token-123"

PLATFORM_CONFIG = (
    BASE_CONFIG
    + f"""
[[campaigns.postbacks]]
name = "meta"
kind = "facebook"
pixel_id = "1234567890"
access_token = "{SECRET}"
"""
)


def receiver_config(port: int, url: str = "") -> str:
    """BASE_CONFIG with its traffic source's postback URL ``url`` (none when empty), the
    receiving server on ``port`` standing for RECEIVER."""
    url = url.replace("RECEIVER", f"127.0.0.1:{port}")
    return BASE_CONFIG.replace(
        'postback_url = "http://127.0.0.1:PORT/sink/propeller?visitor_id={external_id}'
        '&payout={payout}"',
        f'postback_url = "{url}"',
    )


async def campaigns(pw: Driver, postback: str = "all events") -> CampaignsScreen:
    """Show the Campaigns screen with the postback config ``postback`` selected."""
    await pw.show("campaigns")
    screen = pw.app.screen
    assert isinstance(screen, CampaignsScreen)
    await until(lambda: screen.selected is not None)
    for _ in range(len(screen.configs)):
        if screen.configs[screen.selected or 0][1].name == postback:
            return screen
        await pw.press("down")
    raise AssertionError(f"no postback config '{postback}'")


def shown(screen: CampaignsScreen) -> str:
    return screen.panels.shown.plain


def flipped(screen: CampaignsScreen) -> list[int]:
    """The ids of the conversions the preview lists as flipped."""
    return [flip.conversion_id for flip in screen.what_if.flips] if screen.what_if else []


async def count(pw: Driver, sql: str) -> int:
    return int(await pw.dash.store.read(lambda conn: conn.execute(sql).fetchone()[0]))


async def test_the_target_shows_with_its_secret_masked(tmp_path: Path) -> None:
    async with dashboard(tmp_path, config=PLATFORM_CONFIG) as pw:
        screen = await campaigns(pw)
        await pw.press("o")
        text = await until(lambda: shown(screen) if "Target" in shown(screen) else "")
        assert "traffic source 'Propeller'" in text
        assert "visitor_id={external_id}&payout={payout}" in text
        screen = await campaigns(pw, "meta")
        await until(lambda: "facebook platform settings" in shown(screen))
        text = shown(screen)
        assert "pixel_id" in text and "1234567890" in text
        assert "access_token" in text and "********" in text
        assert SECRET not in text and SECRET[:6] not in text


async def test_no_postback_url_is_fixed_from_the_screen_and_the_next_delivery_goes_there(
    tmp_path: Path, target: Target
) -> None:
    async with dashboard(tmp_path, config=receiver_config(target.port)) as pw:
        screen = await campaigns(pw)
        await pw.press("o")
        await until(lambda: "No postback URL" in shown(screen))
        assert "Press l to write it" in shown(screen)
        title = str(screen.editor.query_one("#rule-title").render())
        assert "No postback URL: l writes one" in title
        await pw.press("l")
        line = screen.bar.line
        await until(lambda: line.has_focus)
        line.value = f"http://127.0.0.1:{target.port}/new?visitor={{external_id}}"
        await pw.press("enter")

        async def saved() -> bool:
            sources = await pw.dash.store.read(workspace.traffic_sources)
            return sources[0].postback_url.endswith("/new?visitor={external_id}")

        await until(saved)
        await until(lambda: "/new?visitor={external_id}" in shown(screen))
        clickid = await pw.click(ref_id="ext-7")
        answer = await pw.postback(clickid=clickid, type="Lead", status="1")
        assert answer["decisions"][0]["verdict"] == "fired"
        await until(lambda: target.received)
        assert target.received[0].path == "/new"
        assert target.received[0].query["visitor"] == "ext-7"


async def test_an_unknown_macro_is_flagged_before_saving(tmp_path: Path, target: Target) -> None:
    old = "http://RECEIVER/old?v={external_id}"
    async with dashboard(tmp_path, config=receiver_config(target.port, old)) as pw:
        await pw.click(ref_id="ext-1", sub1="fr")
        screen = await campaigns(pw)
        await pw.press("l")
        line = screen.bar.line
        await until(lambda: line.has_focus)
        assert line.value == f"http://127.0.0.1:{target.port}/old?v={{external_id}}"
        await until(lambda: "{sub1}" in screen.bar.help_shown.plain)  # a parameter of the clicks
        assert "{payout}" in screen.bar.help_shown.plain  # a macro of outbound.MACROS
        line.value = f"http://127.0.0.1:{target.port}/new?v={{external_id}}&s={{sub1}}&x={{nope}}"
        await until(lambda: "unknown: {nope}" in screen.bar.help_shown.plain)
        assert "{sub1}" not in screen.bar.help_shown.plain.split("·")[0]  # known, not flagged
        await pw.press("enter")

        async def stored() -> str:
            return str((await pw.dash.store.read(workspace.traffic_sources))[0].postback_url)

        assert (await stored()).endswith("/old?v={external_id}")  # flagged, not saved
        assert line.has_focus
        await pw.press("enter")  # the second Enter saves it as it is

        async def saved() -> bool:
            return (await stored()).endswith("&x={nope}")

        await until(saved)


async def test_a_test_postback_reaches_the_target_and_its_answer_shows(
    tmp_path: Path, target: Target
) -> None:
    url = "http://RECEIVER/tp?v={external_id}&p={payout}&s={sub1}"
    async with dashboard(tmp_path, config=receiver_config(target.port, url)) as pw:
        target.answers = [(202, "accepted: test-ok")]
        screen = await campaigns(pw)
        await pw.press("T")
        line = screen.bar.line
        await until(lambda: line.has_focus)
        line.value = "payout=7.5 sub1=de"
        await pw.press("enter")
        text = await until(lambda: shown(screen) if "HTTP 202" in shown(screen) else "")
        assert "TEST" in text and "postback all events" in text
        assert "accepted: test-ok" in text
        assert f"127.0.0.1:{target.port}/tp?v=test-external-id&p=7.5&s=de" in text
        assert len(target.received) == 1
        assert target.received[0].query["p"] == "7.5"
        assert await count(pw, "SELECT count(*) FROM conversions") == 0
        assert await count(pw, "SELECT count(*) FROM test_postbacks") == 1


async def test_the_preview_lists_the_flipped_conversions_and_stays_current(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        first = await pw.click(ref_id="ext-1")
        pending = (await pw.postback(clickid=first, type="Lead", status="2"))["conversion_id"]
        second = await pw.click(ref_id="ext-2")
        approved = (await pw.postback(clickid=second, type="Lead", status="1"))["conversion_id"]
        screen = await campaigns(pw)
        await until(lambda: screen.what_if is not None and screen.what_if.sample == 2)
        # "all events" fires for everything: make it conditional on approved conversions
        await pw.press("c", "s", "space", "escape")
        await until(lambda: flipped(screen))
        assert flipped(screen) == [pending]
        text = shown(screen)
        assert f"#{pending} {first} Lead/pending would now be filtered" in text
        assert "status 'pending' is not one of: approved" in text
        assert f"#{approved} " not in text
        # a conversion arriving afterwards joins the list
        third = await pw.click(ref_id="ext-3")
        newest = (await pw.postback(clickid=third, type="Lead", status="3"))["conversion_id"]
        await until(lambda: len(flipped(screen)) == 2)
        assert flipped(screen) == [newest, pending]
        await until(
            lambda: f"#{newest} {third} Lead/declined would now be filtered" in shown(screen)
        )


def _flips(answer: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [
        (change["conversion_id"], change["old"]["verdict"], change["new"]["verdict"])
        for change in answer["changes"]
    ]


def _decisions(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute("SELECT * FROM decisions ORDER BY id")]


async def test_reevaluate_dry_run_changes_nothing_and_matches_the_real_run(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        ids = []
        for n, status in enumerate(("2", "1", "3")):
            clickid = await pw.click(ref_id=f"ext-{n}")
            answer = await pw.postback(clickid=clickid, type="Lead", status=status)
            ids.append(answer["conversion_id"])
        screen = await campaigns(pw)
        await pw.press("c", "s", "space", "escape")  # "all events" now only for approved

        async def saved() -> bool:
            rule = (await pw.dash.store.read(workspace.campaigns))[0].postbacks[0]
            return rule.statuses == ["approved"]

        await until(saved)
        before = await pw.dash.store.read(_decisions)
        await pw.press("R")
        line = screen.bar.line
        await until(lambda: line.has_focus)
        assert line.value == "24h"  # the default range, said in the prompt
        await pw.press("enter")
        await until(lambda: screen.panels.reevaluation is not None)
        assert screen.panels.reevaluation is not None
        dry = screen.panels.reevaluation.answer
        assert dry["dry_run"] and dry["conversions"] == 3
        flipped = _flips(dry)
        assert [one[0] for one in flipped] == [ids[0], ids[2]]  # the pending and the declined
        assert all((old, new) == ("fired", "filtered") for _, old, new in flipped)
        assert "2 decisions would change" in shown(screen)
        assert "fired → filtered: status 'pending' is not one of: approved" in shown(screen)
        assert await pw.dash.store.read(_decisions) == before  # the dry run changed nothing
        await pw.press("R")  # records what the dry run listed
        await until(lambda: screen.panels.reevaluation and not screen.panels.reevaluation.dry)
        real = screen.panels.reevaluation.answer
        assert _flips(real) == flipped
        after = await pw.dash.store.read(_decisions)
        assert after[: len(before)] == before  # history is never rewritten
        assert len(after) == len(before) + 2
        assert "recorded 2 decisions as a re-evaluation" in shown(screen)


async def test_an_attached_dashboard_sends_its_test_postback_through_the_serving_listener(
    served: tuple[Path, str],
) -> None:
    db, base = served
    async with attached(db, base, size=(80, 24)) as pw:
        screen = await campaigns(pw)
        await pw.press("T")
        await until(lambda: screen.bar.line.has_focus)
        await pw.press("enter")  # the sample values
        text = await until(lambda: shown(screen) if "HTTP 200" in shown(screen) else "")
        assert "/sink/propeller?visitor_id=test-external-id&payout=1" in text
        status, records = await pw.get("/api/sink/propeller")
        assert status == 200 and len(records) == 1  # the serving listener's sink got it
        assert await count(pw, "SELECT count(*) FROM conversions") == 0


async def test_reevaluate_records_without_sending_then_fire_sends_what_it_recorded(
    tmp_path: Path,
) -> None:
    async with dashboard(tmp_path) as pw:
        clickid = await pw.click(ref_id="ext-9")
        answer = await pw.postback(clickid=clickid, type="Lead", status="1")
        conversion = answer["conversion_id"]
        assert [d["verdict"] for d in answer["decisions"]] == ["fired", "filtered"]
        screen = await campaigns(pw, "paid deposits")
        await pw.press("c")  # "paid deposits" no longer conditional: it fires for the Lead too
        await until(lambda: flipped(screen) == [conversion])
        deliveries = "SELECT count(*) FROM deliveries"
        await until(lambda: _delivered(pw, 1))
        await pw.press("R")
        await until(lambda: screen.bar.line.has_focus)
        await pw.press("enter")
        await until(lambda: "1 decision would change" in shown(screen))
        assert f"#{conversion} paid deposits: filtered → fired" in shown(screen)
        await pw.press("R")  # records it, without sending
        await until(lambda: "recorded 1 decision as a re-evaluation" in shown(screen))
        assert await count(pw, deliveries) == 1  # recorded, not sent
        await pw.press("R")
        await until(lambda: screen.bar.line.has_focus)
        await pw.press("enter")
        await until(lambda: "change no decision" in shown(screen))
        assert "F also sends 1 decision recorded earlier without sending" in shown(screen)
        await pw.press("F")
        await until(lambda: "queued 1 delivery" in shown(screen))
        assert await count(pw, deliveries) == 2
        await until(lambda: _delivered(pw, 2))


async def _delivered(pw: Driver, expected: int) -> bool:
    """Whether the sink has received ``expected`` postbacks."""
    status, records = await pw.get("/api/sink/propeller")
    return status == 200 and len(records) == expected
