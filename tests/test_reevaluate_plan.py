"""A re-evaluation's plan with the verdicts worked out first (only the conversions they would
change are read) is exactly the plan of reading every conversion, and it reads exactly the
conversions of which a config's verdict is not its latest decision: over two campaigns with
conditional, disabled and refiring configs, conversions of every type, status and payout
(none, whole, fractional), updated several times, with fired, filtered, skipped, re-evaluated
and unsent histories, for several rule changes and selections (campaign, ids, time range),
with and without fire."""

from __future__ import annotations

import random
import sqlite3
import time
from typing import Any

import pytest

from listener import reevaluate, rules
from listener.reevaluate import Selection
from store import db, events, snapshot
from store.records import Conversion
from tests.helpers import Listener, Target, until

CAMPAIGNS = ("casino-fr", "casino-de")

# The rules the history was decided by; then the same with a twist (re-evaluated without
# fire: recorded unsent); then each change a plan is compared under.
FIRST = """
[[campaigns.postbacks]]
name = "all events"
[[campaigns.postbacks]]
name = "paid deposits"
conditional = true
types = ["Deposit"]
statuses = ["approved"]
[[campaigns.postbacks]]
name = "big payouts"
conditional = true
min_payout = 50
"""
TWIST = FIRST.replace('statuses = ["approved"]', 'statuses = ["approved", "pending"]')
CHANGES = {
    "the rules of the history": FIRST,
    "statuses widened": TWIST.replace('"pending"]', '"pending", "declined"]'),
    "types, statuses and min payout together": FIRST.replace(
        'statuses = ["approved"]', 'statuses = ["pending"]\nmin_payout = 12.5'
    ).replace('types = ["Deposit"]', 'types = ["Deposit", "Lead"]'),
    "refire on update, a lower minimum": FIRST.replace(
        "conditional = true", "conditional = true\nrefire_on_update = true"
    ).replace("min_payout = 50", "min_payout = 10"),
    "one disabled, one not conditional, one added": FIRST.replace(
        'name = "all events"', 'name = "all events"\nenabled = false'
    ).replace("conditional = true\nmin_payout = 50", "min_payout = 50")
    + '[[campaigns.postbacks]]\nname = "leads"\nconditional = true\ntypes = ["Lead"]\n',
}
TYPES = ("Deposit", "Lead", None)
STATUSES = ("pending", "approved", "declined")
PAYOUTS = (None, "10", "12.5", "49.99", "50", "100.25")


def workspace(port: int, rules: str) -> str:
    head = f"""
conversion_types = ["Lead", "Deposit"]
[delivery]
timeout = 1
retry_schedule = [0.2]
[[offer_sources]]
name = "AffNet"
duplicates = "update"
[[traffic_sources]]
name = "Receiver"
postback_url = "http://127.0.0.1:{port}/pb?c={{clickid}}&s={{status}}"
"""
    return head + "".join(
        f'[[campaigns]]\nkey = "{key}"\ntraffic_source = "Receiver"\noffer_source = "AffNet"\n'
        + rules
        for key in CAMPAIGNS
    )


async def _postback(
    pw: Listener, clickid: str, txid: str, type_: str | None, status: str, payout: str | None
) -> None:
    params = {"clickid": clickid, "txid": txid, "status": status}
    for name, value in (("type", type_), ("sum", payout)):
        if value is not None:
            params[name] = value
    answer, body = await pw.postback(**params)
    assert answer == 200, body


