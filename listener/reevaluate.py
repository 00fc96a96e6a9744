"""Re-evaluate: run chosen conversions, as they are now, through the current rules
(docs/support.md).

The decisions come from the same ``pipeline.decide`` a postback runs. A change is a decision
that flips between ``fired`` and ``filtered`` against the config's latest decision for the
conversion (a config that never decided it and now fires is a change too). A dry run lists
the changes; a real run records, for each conversion with a change, a new conversion event of
change ``reevaluated`` holding the changed decisions, beside the originals (nothing is
rewritten), and with ``fire`` queues the newly fired ones. The dry run and the real run share
``plan``, so the dry run lists exactly what the real run then records.

A config fires at most once per conversion: one that fired before is ``skipped`` as in an
update (unless it sets ``refire_on_update``), and one that was ever delivered for the
conversion is never sent again by a re-evaluation.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from listener import pipeline, rules
from listener.words import plural
from store import events, snapshot
from store.records import Attempt, Click, Conversion, PostbackConfig, Verdict
from store.snapshot import CampaignSetup, Snapshot

PAGE = 2000  # conversions read per statement
# Distinct (campaign, type, status, payout) of a selection whose verdicts are worked out
# before its conversions are read (see ``plan``).
MOST_VALUES = 2000
_DECISIONS = ("decision", "decisions")
_FLIPS = {Verdict.FIRED, Verdict.FILTERED}
# The last reason of a decision that a re-evaluation without fire found firing: recorded as
# skipped (nothing was sent, so a later update or re-evaluation may still fire it).
UNSENT = "re-evaluated without fire: recorded, not sent"


class SelectionError(ValueError):
    """A selection that chooses nothing sensible; the message says what to give."""


@dataclass(frozen=True)
class Selection:
    """Which conversions: of a campaign (key), created in [since, until) (Unix seconds), or
    these ids; every part given must hold."""

    campaign: str | None = None
    since: float | None = None
    until: float | None = None
    ids: tuple[int, ...] = ()

    def check(self) -> None:
        if self.campaign is None and self.since is None and self.until is None and not self.ids:
            raise SelectionError(
                "choose the conversions to re-evaluate: give campaign, since, until or ids"
            )


@dataclass(frozen=True)
class Change:
    """One decision that a re-evaluation flips, with the reasons before and after."""

    conversion_id: int
    postback: str
    postback_id: int
    old_verdict: str | None  # None: the config never decided this conversion
    new_verdict: str
    old_reasons: tuple[str, ...]
    new_reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "conversion_id": self.conversion_id,
            "postback": self.postback,
            "postback_id": self.postback_id,
            "old": {"verdict": self.old_verdict, "reasons": list(self.old_reasons)},
            "new": {"verdict": self.new_verdict, "reasons": list(self.new_reasons)},
        }


@dataclass(frozen=True)
class Planned:
    """A change and what records it: the decision and, when it fires, the built request."""

    change: Change
    decided: pipeline.Decided
    conversion: Conversion


@dataclass
class Reevaluated:
    """What a re-evaluation found (``changes``), and for a real run what it recorded."""

    conversions: int  # conversions looked at
    changes: list[Change]
    dry_run: bool
    fire: bool
    events: list[int] = field(default_factory=list)  # the new conversion events
    queued: list[Attempt] = field(default_factory=list)  # the attempts of newly fired ones

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "fire": self.fire,
            "conversions": self.conversions,
            "count": len(self.changes),
            "changes": [change.as_json() for change in self.changes],
            "events": self.events,
            "deliveries": [attempt.id for attempt in self.queued],
        }


def _campaign_id(setup: Snapshot, key: str | None) -> int | None:
    if key is None:
        return None
    found = setup.campaign_ids.get(key)
    if found is None:
        known = ", ".join(setup.campaign_ids) or "none"
        raise SelectionError(f"unknown campaign '{key}': known campaign keys are {known}")
    return found


def _pages(
    conn: sqlite3.Connection, chosen: events.Chosen, *, changing: bool = False
) -> Iterator[list[tuple[Any, ...]]]:
    """The chosen conversions (with ``changing``, only those that an expected verdict would
    change), page by page in id order, as plain rows."""
    after = 0
    while True:
        page = events.conversion_page(conn, chosen, after=after, limit=PAGE, changing=changing)
        if not page:
            return
        yield page
        after = page[-1][0]


def _never_again(decided: pipeline.Decided, sent: float | None) -> pipeline.Decided:
    """A newly fired decision of a config already delivered for this conversion (``sent``:
    when) is skipped: a re-evaluation never sends one config twice."""
    if sent is None:
        return decided
    reason = (
        f"already delivered at {rules.format_time(sent)}; a re-evaluation never sends a "
        "postback config twice"
    )
    return pipeline.Decided(decided.config, rules.Decision(Verdict.SKIPPED, [reason]), None)


def _unsent(past: events.PastDecision) -> bool:
    return past.verdict == Verdict.SKIPPED and past.marked


def _flips(past: events.PastDecision | None, new: rules.Decision, fire: bool) -> bool:
    """Whether ``new`` changes the config's latest decision ``past``: fired <-> filtered, a
    first decision that fires, or one recorded unsent that now is filtered, or fires and is
    sent (``fire``)."""
    if new.verdict not in _FLIPS:
        return False
    if past is None:
        return new.verdict == Verdict.FIRED
    if past.verdict == new.verdict:
        return False
    if past.verdict in _FLIPS:
        return True
    return _unsent(past) and (new.verdict != Verdict.FIRED or fire)


def _change(
    config: PostbackConfig,
    conversion: Conversion,
    past: events.PastDecision | None,
    new: rules.Decision,
    reasons: dict[int, list[str]],
) -> Change:
    """The change, with the old decision's reasons (``reasons``: by decision id)."""
    assert config.id is not None
    return Change(
        conversion_id=conversion.id,
        postback=config.name,
        postback_id=config.id,
        old_verdict=None if past is None else past.verdict,
        new_verdict=new.verdict,
        old_reasons=tuple(reasons.get(past.decision_id, ())) if past else (),
        new_reasons=tuple(new.reasons),
    )


