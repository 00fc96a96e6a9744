"""Re-evaluate: conversions through the current rules, through the real listener, database
and a receiving server. A dry run changes nothing and lists exactly what the real run that
follows records; a config fires at most once per conversion."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from listener.reevaluate import UNSENT
from listener.story import markdown, story
from store.read import queries
from tests.helpers import Listener, Target, run, until
from tui.format import conversion_detail

TABLES = ("conversions", "conversion_events", "decisions", "deliveries", "inbound")


def rules_config(port: int, statuses: str = '"approved"', all_events: str = "") -> str:
    """A campaign with two configs sent to the target; ``paid deposits`` fires for the
    ``statuses`` given, ``all events`` takes the extra lines ``all_events``."""
    return f"""
conversion_types = ["Lead", "Deposit"]
[delivery]
timeout = 1
retry_schedule = [0.2]
[[offer_sources]]
name = "AffNet"
[[traffic_sources]]
name = "Receiver"
postback_url = "http://127.0.0.1:{port}/pb?c={{clickid}}&t={{type}}&s={{status}}"
[[campaigns]]
key = "casino-fr"
traffic_source = "Receiver"
offer_source = "AffNet"
[[campaigns.postbacks]]
name = "all events"
{all_events}
[[campaigns.postbacks]]
name = "paid deposits"
conditional = true
types = ["Deposit"]
statuses = [{statuses}]
"""


def _tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}
    finally:
        conn.close()


async def _reevaluate(pw: Listener, **body: Any) -> dict[str, Any]:
    status, answer = await pw.post("/api/reevaluate", json=body)
    assert status == 200, answer
    return dict(answer)


async def _deposit(pw: Listener, status: str = "pending") -> tuple[str, int]:
    clickid = await pw.click()
    _, body = await pw.postback(clickid=clickid, type="Deposit", status=status, sum="10")
    await pw.delivered(clickid)
    return clickid, int(body["conversion_id"])


def _recorded(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The decisions of the trace's re-evaluation events, as the changes list them."""
    found = []
    for conversion in trace["conversions"]:
        reevaluated = {e["event_id"] for e in conversion["history"] if e["change"] == "reevaluated"}
        found += [
            {
                "conversion_id": conversion["id"],
                "postback": decision["postback"],
                "new": {"verdict": decision["verdict"], "reasons": decision["reasons"]},
            }
            for decision in conversion["decisions"]
            if decision["event_id"] in reevaluated
        ]
    return found


def _new_parts(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {key: change[key] for key in ("conversion_id", "postback", "new")} for change in changes
    ]


async def test_dry_run_changes_nothing_and_matches_the_real_run(
    pw: Listener, target: Target, tmp_path: Path
) -> None:
    await pw.configure(rules_config(target.port))
    pending = [await _deposit(pw) for _ in range(2)]
    approved = await _deposit(pw, "approved")
    assert len(target.received) == 4  # all events x3, paid deposits for the approved one
    await pw.configure(rules_config(target.port, statuses='"approved", "pending"'))

    before = _tables(tmp_path / "postwatch.db")
    dry = await _reevaluate(pw, campaign="casino-fr", dry_run=True, fire=True)
    assert _tables(tmp_path / "postwatch.db") == before
    assert dry["conversions"] == 3 and dry["count"] == 2
    assert [c["conversion_id"] for c in dry["changes"]] == [cid for _, cid in pending]
    (change, _) = dry["changes"]
    assert change["postback"] == "paid deposits"
    assert change["old"] == {
        "verdict": "filtered",
        "reasons": ["status 'pending' is not one of: approved"],
    }
    assert change["new"]["verdict"] == "fired"
    assert "status 'pending' is one of: approved, pending" in change["new"]["reasons"]
    assert dry["events"] == [] and dry["deliveries"] == []

    real = await _reevaluate(pw, campaign="casino-fr", fire=True)
    assert real["changes"] == dry["changes"]
    assert len(real["events"]) == 2 and len(real["deliveries"]) == 2
    recorded = [r for clickid, _ in pending for r in _recorded(await pw.trace(clickid))]
    assert recorded == _new_parts(dry["changes"])
    assert _recorded(await pw.trace(approved[0])) == []
    await until(lambda: len(target.received) == 6)
    for clickid, _ in pending:
        await pw.delivered(clickid)
    sent = [r.url.query for r in target.received[4:]]
    assert sorted(q["c"] for q in sent) == sorted(clickid for clickid, _ in pending)

    # Again: nothing changes any more, nothing is sent twice.
    again = await _reevaluate(pw, campaign="casino-fr", fire=True)
    assert again["count"] == 0 and again["events"] == []
    await asyncio.sleep(0.3)
    assert len(target.received) == 6


async def test_a_fired_decision_can_flip_to_filtered_and_is_never_sent_twice(
    pw: Listener, target: Target
) -> None:
    await pw.configure(rules_config(target.port))
    clickid, conversion_id = await _deposit(pw, "approved")
    assert len(target.received) == 2
    await pw.configure(rules_config(target.port, statuses='"declined"'))
    real = await _reevaluate(pw, ids=[conversion_id], fire=True)
    assert [(c["postback"], c["old"]["verdict"], c["new"]["verdict"]) for c in real["changes"]] == [
        ("paid deposits", "fired", "filtered")
    ]
    assert real["deliveries"] == []

    # Back to approved, even with refire_on_update: it was delivered, so it is not sent again.
    await pw.configure(
        rules_config(target.port).replace("conditional", "refire_on_update = true\nconditional")
    )
    back = await _reevaluate(pw, ids=[conversion_id], fire=True)
    assert back["count"] == 0 and back["deliveries"] == []
    await asyncio.sleep(0.3)
    assert len(target.received) == 2
    history = (await pw.trace(clickid))["conversions"][0]["history"]
    assert [event["change"] for event in history] == ["created", "reevaluated"]


