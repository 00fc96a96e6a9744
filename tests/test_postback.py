"""Postbacks through the real listener: dialects, statuses, duplicates, rejections."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from store import workspace
from store.db import connect
from tests.helpers import Listener

# One campaign and its sources; tests add the postback configs they need.
CAMPAIGN = """
[[traffic_sources]]
name = "Propeller"
postback_url = "http://127.0.0.1:PORT/sink/propeller?visitor_id={external_id}"
[[offer_sources]]
name = "AffNet"
[[campaigns]]
key = "casino-fr"
traffic_source = "Propeller"
offer_source = "AffNet"
"""


def inbound_rows(pw: Listener) -> list[sqlite3.Row]:
    conn = sqlite3.connect(pw.store.path)
    conn.row_factory = sqlite3.Row
    return conn.execute("SELECT * FROM inbound ORDER BY id").fetchall()


@pytest.mark.parametrize(
    "dialect",
    [
        {"clickid": "{c}", "sum": "50", "type": "Deposit", "status": "approved", "txid": "T1"},
        {"cid": "{c}", "payout": "50", "et": "Deposit", "status": "approved", "txid": "T1"},
        {
            "cnv_id": "{c}",
            "payout": "50",
            "goal": "Deposit",
            "cnv_status": "approved",
            "transaction_id": "T1",
        },
        {"subid": "{c}", "revenue": "50", "event": "Deposit", "status": "approved", "tid": "T1"},
        {
            "click_id": "{c}",
            "amount": "50",
            "type": "Deposit",
            "conv_status": "approved",
            "txid": "T1",
            "cur": "eur",
        },
    ],
    ids=["redtrack", "voluum", "binom", "keitaro", "other-aliases"],
)
async def test_every_parameter_dialect_is_read(pw: Listener, dialect: dict[str, str]) -> None:
    clickid = await pw.click(ref_id="ext-1")
    params = {name: value.replace("{c}", clickid) for name, value in dialect.items()}
    status, body = await pw.postback(**params)
    assert status == 200, body
    conversion = (await pw.trace(clickid))["conversions"][0]
    assert (conversion["type"], conversion["status"], conversion["payout"], conversion["txid"]) == (
        "Deposit",
        "approved",
        50.0,
        "T1",
    )
    assert conversion["currency"] == ("EUR" if "cur" in dialect else "USD")
    assert [d["verdict"] for d in body["decisions"]] == ["fired", "fired"]
    parsed = (await pw.trace(clickid))["inbound"][-1]["parsed"]
    click_param = next(name for name, value in dialect.items() if value == "{c}")
    assert parsed["aliases"]["click id"] == click_param


async def test_post_form_and_json_bodies_merge_over_the_query(pw: Listener) -> None:
    clickid = await pw.click()
    status, _ = await pw.post(
        f"/postback?clickid={clickid}&type=Lead", data={"type": "Deposit", "status": "1"}
    )
    assert status == 200
    status, _ = await pw.post(
        "/postback", json={"clickid": clickid, "type": "Deposit", "txid": "J1", "sum": 12.5}
    )
    assert status == 200
    conversions = (await pw.trace(clickid))["conversions"]
    assert [(c["type"], c["status"], c["payout"]) for c in conversions] == [
        ("Deposit", "approved", None),
        ("Deposit", "pending", 12.5),
    ]


async def test_encoded_values_are_decoded_once(pw: Listener) -> None:
    clickid = await pw.click()
    txid = "100%41 & a=b+c"  # a sender's literal text: decoding it twice would change it
    status, _ = await pw.postback(clickid=clickid, type="Lead", txid=txid)
    assert status == 200
    story = await pw.trace(clickid)
    assert story["conversions"][0]["txid"] == txid
    # the inbound log keeps the query exactly as it was sent, still encoded
    assert inbound_rows(pw)[-1]["query"].endswith("&txid=100%2541+%26+a%3Db%2Bc")


@pytest.mark.parametrize(
    ("raw", "status", "warned"),
    [
        ("1", "approved", False),
        ("HOLD", "pending", False),
        ("Declined", "declined", False),
        ("7", "other", True),
    ],
)
async def test_status_aliases_map_case_insensitively(
    pw: Listener, raw: str, status: str, warned: bool
) -> None:
    clickid = await pw.click()
    code, body = await pw.postback(clickid=clickid, type="Lead", status=raw)
    assert code == 200
    conversion = (await pw.trace(clickid))["conversions"][0]
    assert (conversion["status"], conversion["raw_status"]) == (status, raw)
    assert any(f"status '{raw}'" in w for w in body["warnings"]) is warned


async def test_missing_status_gets_the_default_status(pw: Listener) -> None:
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Lead")
    trace = await pw.trace(clickid)
    assert trace["conversions"][0]["status"] == "pending"
    assert (
        "default status 'pending' of offer source 'AffNet'"
        in trace["inbound"][-1]["parsed"]["status"]
    )


async def test_unknown_type_is_accepted_with_a_warning(pw: Listener) -> None:
    clickid = await pw.click()
    code, body = await pw.postback(clickid=clickid, type="deposit", status="1")
    assert code == 200
    assert any("'deposit'" in w and "did you mean 'Deposit'" in w for w in body["warnings"])
    paid = body["decisions"][1]
    assert paid["verdict"] == "filtered"
    assert paid["reasons"] == ["type 'deposit' is not one of: Deposit (types are case-sensitive)"]


async def test_no_type_is_filtered_by_a_config_that_chose_types(pw: Listener) -> None:
    clickid = await pw.click()
    _, body = await pw.postback(clickid=clickid, status="1")
    assert body["decisions"][1]["reasons"] == ["no conversion type was sent"]


async def test_pending_then_approved_fires_the_conditional_postback_once(pw: Listener) -> None:
    clickid = await pw.click(ref_id="ext-7")
    _, first = await pw.postback(clickid=clickid, type="Deposit", status="2", sum="50", txid="A")
    _, second = await pw.postback(clickid=clickid, status="1", txid="A")
    _, third = await pw.postback(clickid=clickid, status="1", sum="60", txid="A")
    verdicts = [[d["verdict"] for d in body["decisions"]] for body in (first, second, third)]
    assert verdicts == [["fired", "filtered"], ["skipped", "fired"], ["skipped", "skipped"]]
    assert first["decisions"][1]["reasons"] == ["status 'pending' is not one of: approved"]
    assert third["decisions"][1]["reasons"][0].startswith("already fired at ")
    trace = await pw.trace(clickid)
    (conversion,) = trace["conversions"]
    assert [(e["change"], e["status"]) for e in conversion["history"]] == [
        ("created", "pending"),
        ("updated", "approved"),
        ("updated", "approved"),
    ]
    assert conversion["payout"] == 60
    await pw.delivered(clickid)
    records = (await pw.get("/api/sink/propeller"))[1]
    assert len(records) == 2  # "all events" once, "paid deposits" once


async def test_refire_on_update_fires_again(pw: Listener) -> None:
    await pw.configure(
        CAMPAIGN
        + """