class _Rules:
    """``rules.decide`` for many conversions. A decision's verdict depends only on the config,
    the conversion's type, status and payout, and whether the config fired before (not when):
    a campaign's conversions share a few of those, so each verdict is worked out once. The
    whole decision, whose reasons may name when it fired, is made only for a verdict that
    may flip."""

    def __init__(self) -> None:
        # (config id, (type, status, payout), never fired) -> verdict
        self.verdicts: dict[tuple[Any, ...], Verdict] = {}

    def verdict(
        self, config: PostbackConfig, conversion: Conversion, fired_at: float | None
    ) -> Verdict:
        """The verdict, worked out and kept (``verdicts``) when not known yet."""
        if len(self.verdicts) > 100_000:  # bounded: payouts may all differ
            self.verdicts.clear()
        values = (conversion.type, conversion.status, conversion.payout)
        found = self.decide(config, conversion, fired_at).verdict
        self.verdicts[(config.id or 0, values, fired_at is None)] = found
        return found

    @staticmethod
    def decide(
        config: PostbackConfig, conversion: Conversion, fired_at: float | None
    ) -> rules.Decision:
        return rules.decide(config, conversion, fired_at=fired_at)


@dataclass(frozen=True)
class _Candidate:
    """A decision the rule flips, before its request is built."""

    config: PostbackConfig
    conversion: Conversion
    past: events.PastDecision | None
    decision: rules.Decision


def _candidates(
    page: Sequence[tuple[Any, ...]],
    setup: Snapshot,
    past: events.PastDecisions,
    decide: _Rules,
    fire: bool,
) -> Iterator[_Candidate]:
    """The decisions of a page (conversions as plain rows, in ``Conversion``'s field order)
    that the rule alone flips (in pure Python, no I/O). The hot loop of a re-evaluation: it
    reads the rows as they are, and makes a record only of a conversion whose verdict is
    not known yet or may flip."""
    latest, fired = past.latest, past.fired
    configs = {
        campaign_id: [(config.id or 0, config) for config in one.campaign.postbacks]
        for campaign_id, one in setup.campaigns.items()
    }
    verdicts = decide.verdicts
    for row in page:
        conversion_id, values = row[0], (row[3], row[4], row[6])  # id; type, status, payout
        conversion: Conversion | None = None
        for config_id, config in configs.get(row[2], ()):  # its campaign's
            key = (conversion_id, config_id)
            never = key not in fired  # whether it fired before, not when: the verdict's
            verdict = verdicts.get((config_id, values, never))
            if verdict is None:
                conversion = conversion or Conversion(*row)
                verdict = decide.verdict(config, conversion, past.fired_at(key))
            if verdict not in _FLIPS:
                continue
            last = latest.get(key)
            if last is not None and last[3] == verdict:
                continue  # what most decisions are: no change
            before = past.get(key)
            conversion = conversion or Conversion(*row)
            decision = decide.decide(config, conversion, past.fired_at(key))
            if _flips(before, decision, fire):
                yield _Candidate(config, conversion, before, decision)