async def _history(pw: Listener, target: Target, chance: random.Random) -> list[int]:
    """Conversions decided by FIRST, updated, then re-evaluated under TWIST (some without
    fire, some with); their ids, in order."""
    await pw.configure(workspace(target.port, FIRST))
    for n in range(36):  # each campaign, type and status twice, as they stand at the end
        clickid = await pw.click(CAMPAIGNS[n % 2])
        for _ in range(chance.choice((0, 0, 1, 2))):  # earlier states, then the last one
            values = chance.choice(TYPES), chance.choice(STATUSES), chance.choice(PAYOUTS)
            await _postback(pw, clickid, f"tx-{n}", *values)
        last = TYPES[n % 3], STATUSES[n // 3 % 3], chance.choice(PAYOUTS)
        await _postback(pw, clickid, f"tx-{n}", *last)
    await pw.configure(workspace(target.port, TWIST))
    status, _ = await pw.post("/api/reevaluate", json={"campaign": "casino-fr"})
    assert status == 200
    conn = db.connect(pw.store.path)
    try:
        ids = [row[0] for row in conn.execute("SELECT id FROM conversions ORDER BY id")]
    finally:
        conn.close()
    status, _ = await pw.post("/api/reevaluate", json={"ids": ids[1::3], "fire": True})
    assert status == 200
    return ids


def _settled(conn: sqlite3.Connection) -> bool:
    """No delivery on its way: what was delivered no longer changes under the plans."""
    row = conn.execute(
        "SELECT count(*) FROM deliveries WHERE outcome IN ('pending', 'retrying')"
    ).fetchone()
    return bool(row[0] == 0)


def _changing_one_by_one(conn: sqlite3.Connection) -> tuple[list[Any], set[int]]:
    """Worked out one conversion at a time: the verdicts of its configs that may flip (as
    ``events.expected_verdicts`` takes them), and the conversions of which one is not the
    config's latest decision."""
    setup = snapshot.load(conn)
    verdicts, changing = set(), set()
    columns = "id, click_id, campaign_id, type, status, raw_status, payout, currency, txid"
    for row in conn.execute(f"SELECT {columns} FROM conversions").fetchall():
        conversion = Conversion(*row)
        for config in setup.campaigns[conversion.campaign_id].campaign.postbacks:
            past = conn.execute(
                "SELECT verdict FROM decisions WHERE conversion_id = ? AND postback_config_id = ?"
                " ORDER BY id",
                (conversion.id, config.id),
            ).fetchall()
            fired = any(one[0] == "fired" for one in past)
            verdict = rules.decide(config, conversion, fired_at=1.0 if fired else None).verdict
            if verdict in ("fired", "filtered"):
                values = (conversion.campaign_id, conversion.type, conversion.status)
                verdicts.add((*values, conversion.payout, config.id, fired, verdict.value))
                if not past or past[-1][0] != verdict:
                    changing.add(conversion.id)
    return list(verdicts), changing


def _changing(conn: sqlite3.Connection, verdicts: list[Any]) -> set[int]:
    """The conversions the pages of the verdicts worked out first read."""
    with events.expected_verdicts(conn, verdicts):
        page = events.conversion_page(
            conn, events.Chosen(), after=0, limit=1_000_000, changing=True
        )
    return {row[0] for row in page}


def _selections(conn: sqlite3.Connection, ids: list[int]) -> dict[str, Selection]:
    times = [row[0] for row in conn.execute("SELECT created_at FROM conversions ORDER BY id")]
    third, two_thirds = times[len(times) // 3], times[2 * len(times) // 3]
    return {
        "a campaign": Selection(campaign="casino-fr"),
        "the other campaign": Selection(campaign="casino-de"),
        "ids, one unknown": Selection(ids=(*ids[::4], 99_999)),
        "since": Selection(since=third),
        "until": Selection(until=two_thirds),
        "a campaign in a time range": Selection(
            campaign="casino-de", since=third, until=two_thirds
        ),
    }


def _statements(conn: sqlite3.Connection, chosen: Selection, at: float, fire: bool) -> Any:
    """The plan with the verdicts worked out first, and the statements it ran."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        return reevaluate.plan(conn, chosen, at, fire=fire), statements
    finally:
        conn.set_trace_callback(None)


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_plan_of_the_changing_conversions_is_the_plan_of_every_conversion(
    seed: int, pw: Listener, target: Target
) -> None:
    ids = await _history(pw, target, random.Random(seed))
    conn = db.connect(pw.store.path)
    try:
        await until(lambda: _settled(conn))
        kinds = conn.execute(
            "SELECT count(DISTINCT coalesce(type, '-')), count(DISTINCT status),"
            " count(DISTINCT coalesce(payout, -1)), max(n) FROM conversions"
            " JOIN (SELECT conversion_id, count(*) AS n FROM conversion_events"
            " GROUP BY conversion_id) ON conversion_id = conversions.id"
        ).fetchone()
        assert tuple(kinds[:3]) == (3, 3, 6) and kinds[3] >= 3, kinds  # varied enough
        selections = _selections(conn, ids)
        at = time.time()
        old: set[str | None] = set()
        flipped = 0
        for name, changed in CHANGES.items():
            await pw.configure(workspace(target.port, changed))
            verdicts, changing = _changing_one_by_one(conn)
            assert _changing(conn, verdicts) == changing, name
            for (chosen_name, chosen), fire in (
                (one, fire) for one in selections.items() for fire in (False, True)
            ):
                case = f"{name}, {chosen_name}, fire={fire}"
                (seen, planned), statements = _statements(conn, chosen, at, fire)
                assert any("expected_verdicts" in sql for sql in statements), case
                every = reevaluate.plan(conn, chosen, at, fire=fire, most_values=0)
                assert (seen, planned) == every, case
                old |= {one.change.old_verdict for one in planned}
                flipped += len(planned)
        assert old == {None, "fired", "filtered", "skipped"}  # every kind of history flipped
        assert flipped > 100
    finally:
        conn.close()