async def test_without_fire_newly_fired_ones_are_recorded_unsent_then_sent_with_fire(
    pw: Listener, target: Target
) -> None:
    await pw.configure(rules_config(target.port))
    clickid, conversion_id = await _deposit(pw)
    await pw.configure(rules_config(target.port, statuses='"pending"'))
    quiet = await _reevaluate(pw, ids=[conversion_id])
    assert [c["new"]["verdict"] for c in quiet["changes"]] == ["fired"]
    assert quiet["deliveries"] == []
    decision = (await pw.trace(clickid))["conversions"][0]["decisions"][-1]
    assert decision["verdict"] == "skipped" and decision["reasons"][-1] == UNSENT
    assert (await _reevaluate(pw, ids=[conversion_id], dry_run=True))["count"] == 0

    dry = await _reevaluate(pw, ids=[conversion_id], dry_run=True, fire=True)
    assert [(c["old"]["verdict"], c["new"]["verdict"]) for c in dry["changes"]] == [
        ("skipped", "fired")
    ]
    loud = await _reevaluate(pw, ids=[conversion_id], fire=True)
    assert loud["changes"] == dry["changes"] and len(loud["deliveries"]) == 1
    await until(lambda: len(target.received) == 2)


async def test_reevaluations_are_marked_in_every_form_of_the_trace(
    pw: Listener, target: Target
) -> None:
    await pw.configure(rules_config(target.port))
    clickid, conversion_id = await _deposit(pw)
    await pw.configure(rules_config(target.port, statuses='"pending"'))
    await _reevaluate(pw, ids=[conversion_id], fire=True)
    await until(lambda: len(target.received) == 2)
    await pw.delivered(clickid)

    found = await pw.store.read(lambda conn: queries.trace(conn, clickid))
    lines = story(found)
    (mark,) = [line for line in lines if "re-evaluation of conversion" in line]
    assert mark.startswith("20") and "as it stood: type Deposit, status pending" in mark
    after = lines[lines.index(mark) + 1 :]
    assert any("FIRED postback 'paid deposits'" in line for line in after)
    assert story(await pw.trace(clickid)) == lines  # the JSON tells the same story

    ticket = markdown(found, clickid)
    assert "UTC, re-evaluation of conversion" in ticket
    status, text = await pw.get(f"/api/trace/{clickid}", format="markdown")
    assert status == 200 and "re-evaluation of conversion" in text

    (event,) = [
        e
        for e in (await pw.trace(clickid))["conversions"][0]["history"]
        if e["change"] == "reevaluated"
    ]
    assert event["at"] and event["inbound_id"] == 0

    # the dashboard's detail names what made the event, not a request #0
    detail = await pw.store.read(lambda conn: queries.conversion_detail(conn, conversion_id))
    assert detail is not None
    shown = conversion_detail(detail).plain
    assert "(re-evaluation)" in shown and "request #0" not in shown


async def test_a_selection_must_choose_something(pw: Listener) -> None:
    status, body = await pw.post("/api/reevaluate", json={"dry_run": True})
    assert status == 400 and "give campaign, since, until or ids" in body["error"]
    status, body = await pw.post("/api/reevaluate", json={"campaign": "nope", "dry_run": True})
    assert status == 404 and "unknown campaign 'nope'" in body["error"]
    status, body = await pw.post("/api/reevaluate", json={"ids": ["1"]})
    assert status == 400 and "ids must be a list" in body["error"]


async def test_the_cli_lists_and_records_the_same(
    pw: Listener, target: Target, tmp_path: Path
) -> None:
    await pw.configure(rules_config(target.port))
    _, conversion_id = await _deposit(pw)
    await pw.configure(rules_config(target.port, statuses='"pending"'))
    db = str(tmp_path / "postwatch.db")
    before = _tables(tmp_path / "postwatch.db")
    args = ("reevaluate", "--campaign", "casino-fr", "--since", "1h", "--db", db)
    code, output = await asyncio.to_thread(run, *args, "--dry-run", "--fire")
    assert code == 0, output
    assert _tables(tmp_path / "postwatch.db") == before
    assert "1 conversion re-evaluated: would change 1 decision" in output
    assert f"conversion #{conversion_id}, postback 'paid deposits': filtered -> fired" in output
    assert "before: status 'pending' is not one of: approved" in output

    code, real = await asyncio.to_thread(run, *args, "--fire")
    assert code == 0, real
    assert real.replace("changed", "would change").splitlines()[:-1] == output.splitlines()
    assert "queued 1 delivery" in real
    await until(lambda: len(target.received) == 2)  # the listener's outbox sent it
    code, output = await asyncio.to_thread(run, "reevaluate", "--id", "999", "--db", db)
    assert code == 0 and "0 conversions re-evaluated: changed 0 decisions" in output
    code, output = await asyncio.to_thread(run, "reevaluate", "--db", db)
    assert code != 0 and "give campaign, since, until or ids" in output