def _decided(
    candidate: _Candidate,
    setup: CampaignSetup,
    click: Click | None,
    sent: float | None,
    at: float,
) -> pipeline.Decided:
    """A flipped decision as ``pipeline.decide`` makes it: one that fires is built (and
    skipped when its request cannot be made, or was delivered before)."""
    config, conversion, before, verdict = (
        candidate.config,
        candidate.conversion,
        candidate.past,
        candidate.decision,
    )
    if verdict.verdict != Verdict.FIRED:
        return pipeline.Decided(config, verdict, None)
    assert click is not None
    fired_at = None if before is None else before.fired_at
    decided = pipeline.decide(
        config, conversion, fired_at=fired_at, click=click, setup=setup, at=at
    )
    return _never_again(decided, sent) if decided.decision.verdict == Verdict.FIRED else decided


def _page_plan(
    conn: sqlite3.Connection,
    page: Sequence[tuple[Any, ...]],
    setup: Snapshot,
    decide: _Rules,
    at: float,
    fire: bool,
) -> list[Planned]:
    past = events.past_decisions(conn, [row[0] for row in page], UNSENT)
    candidates = list(_candidates(page, setup, past, decide, fire))
    if not candidates:
        return []
    firing = [one.conversion for one in candidates if one.decision.verdict == Verdict.FIRED]
    # Only what the rule flips needs its click, what was delivered and the old reasons:
    # one statement each.
    clicks = events.clicks_by_id(conn, sorted({one.click_id for one in firing}))
    sent = events.delivered_at(conn, sorted({one.id for one in firing}))
    reasons = events.decision_reasons(
        conn, [one.past.decision_id for one in candidates if one.past is not None]
    )
    planned = []
    for one in candidates:
        assert one.config.id is not None
        conversion = one.conversion
        decided = _decided(
            one,
            setup.campaigns[conversion.campaign_id],
            clicks.get(conversion.click_id),
            sent.get((conversion.id, one.config.id)),
            at,
        )
        if _flips(one.past, decided.decision, fire):
            change = _change(one.config, conversion, one.past, decided.decision, reasons)
            planned.append(Planned(change, decided, conversion))
    return planned


def _expected(
    values: Sequence[tuple[int, str | None, str, float | None]],
    setup: Snapshot,
    decide: _Rules,
) -> Iterator[events.ExpectedVerdict]:
    """For each (campaign id, type, status, payout) of ``values``, each postback config of its
    campaign, as one that never fired and as one that fired before: the verdict, when it may
    flip (``_candidates`` skips the others)."""
    for campaign_id, type_, status, payout in values:
        one = setup.campaigns.get(campaign_id)
        if one is None:
            continue
        conversion = Conversion(0, "", campaign_id, type_, status, None, payout, "", None)
        for config in one.campaign.postbacks:
            assert config.id is not None
            for fired_at in (None, 0.0):  # when it fired does not change the verdict
                verdict = decide.verdict(config, conversion, fired_at)
                if verdict in _FLIPS:
                    row = (campaign_id, type_, status, payout, config.id, fired_at is not None)
                    yield (*row, verdict.value)