[[campaigns.postbacks]]
name = "all events"
refire_on_update = true
"""
    )
    clickid = await pw.click(ref_id="x")
    await pw.postback(clickid=clickid, type="Lead", txid="R")
    _, body = await pw.postback(clickid=clickid, type="Lead", status="approved", txid="R")
    assert body["decisions"][0]["verdict"] == "fired"
    assert "refire_on_update is on" in body["decisions"][0]["reasons"][-1]


DUPLICATES = """
[[offer_sources]]
name = "AffNet"
duplicates = "{mode}"
"""


@pytest.mark.parametrize(
    ("mode", "conversions", "statuses"),
    [("update", 1, ["approved"]), ("new", 2, ["pending", "approved"]), ("ignore", 1, ["pending"])],
)
async def test_duplicate_modes(
    pw: Listener, mode: str, conversions: int, statuses: list[str]
) -> None:
    await pw.configure(DUPLICATES.replace("{mode}", mode))
    clickid = await pw.click(ref_id="d")
    await pw.postback(clickid=clickid, type="Lead", status="pending")
    code, body = await pw.postback(clickid=clickid, type="Lead", status="approved")
    assert code == 200
    trace = await pw.trace(clickid)
    assert [c["status"] for c in trace["conversions"]] == statuses
    assert len(trace["conversions"]) == conversions
    if mode == "ignore":
        assert "ignores duplicates" in body["ignored"]
        assert trace["inbound"][-1]["reason"] == body["ignored"]
        assert len(trace["conversions"][0]["history"]) == 1


async def test_an_update_without_a_txid_keeps_the_conversions_txid(pw: Listener) -> None:
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Deposit", txid="D1", status="pending")
    await pw.postback(clickid=clickid, type="Deposit", status="approved")
    (conversion,) = (await pw.trace(clickid))["conversions"]
    assert (conversion["txid"], conversion["status"]) == ("D1", "approved")


async def test_a_txid_makes_a_separate_conversion_of_the_same_type(pw: Listener) -> None:
    clickid = await pw.click()
    await pw.postback(clickid=clickid, type="Deposit", txid="D1", sum="10")
    await pw.postback(clickid=clickid, type="Deposit", txid="D2", sum="20")
    trace = await pw.trace(clickid)
    assert [(c["txid"], c["payout"]) for c in trace["conversions"]] == [("D1", 10), ("D2", 20)]


async def test_min_payout(pw: Listener) -> None:
    await pw.configure(
        CAMPAIGN
        + """
