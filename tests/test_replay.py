"""Replay of a stored inbound request through the real listener, database and a real
receiving server: the new row is linked to the original, and a delivery is never sent twice
unless the rules say so."""

from __future__ import annotations

import asyncio
from typing import Any

from listener.actions import parse_edited
from listener.story import markdown, story
from store import reads
from tests.helpers import (
    Listener,
    Target,
    config_for,
    postwatch,
    start_listener,
    stop_listener,
    until,
)

RECEIVER = "/pb?v={external_id}&p={payout}&s={status}"


async def _inbound(pw: Listener, inbound_id: int) -> dict[str, Any]:
    status, rows = await pw.get("/api/inbound", limit=100)
    assert status == 200
    (row,) = [row for row in rows if row["id"] == inbound_id]
    return dict(row)


async def _postback_id(pw: Listener, clickid: str) -> int:
    _, rows = await pw.get("/api/inbound", limit=100)
    return max(
        row["id"] for row in rows if row["click_id"] == clickid and row["path"] == "/postback"
    )


async def _delivered_postback(pw: Listener, ref: str, **params: str) -> tuple[str, int]:
    """A click and its postback, delivered: the click id and the postback's inbound id."""
    clickid = await pw.click(ref_id=ref)
    await pw.postback(clickid=clickid, **params)
    await pw.delivered(clickid)
    return clickid, await _postback_id(pw, clickid)


