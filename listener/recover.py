"""Recover: resend every failed delivery since a time, once each (docs/support.md).

A failed delivery is resent when its attempt is the last of its decision (nothing resent or
retried it since) and its decision never delivered; the resend is a new pending attempt
linked to it (``resend_of``), so running recover again finds nothing more to do, and the
delivering listener's outbox sends what was queued.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from listener import delivery
from listener.words import plural
from store import events
from store.read import filters, queries
from store.records import Attempt
from store.retention import AGE_UNITS, parse_age

_ONE, _MANY = "failed delivery", "failed deliveries"


class TimeError(ValueError):
    """A time that cannot be read; the message says what is accepted."""


def parse_time(text: str | float | int, now: float, name: str = "since") -> float:
    """Unix seconds from Unix seconds, ISO 8601 (UTC when no offset is given), as the list
    filters read them, or an age before ``now`` as ``prune --older-than`` reads it (``30m``,
    ``2h``, ``7d``)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    value = str(text).strip()
    if value[-1:].lower() in AGE_UNITS:
        try:
            return now - parse_age(value)
        except ValueError:
            pass
    try:
        return filters.parse_time(name, value)
    except filters.FilterError:
        raise TimeError(
            f"{name} {value!r} is not a time: give ISO 8601 (2026-01-31T12:00:00Z), Unix "
            "seconds, or an age such as 30m, 2h or 7d"
        ) from None


@dataclass(frozen=True)
class RecoverFilter:
    """Which failed deliveries to resend: failed since ``since`` (Unix seconds), and of
    the traffic source (name), postback config (name or id) and campaign (key or name) when
    given."""

    since: float
    traffic_source: str | None = None
    postback: str | None = None
    campaign: str | None = None


@dataclass
class Recovered:
    """What a recover queued (or, in a dry run, would queue): the failed attempts resent and
    the new attempts, in the same order."""

    resent: list[int]
    queued: list[Attempt] = field(default_factory=list)
    dry_run: bool = False
    targets: list[str] = field(default_factory=list)  # each resent one's method and URL

    def as_json(self) -> dict[str, object]:
        return {
            "count": len(self.resent),
            "dry_run": self.dry_run,
            "resent": self.resent,
            "ids": [attempt.id for attempt in self.queued],
        }


def recoverable(conn: sqlite3.Connection, chosen: RecoverFilter) -> list[int]:
    """The failed attempts a recover with this filter resends. A campaign or traffic source
    that no one has raises ``filters.FilterError`` naming the ones there are (a typo must not
    read as "nothing failed")."""
    queries.resolve(
        conn, filters.ListFilter(campaign=chosen.campaign, traffic_source=chosen.traffic_source)
    )
    return events.recoverable_deliveries(
        conn,
        since=chosen.since,
        traffic_source=chosen.traffic_source,
        postback=chosen.postback,
        campaign=chosen.campaign,
    )


def recover(
    conn: sqlite3.Connection, chosen: RecoverFilter, *, now: float, dry_run: bool = False
) -> Recovered:
    """Resend each failed delivery the filter chooses, once (run as one writer job, so two
    recovers cannot both resend one). A dry run only lists them (on any connection)."""
    failed = recoverable(conn, chosen)
    if dry_run:
        would = [events.load_attempt(conn, delivery_id) for delivery_id in failed]
        targets = [f"{one.method} {one.url}" for one in would if one is not None]
        return Recovered(failed, dry_run=True, targets=targets)
    queued = []
    for delivery_id in failed:
        attempt = delivery.resend(conn, delivery_id, now)
        assert attempt is not None  # it was just read, in this transaction
        queued.append(attempt)
    return Recovered(failed, queued, targets=[f"{one.method} {one.url}" for one in queued])


def describe(recovered: Recovered) -> list[str]:
    """What a recover did, as lines for the terminal."""
    if not recovered.resent:
        return ["no failed delivery to resend"]
    if recovered.dry_run:
        lines = [f"would resend {plural(len(recovered.resent), _ONE, _MANY)}"]
        pairs = zip(recovered.resent, recovered.targets, strict=True)
        return lines + [f"  delivery #{failed}: {target}" for failed, target in pairs]
    lines = [f"queued {plural(len(recovered.resent), _ONE, _MANY)}"]
    return lines + [
        f"  delivery #{failed} -> new attempt #{attempt.id}: {target}"
        for failed, attempt, target in zip(
            recovered.resent, recovered.queued, recovered.targets, strict=True
        )
    ]
