"""The postback's named steps, as tables: what a repeat does, how an update merges, and how
one postback config is decided (no database, no HTTP); and the click ids postwatch makes."""

from __future__ import annotations

import asyncio
import re

import pytest

from listener.parsing import Postback
from listener.pipeline import decide, merge, new_click_id, repeat_policy
from store.records import (
    Campaign,
    Click,
    Conversion,
    OfferSource,
    PostbackConfig,
    TrafficSource,
)
from store.snapshot import CampaignSetup
from tests.helpers import Listener

CLICK = Click("c1", campaign_id=1, external_id="ext-1", params={}, created_at=0.0)
STORED = Conversion(7, "c1", 1, "Deposit", "pending", "2", 40.0, "EUR", "T1")


@pytest.mark.parametrize(
    ("existing", "txid", "duplicates", "policy"),
    [
        (None, None, "update", "create"),
        (None, "T1", "ignore", "create"),
        (STORED, "T1", "ignore", "update"),  # a txid always names the conversion it updates
        (STORED, None, "update", "update"),
        (STORED, None, "new", "create"),
        (STORED, None, "ignore", "ignore"),
    ],
)
def test_repeat_policy(
    existing: Conversion | None, txid: str | None, duplicates: str, policy: str
) -> None:
    postback = Postback("c1", txid=txid, type="Deposit")
    assert repeat_policy(existing, postback, OfferSource("Net", duplicates=duplicates)) == policy


@pytest.mark.parametrize(
    ("postback", "status", "payout", "expected", "kept"),
    [
        # a new conversion takes what was sent, the settings' currency when none was
        (
            Postback("c1", type="Lead", raw_status="1", txid="T9"),
            "approved",
            None,
            Conversion(0, "c1", 1, "Lead", "approved", "1", None, "USD", "T9"),
            None,
        ),
        (
            Postback("c1", type="Lead", raw_status="1", currency="GBP"),
            "approved",
            3.0,
            Conversion(0, "c1", 1, "Lead", "approved", "1", 3.0, "GBP", None),
            None,
        ),
    ],
)
def test_merge_a_new_conversion(
    postback: Postback,
    status: str,
    payout: float | None,
    expected: Conversion,
    kept: str | None,
) -> None:
    assert merge(None, postback, status, payout, CLICK, "USD") == (expected, kept)


@pytest.mark.parametrize(
    ("postback", "status", "payout", "expected", "kept"),
    [
        # an approval with nothing else: type, payout, currency and txid stay
        (
            Postback("c1", raw_status="1"),
            "approved",
            None,
            Conversion(7, "c1", 1, "Deposit", "approved", "1", 40.0, "EUR", "T1"),
            None,
        ),
        # a new payout and currency, no status: the status stays, and the reason says so
        (
            Postback("c1", currency="USD"),
            "pending",
            55.0,
            Conversion(7, "c1", 1, "Deposit", "pending", "2", 55.0, "USD", "T1"),
            "no status was sent: the conversion keeps 'pending'",
        ),
        (
            Postback("c1", type="FTD", raw_status="3", txid="T2"),
            "declined",
            None,
            Conversion(7, "c1", 1, "FTD", "declined", "3", 40.0, "EUR", "T2"),
            None,
        ),
    ],
)
def test_merge_an_update(
    postback: Postback,
    status: str,
    payout: float | None,
    expected: Conversion,
    kept: str | None,
) -> None:
    assert merge(STORED, postback, status, payout, CLICK, "USD") == (expected, kept)


SETUP = CampaignSetup(
    Campaign("casino-fr", "Casino FR", "Propeller", "Net", id=1),
    OfferSource("Net"),
    TrafficSource("Propeller", postback_url="http://127.0.0.1:9/pb?v={external_id}"),
)


@pytest.mark.parametrize(
    ("config", "click", "fired_at", "verdict", "reasons", "built"),
    [
        (PostbackConfig("all", id=1), CLICK, None, "fired", None, True),
        (
            PostbackConfig("paid", id=2, conditional=True, statuses=["approved"]),
            CLICK,
            None,
            "filtered",
            ["status 'pending' is not one of: approved"],
            False,
        ),
        (PostbackConfig("all", id=1), CLICK, 1.0, "skipped", None, False),
        (PostbackConfig("off", id=3, enabled=False), CLICK, None, "skipped", None, False),
        # fires by its rule, but the request cannot be made: skipped, built for the trace
        (
            PostbackConfig("all", id=1),
            Click("c1", 1, external_id="", params={}, created_at=0.0),
            None,
            "skipped",
            [
                "the click has no external id: the traffic source 'Propeller' parameter "
                "'ref_id' was empty on the click"
            ],
            True,
        ),
    ],
)
def test_decide(
    config: PostbackConfig,
    click: Click,
    fired_at: float | None,
    verdict: str,
    reasons: list[str] | None,
    built: bool,
) -> None:
    decided = decide(config, STORED, fired_at=fired_at, click=click, setup=SETUP, at=100.0)
    assert decided.config is config
    assert decided.decision.verdict == verdict
    if reasons is not None:
        assert decided.decision.reasons == reasons
    assert (decided.built is not None) == built
    if verdict == "fired":
        assert decided.built is not None and decided.built.request is not None
        assert decided.built.request.url == "http://127.0.0.1:9/pb?v=ext-1"


def test_a_click_id_is_its_time_in_milliseconds_then_random_bits() -> None:
    times = (1_700_000_000.0, 1_700_000_000.001, 1_700_000_000.0015, 1_800_000_000.0)
    ids = [new_click_id(at) for at in times]
    assert all(re.fullmatch(r"[0-9a-f]{24}", made) for made in ids)
    assert ids[0].startswith(f"{1_700_000_000_000:011x}")
    assert ids[0] < ids[1] and ids[1][:11] == ids[2][:11] and ids[2] < ids[3]  # time order
    assert len({new_click_id(1.0) for _ in range(100)}) == 100  # one millisecond, 100 ids


async def test_the_listener_makes_click_ids_in_the_order_of_the_clicks(pw: Listener) -> None:
    made = []
    for _ in range(3):
        made.append(await pw.click())
        await asyncio.sleep(0.002)
    assert made == sorted(made) and len(set(made)) == 3