[[campaigns.postbacks]]
name = "paid deposits"
conditional = true
types = []
statuses = []
min_payout = 30
"""
    )
    clickid = await pw.click(ref_id="m")
    results = []
    for payout in ("29.99", "30", None):
        params: dict[str, Any] = {"clickid": clickid, "type": f"T{payout}"}
        if payout:
            params["sum"] = payout
        results.append((await pw.postback(**params))[1]["decisions"][1])
    assert [r["verdict"] for r in results] == ["filtered", "fired", "filtered"]
    assert results[0]["reasons"] == ["payout 29.99 is below the minimum of 30"]
    assert results[2]["reasons"] == ["no payout was sent (the minimum is 30)"]


async def test_unknown_clicks_attach_to_a_campaign(pw: Listener) -> None:
    await pw.configure(BASE_ATTACH)
    code, body = await pw.postback(clickid="net-123", type="Lead")
    assert code == 200
    trace = await pw.trace("net-123")
    assert trace["click"]["campaign"] == "casino-fr"
    assert body["decisions"][0]["verdict"] == "skipped"
    assert "no external id" in body["decisions"][0]["reasons"][0]
    assert "'ref_id'" in body["decisions"][0]["reasons"][0]


async def test_an_attached_click_is_made_once_and_later_postbacks_update_it(
    pw: Listener,
) -> None:
    await pw.configure(BASE_ATTACH)
    _, first = await pw.postback(clickid="net-7", type="Deposit", status="pending", txid="D1")
    _, second = await pw.postback(clickid="net-7", type="Deposit", status="approved", txid="D1")
    assert (first["change"], second["change"]) == ("created", "updated")
    assert second["conversion_id"] == first["conversion_id"]
    conn = sqlite3.connect(pw.store.path)
    assert conn.execute("SELECT count(*) FROM clicks WHERE id = 'net-7'").fetchone() == (1,)
    known = await pw.click()  # a click recorded by the listener keeps its own campaign
    _, body = await pw.postback(clickid=known, type="Lead")
    assert body["change"] == "created"
    assert conn.execute("SELECT count(*) FROM clicks").fetchone() == (2,)


async def test_a_refused_postback_does_not_attach_its_click(pw: Listener) -> None:
    await pw.configure(BASE_ATTACH)
    code, body = await pw.postback(clickid="net-9", type="Deposit", sum="abc")
    assert code == 400 and "payout 'abc' is not a number" in body["error"]
    conn = sqlite3.connect(pw.store.path)
    assert conn.execute("SELECT count(*) FROM clicks WHERE id = 'net-9'").fetchone() == (0,)
    trace = await pw.trace("net-9")  # the refused request is still found by its click id
    assert trace["click"] is None and [r["outcome"] for r in trace["inbound"]] == ["rejected"]
    code, body = await pw.postback(clickid="net-9", type="Deposit", sum="10")
    assert (code, body["change"]) == (200, "created")


BASE_ATTACH = (
    """