def plan(
    conn: sqlite3.Connection,
    chosen: Selection,
    at: float,
    *,
    fire: bool = False,
    most_values: int = MOST_VALUES,
) -> tuple[int, list[Planned]]:
    """How many conversions the selection holds, and the changes the current rules make
    (for a run with or without ``fire``).

    A verdict depends only on the config, the conversion's type, status and payout, and
    whether the config fired before (``_Rules``). When the selection's conversions have at
    most ``most_values`` distinct (type, status, payout), those verdicts are worked out first
    and only the conversions of which one is not the config's latest decision are read, then
    planned as any conversion is (``_page_plan``, which skips exactly the others); with more
    (say, payouts that all differ), every conversion is read."""
    chosen.check()
    setup = snapshot.load(conn)
    which = events.Chosen(
        _campaign_id(setup, chosen.campaign), chosen.since, chosen.until, chosen.ids
    )
    decide = _Rules()
    planned: list[Planned] = []
    with _collector_paused():
        values = events.rule_values(conn, which, most_values + 1)
        if len(values) > most_values:
            seen = 0
            for page in _pages(conn, which):
                seen += len(page)
                planned += _page_plan(conn, page, setup, decide, at, fire)
            return seen, planned
        with events.expected_verdicts(conn, _expected(values, setup, decide)):
            for page in _pages(conn, which, changing=True):
                planned += _page_plan(conn, page, setup, decide, at, fire)
            return events.conversion_count(conn, which), planned


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: a re-evaluation makes hundreds of thousands of
    small objects (rows, records) that all live until its page is done, and the collector's
    passes over them, a fifth of its time, would find nothing to free."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _record(
    conn: sqlite3.Connection,
    conversion: Conversion,
    planned: Sequence[Planned],
    *,
    fire: bool,
    at: float,
) -> tuple[int, list[Attempt]]:
    """One ``reevaluated`` event of this conversion with its changed decisions; the newly
    fired ones are queued when ``fire``, else recorded as skipped, saying they were not
    sent (so that a later update may still fire them)."""
    event_id = events.insert_event(conn, conversion, events.NO_REQUEST, events.REEVALUATED, at)
    queued: list[Attempt] = []
    for one in planned:
        config, decision, built = one.decided
        assert config.id is not None
        fired = decision.verdict == Verdict.FIRED
        verdict, reasons = decision.verdict, list(decision.reasons)
        if fired and not fire:
            verdict = Verdict.SKIPPED
            reasons.append(UNSENT)
        decision_id = events.insert_decision(
            conn,
            conversion_id=conversion.id,
            event_id=event_id,
            config_id=config.id,
            postback=config.name,
            kind=config.kind,
            verdict=verdict,
            reasons=reasons,
            warnings=built.warnings if built and fired else [],
            at=at,
        )
        if fired and fire and built is not None and built.request is not None:
            delivery_id = pipeline.insert_first_attempt(conn, decision_id, built.request, at)
            attempt = events.load_attempt(conn, delivery_id)
            assert attempt is not None
            queued.append(attempt)
    return event_id, queued


def reevaluate(
    conn: sqlite3.Connection,
    chosen: Selection,
    *,
    at: float,
    dry_run: bool = True,
    fire: bool = False,
) -> Reevaluated:
    """Re-evaluate the selection. A dry run changes nothing (run it on a reader); a real run
    is one writer job, so what it records is what it planned."""
    seen, planned = plan(conn, chosen, at, fire=fire)
    found = Reevaluated(seen, [one.change for one in planned], dry_run=dry_run, fire=fire)
    if dry_run:
        return found
    by_conversion: dict[int, list[Planned]] = {}
    for one in planned:
        by_conversion.setdefault(one.conversion.id, []).append(one)
    for group in by_conversion.values():
        event_id, queued = _record(conn, group[0].conversion, group, fire=fire, at=at)
        found.events.append(event_id)
        found.queued += queued
    return found


def describe(found: Reevaluated) -> list[str]:
    """What a re-evaluation found or did, as lines for the terminal."""
    head = "would change" if found.dry_run else "changed"
    conversions = plural(found.conversions, "conversion", "conversions")
    lines = [f"{conversions} re-evaluated: {head} {plural(len(found.changes), *_DECISIONS)}"]
    for change in found.changes:
        old = change.old_verdict or "no decision"
        lines.append(
            f"  conversion #{change.conversion_id}, postback '{change.postback}': "
            f"{old} -> {change.new_verdict}"
        )
        if change.old_reasons:
            lines.append(f"    before: {'; '.join(change.old_reasons)}")
        lines.append(f"    now: {'; '.join(change.new_reasons)}")
    if not found.dry_run and found.fire:
        lines.append(f"queued {plural(len(found.queued), 'delivery', 'deliveries')}")
    elif not found.dry_run and any(c.new_verdict == Verdict.FIRED for c in found.changes):
        lines.append("newly fired decisions were recorded, not sent (use --fire to send them)")
    return lines