async def test_an_edited_replay_goes_through_the_pipeline_and_is_linked(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    clickid, original = await _delivered_postback(
        pw, "visitor-1", type="Lead", status="approved", sum="3", txid="T1"
    )

    status, body = await pw.post(
        f"/api/inbound/{original}/replay",
        json={"query": f"clickid={clickid}&type=Lead&status=approved&sum=50&txid=T2"},
    )
    assert status == 200, body
    assert body["replay_of"] == original
    assert body["inbound"]["replay_of"] == original and body["inbound"]["outcome"] == "accepted"
    assert body["answer"]["status"] == 200 and body["answer"]["body"]["change"] == "created"
    assert (await _inbound(pw, body["inbound"]["id"]))["replay_of"] == original
    assert (await _inbound(pw, original))["replay_of"] is None
    await pw.delivered(clickid)
    assert [request.query["p"] for request in target.received] == ["3", "50"]

    trace = await pw.trace(clickid)
    replayed = [row for row in trace["inbound"] if row["id"] == body["inbound"]["id"]]
    assert replayed[0]["replay_of"] == original
    found = reads.trace_from_json(trace)
    assert any(f"(replay of #{original})" in line for line in story(found))
    assert f"replay of #{original}" in markdown(found, clickid)


async def test_the_original_lists_its_replays_in_the_api_the_trace_and_the_ticket(
    pw: Listener, target: Target
) -> None:
    """GET /api/inbound/{id} has the ids of its replays; ``postwatch trace`` and the Markdown
    ticket say "replayed as #M (outcome)" under the original, also for a replay edited to
    name a click no one has (rejected, and in no trace of this click)."""
    await pw.configure(config_for(target.port, RECEIVER))
    clickid, original = await _delivered_postback(
        pw, "visitor-9", type="Lead", status="approved", sum="1", txid="A"
    )
    status, body = await pw.get(f"/api/inbound/{original}")
    assert status == 200 and body["replays"] == [] and body["id"] == original
    assert {**body, "replays": None} == {**await _inbound(pw, original), "replays": None}
    replays = []
    for edit in ({}, {"query": "clickid=nobody&type=Lead"}):
        status, answer = await pw.post(f"/api/inbound/{original}/replay", json=edit)
        assert status == 200, answer
        replays.append(answer["inbound"])
    accepted, rejected = replays
    assert (accepted["outcome"], rejected["outcome"]) == ("accepted", "rejected")
    _, body = await pw.get(f"/api/inbound/{original}")
    assert body["replays"] == [accepted["id"], rejected["id"]]
    _, body = await pw.get(f"/api/inbound/{accepted['id']}")
    assert body["replays"] == [] and body["replay_of"] == original
    status, body = await pw.get("/api/inbound/999999")
    assert status == 404 and "999999" in body["error"]
    status, body = await pw.get("/api/inbound/x")
    assert status == 400 and "'x'" in body["error"]

    code, text, err = await postwatch("trace", clickid, "--db", str(pw.store.path))
    assert code == 0, err
    lines = text.splitlines()
    head = next(n for n, line in enumerate(lines) if f" #{original} GET /postback" in line)
    assert lines[head + 1 : head + 3] == [
        f"    replayed as #{accepted['id']} (accepted)",
        f"    replayed as #{rejected['id']} (rejected)",
    ]
    code, text, err = await postwatch("trace", clickid, "--markdown", "--db", str(pw.store.path))
    assert code == 0, err
    assert f"- replayed as #{accepted['id']} (accepted)\n" in text
    assert f"- replayed as #{rejected['id']} (rejected)\n" in text
    # the trace's JSON has them too, and reads back into the same story
    trace = await pw.trace(clickid)
    assert [row["id"] for row in trace["replays"]] == [accepted["id"], rejected["id"]]
    assert f"    replayed as #{rejected['id']} (rejected)" in story(reads.trace_from_json(trace))


async def test_a_replay_of_a_fired_conversion_is_not_delivered_again(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    clickid, original = await _delivered_postback(
        pw, "visitor-2", type="Deposit", status="approved", sum="9", txid="T9"
    )
    assert len(target.received) == 2  # both configs fired: all events, paid deposits

    status, body = await pw.post(f"/api/inbound/{original}/replay")
    assert status == 200, body
    assert body["answer"]["body"]["change"] == "updated"
    decisions = body["answer"]["body"]["decisions"]
    assert [d["verdict"] for d in decisions] == ["skipped", "skipped"]
    assert all("already fired" in d["reasons"][0] for d in decisions)
    await pw.delivered(clickid)
    await asyncio.sleep(0.3)  # room for a wrong second delivery to arrive
    assert len(target.received) == 2
    trace = await pw.trace(clickid)
    attempts = [a for c in trace["conversions"] for d in c["decisions"] for a in d["deliveries"]]
    assert len(attempts) == 2


async def test_a_replay_follows_the_offer_sources_ignored_duplicates(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    await pw.configure('[[offer_sources]]\nname = "AffNet"\nduplicates = "ignore"\n')
    clickid, original = await _delivered_postback(pw, "visitor-3", type="Lead", status="approved")

    status, body = await pw.post(f"/api/inbound/{original}/replay")
    assert status == 200, body
    assert "ignores duplicates" in body["answer"]["body"]["ignored"]
    assert "ignores duplicates" in body["inbound"]["reason"]
    await asyncio.sleep(0.3)
    assert len(target.received) == 1
    assert len((await pw.trace(clickid))["conversions"]) == 1


async def test_a_replayed_click_makes_a_new_click(pw: Listener, target: Target) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    clickid = await pw.click(ref_id="visitor-4", sub1="fr")
    status, rows = await pw.get("/api/inbound")
    (click_row,) = [row for row in rows if row["click_id"] == clickid]
    status, body = await pw.post(
        f"/api/inbound/{click_row['id']}/replay", json={"query": "ref_id=visitor-5&sub1=de"}
    )
    assert status == 200, body
    new_click = body["answer"]["body"]["clickid"]
    assert new_click != clickid
    trace = await pw.trace(new_click)
    assert trace["click"]["external_id"] == "visitor-5"
    assert trace["click"]["params"] == {"sub1": "de"}
    assert trace["inbound"][0]["replay_of"] == click_row["id"]


async def test_replay_errors_name_the_value(pw: Listener) -> None:
    status, body = await pw.post("/api/inbound/999/replay")
    assert status == 404 and "999" in body["error"]
    status, body = await pw.post("/api/inbound/x/replay")
    assert status == 400 and "'x'" in body["error"]
    clickid = await pw.click(ref_id="v")
    status, rows = await pw.get("/api/inbound")
    status, body = await pw.post(f"/api/inbound/{rows[0]['id']}/replay", json={"query": 5})
    assert status == 400 and "query must be a string" in body["error"]
    assert clickid


async def test_the_replay_command_goes_through_the_running_listener(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    clickid, original = await _delivered_postback(
        pw, "visitor-6", type="Lead", status="approved", sum="1", txid="A"
    )
    code, text, err = await postwatch(
        "replay",
        str(original),
        "--query",
        f"clickid={clickid}&type=Lead&status=approved&sum=7&txid=B",
        "--url",
        pw.base,
        "--db",
        str(pw.store.path),
        env={"EDITOR": "false"},
    )
    assert code == 0, err
    assert f"replay of #{original}" in text and "accepted" in text
    await until(lambda: len(target.received) == 2)
    assert target.received[1].query["p"] == "7"


async def test_a_replay_through_a_second_listener_is_delivered_once(
    pw: Listener, target: Target
) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    clickid, original = await _delivered_postback(
        pw, "visitor-7", type="Lead", status="approved", sum="1", txid="A"
    )
    second = await start_listener(pw.store.path)  # pw holds the outbox lease
    try:
        status, body = await second.post(
            f"/api/inbound/{original}/replay",
            json={"query": f"clickid={clickid}&type=Lead&status=approved&sum=4&txid=B"},
        )
        assert status == 200, body
        await until(lambda: len(target.received) == 2)
        await pw.delivered(clickid)
        await asyncio.sleep(0.5)  # room for a wrong second send by either listener
        assert [request.query["p"] for request in target.received] == ["1", "4"]
    finally:
        await stop_listener(second)


async def test_the_replay_command_edits_in_the_editor(pw: Listener, target: Target) -> None:
    await pw.configure(config_for(target.port, RECEIVER))
    clickid, original = await _delivered_postback(
        pw, "visitor-8", type="Lead", status="approved", sum="1", txid="A"
    )
    editor = "sed -i -e s/sum=1/sum=8/ -e s/txid=A/txid=E/"
    code, out, err = await postwatch(
        "replay",
        str(original),
        "--edit",
        "--url",
        pw.base,
        "--db",
        str(pw.store.path),
        env={"EDITOR": editor, "VISUAL": editor},
    )
    assert code == 0, err
    assert f"replay of #{original}" in out
    await until(lambda: len(target.received) == 2)
    assert target.received[1].query["p"] == "8"
    (conversion,) = [c for c in (await pw.trace(clickid))["conversions"] if c["txid"] == "E"]
    assert conversion["payout"] == 8


def test_the_edited_text_gives_the_query_and_the_body() -> None:
    text = '# help\n[query]\nclickid=a&sum=2\n[body]\n{"type": "Lead"}\nsecond line\n'
    assert parse_edited(text) == ("clickid=a&sum=2", '{"type": "Lead"}\nsecond line')
    assert parse_edited("[query]\n\n[body]\n") == ("", "")