[listener]
unknown_clicks = "attach:casino-fr"
"""
    + CAMPAIGN
)


@pytest.mark.parametrize(
    ("params", "code", "error"),
    [
        ({"type": "Lead"}, 400, "no click id: looked for clickid, cid, click_id, subid, cnv_id"),
        (
            {"clickid": "{clickid}"},
            400,
            "click id '{clickid}' in 'clickid' looks like an unreplaced macro",
        ),
        ({"cid": "${SUBID}"}, 400, "click id '${SUBID}' in 'cid' looks like an unreplaced macro"),
        ({"subid": "#s2#"}, 400, "click id '#s2#' in 'subid' looks like an unreplaced macro"),
        (
            {"clickid": "[clickid]"},
            400,
            "click id '[clickid]' in 'clickid' looks like an unreplaced macro",
        ),
        (
            {"clickid": "REPLACE"},
            400,
            "click id 'REPLACE' in 'clickid' looks like an unreplaced macro",
        ),
        ({"clickid": ""}, 400, "click id '(empty)' in 'clickid' looks like an unreplaced macro"),
        ({"clickid": "nope"}, 404, "unknown click id 'nope'"),
        ({"clickid": "@known", "sum": "abc"}, 400, "payout 'abc' is not a number"),
        ({"clickid": "@known", "sum": "inf"}, 400, "payout 'inf' is not a number"),
        ({"clickid": "@known", "sum": "NaN"}, 400, "payout 'NaN' is not a number"),
    ],
)
async def test_rejected_postbacks_are_answered_and_stored(
    pw: Listener, params: dict[str, str], code: int, error: str
) -> None:
    if params.get("clickid") == "@known":
        params["clickid"] = await pw.click()
    status, body = await pw.postback(**params)
    assert status == code
    assert body["error"].startswith(error)
    row = inbound_rows(pw)[-1]
    assert (row["outcome"], row["reason"], row["http_status"]) == ("rejected", body["error"], code)
    assert json.loads(row["headers"])  # the raw request is kept


async def test_a_body_over_the_limit_is_refused_with_413_and_stored(pw: Listener) -> None:
    clickid = await pw.click()
    status, body = await pw.post(f"/postback?clickid={clickid}", data={"pad": "x" * (70 * 1024)})
    assert status == 413
    assert "over the limit of 65536 bytes" in body["error"]
    row = inbound_rows(pw)[-1]
    assert row["outcome"] == "rejected" and row["http_status"] == 413
    assert len(row["body"]) == 65536


async def test_a_body_that_is_not_json_is_refused(pw: Listener) -> None:
    status, body = await pw.post(
        "/postback", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert "not valid JSON" in body["error"]
    assert inbound_rows(pw)[-1]["body"] == "{not json"


async def test_click_keeps_params_and_redirects_to_the_offer(pw: Listener) -> None:
    await pw.configure(
        BASE_ATTACH.replace(
            'offer_source = "AffNet"\n',
            'offer_source = "AffNet"\noffer_url = "https://o.example/?c={clickid}"\n',
            1,
        ).replace("[[offer_sources]]", "[[offer_sources]]", 1)
    )
    async with pw.session.get(
        pw.base + "/click/casino-fr",
        params={"ref_id": "ext-9", "sub1": "fr", "gclid": "G-1", "fbclid": "F.1"},
        allow_redirects=False,
    ) as response:
        assert response.status == 302
        location = response.headers["Location"]
    clickid = location.rsplit("=", 1)[1]
    trace = await pw.trace("ext-9")
    assert trace["click"]["id"] == clickid
    assert trace["click"]["params"] == {"sub1": "fr", "gclid": "G-1", "fbclid": "F.1"}


async def test_unknown_campaign_is_refused(pw: Listener) -> None:
    status, body = await pw.get("/click/nope")
    assert status == 404
    assert body["error"] == "unknown campaign 'nope': known campaign keys are casino-fr"
    assert inbound_rows(pw)[-1]["outcome"] == "rejected"


async def test_a_rule_changed_by_another_process_applies_to_the_next_conversion(
    pw: Listener,
) -> None:
    clickid = await pw.click(ref_id="r")
    _, before = await pw.postback(clickid=clickid, type="Lead", txid="1")
    assert before["decisions"][0]["verdict"] == "fired"
    other = connect(pw.store.path)  # as `postwatch dash` would, on its own connection
    (config,) = [c for c in workspace.campaigns(other)[0].postbacks if c.name == "all events"]
    config.conditional, config.statuses = True, ["approved"]
    with other:
        other.execute("BEGIN IMMEDIATE")
        workspace.update_rule(other, config)
    _, after = await pw.postback(clickid=clickid, type="Lead", txid="2")
    assert after["decisions"][0]["verdict"] == "filtered"
    assert after["decisions"][0]["reasons"] == ["status 'pending' is not one of: approved"]


async def test_a_postback_that_cannot_be_processed_is_still_stored(pw: Listener) -> None:
    clickid = await pw.click()
    # A configuration the writer cannot read (say, edited by hand): the postback fails...
    await pw.store.write(lambda conn: conn.execute("UPDATE postback_configs SET types = 'oops'"))
    status, body = await pw.postback(clickid=clickid, type="Lead")
    assert status == 500
    assert body["error"].startswith("postwatch failed to process this request")
    # ...and is kept in the inbound log with that reason, like every rejected request.
    _, inbound = await pw.get("/api/inbound", limit="1")
    assert inbound[0]["outcome"] == "rejected"
    assert inbound[0]["reason"] == body["error"]
    assert f"clickid={clickid}" in inbound[0]["query"]
