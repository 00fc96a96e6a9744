"""Typed records of what the read model returns: frozen dataclasses, times as Unix seconds.

A field marked ``TIME`` is a time, which the JSON edge (``store.reads``) writes as ISO 8601.
Each record is read from the columns of its fields' names (``store.rows``); ``JSON``,
``JSON_LIST`` and ``FLAG`` say how a stored text or flag is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, Protocol

from store.rows import FLAG, JSON, JSON_LIST, JSON_OR_NONE, column

TIME: Mapping[str, Any] = {"time": True}

# A mark is where one postback config stands for a conversion (``summary_of``); "none": the
# config has no decision for it (it was added after the conversion's last event).
SETTLED_MARKS = frozenset({"delivered", "failed", "filtered", "skipped", "none"})
# A fired decision's marks, what needs a look first first: a failure, then a delivery still
# under way (retrying, then sending), then a delivery done.
FIRED_PRECEDENCE = ("failed", "retrying", "fired", "delivered")


class Fields(Mapping[str, Any]):
    """A record read as a mapping of its fields by name (``row["id"]``, ``dict(row)``): the
    dashboard's table widgets hold their rows' data as mappings."""

    def __getitem__(self, name: str) -> Any:
        if name not in self._names():
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> tuple[str, ...]:
        return _field_names(type(self))


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(item.name for item in fields(cls))


@dataclass(frozen=True)
class ClickView:
    """A click as the trace shows it."""

    id: str
    campaign: str
    campaign_name: str
    external_id: str
    params: Mapping[str, str] = field(metadata=JSON)
    created_at: float = field(metadata=TIME)


@dataclass(frozen=True)
class InboundView(Fields):
    """A request as it was received, with its outcome and how it was read."""

    id: int
    received_at: float = field(metadata=TIME)
    endpoint: str
    method: str
    path: str
    query: str
    body: str
    remote: str
    headers: Mapping[str, str] = field(metadata=JSON)
    outcome: str
    reason: str
    http_status: int
    warnings: tuple[str, ...] = field(metadata=JSON_LIST)
    parsed: Mapping[str, Any] = field(metadata=JSON)
    click_id: str | None
    conversion_id: int | None
    replay_of: int | None = None  # the inbound row this request replays (docs/support.md)


@dataclass(frozen=True)
class ReplayView:
    """A request sent again from a stored one (``replay_of``), as the original lists it."""

    id: int
    replay_of: int
    outcome: str


@dataclass(frozen=True)
class EventView:
    """One event of a conversion's status history (a creation or an update)."""

    event_id: int = field(metadata=column("id"))
    at: float = field(metadata=TIME)
    change: str
    type: str | None
    status: str
    raw_status: str | None
    payout: float | None
    inbound_id: int


@dataclass(frozen=True)
class AttemptView(Fields):
    """One outbound HTTP request of a delivery and its answer."""

    id: int
    decision_id: int
    attempt: int
    resend_of: int | None
    method: str
    url: str
    headers: Mapping[str, str] = field(metadata=JSON)
    body: str
    http_status: int | None
    response: str | None
    error: str | None
    outcome: str
    due_at: float = field(metadata=TIME)
    sent_at: float | None = field(metadata=TIME)
    duration_ms: float | None


@dataclass(frozen=True)
class DecisionView:
    """The decision of one postback config for one conversion event."""

    id: int
    event_id: int
    postback: str
    kind: str
    verdict: str
    reasons: tuple[str, ...] = field(metadata=JSON_LIST)
    warnings: tuple[str, ...] = field(metadata=JSON_LIST)
    at: float = field(metadata=TIME)
    deliveries: tuple[AttemptView, ...] = ()
    # the request built but not sent (say, no access token), secrets masked; else None
    request: Mapping[str, Any] | None = field(default=None, metadata=JSON_OR_NONE)

    @property
    def mark(self) -> str:
        return mark_of(self.verdict, self.deliveries)


@dataclass(frozen=True)
class ConversionValues(Fields):
    """A conversion's current values: the API's, the export's and the trace's. The query
    fills each field from the conversions column of the same name (or the campaign's
    ``key``, as ``campaign``)."""

    id: int
    click_id: str
    campaign: str
    type: str | None
    status: str
    raw_status: str | None
    payout: float | None
    currency: str
    txid: str | None
    created_at: float = field(metadata=TIME)
    updated_at: float = field(metadata=TIME)
    manual: bool = field(default=False, metadata=FLAG)  # entered by hand (docs/support.md)


@dataclass(frozen=True)
class ConversionView(ConversionValues):
    """A conversion with its status history (None: not read, as in a list) and decisions
    (every event's, or only the latest event's in a list)."""

    history: tuple[EventView, ...] | None = None
    decisions: tuple[DecisionView, ...] = ()


@dataclass(frozen=True)
class Mark(Fields):
    """Where one postback config stands for a conversion, over all its events
    (``summary_of``): ``verdict`` is ``fired`` when the config fired at some event, else its
    latest verdict (``none``: no decision yet). ``config_id`` gives the config its fixed place:
    marks are in config id order, so a config added later never moves the older ones."""

    postback: str
    kind: str
    verdict: str
    mark: str
    config_id: int = 0


@dataclass(frozen=True)
class ConversionRow(ConversionValues):
    """A row of the dashboard's Live table: the values and one mark per postback config of
    its campaign, summing up every event (``summary_of``; the reasons are read with the
    detail, not for each of a flood). A field added here (with a default) is filled from the
    conversions column of its name, for the Live table only; one added to
    ``ConversionValues`` is also the API's and the export's."""

    marks: tuple[Mark, ...] = ()

    @property
    def settled(self) -> bool:
        """Whether no mark can change by itself any more."""
        return all(item.mark in SETTLED_MARKS for item in self.marks)


@dataclass(frozen=True)
class ChangeRow(Fields):
    """A row of Live's recent changes: one conversion event (``id`` is the event's), what it
    did (``change``: created or updated, and the ``status`` it set) at ``at``, and the
    conversion as it stands now."""

    id: int
    conversion_id: int
    at: float = field(metadata=TIME)
    change: str
    status: str
    conversion: ConversionRow

    @property
    def settled(self) -> bool:
        return self.conversion.settled


@dataclass(frozen=True)
class FailedAttempt:
    """A delivery attempt that ended failed: which config it was for and what it got."""

    id: int
    postback: str
    http_status: int | None
    error: str | None

    @property
    def answer(self) -> str:
        """What the target answered, in a few words: "HTTP 500", or the error."""
        if self.http_status is not None:
            return f"HTTP {self.http_status}"
        return (self.error or "no answer").split(";")[0]


@dataclass(frozen=True)
class DeliveryAlerts:
    """The header's delivery figures: attempts that ended failed (all time), deliveries now
    waiting for an automatic retry, and the failures newer than a given attempt id (how many,
    and the newest of them)."""

    failed: int = 0
    retrying: int = 0
    last_failed_id: int = 0  # the highest id of a failed attempt counted
    new_failures: int = 0
    newest: FailedAttempt | None = None


@dataclass(frozen=True)
class ConversionDetail:
    """Everything about one conversion: the conversion with its history and decisions, its
    click's external id and the inbound requests that made its events."""

    conversion: ConversionView
    external_id: str
    inbound: tuple[InboundView, ...]


@dataclass(frozen=True)
class AttemptRow(AttemptView):
    """A row of the dashboard's Deliveries table: an attempt with its decision and
    conversion."""

    postback: str
    kind: str
    verdict: str
    reasons: tuple[str, ...] = field(metadata=JSON_LIST)
    conversion_id: int
    click_id: str
    type: str | None
    status: str
    campaign: str


@dataclass(frozen=True)
class SinkRecordView(Fields):
    """A request a built-in sink received."""

    id: int
    received_at: float = field(metadata=TIME)
    method: str
    path: str
    query: str
    headers: Mapping[str, str] = field(metadata=JSON)
    body: str
    http_status: int


@dataclass(frozen=True)
class DecisionRow(Fields):
    """A decision as an exported row: with its conversion's click and campaign."""

    id: int
    conversion_id: int
    event_id: int
    click_id: str
    campaign: str
    postback: str
    kind: str
    verdict: str
    reasons: tuple[str, ...] = field(metadata=JSON_LIST)
    warnings: tuple[str, ...] = field(metadata=JSON_LIST)
    at: float = field(metadata=TIME)


@dataclass(frozen=True)
class ClickMatch:
    """A click that an external id or a transaction id names."""

    click_id: str
    campaign: str
    created_at: float = field(metadata=TIME)


@dataclass(frozen=True)
class Trace:
    """The whole story of a click: the click (None: no click has the id), every inbound
    request naming it, and every conversion with its history, decisions and attempts.

    ``traced`` is the id that was traced; ``matches`` every click it names, newest first
    (the first is the one traced; several when an external id or a transaction id is on
    more than one click); ``focus`` the conversion a transaction id belongs to;
    ``replays`` the replays of its requests, oldest first (a replay edited to name another
    click is not among ``inbound``)."""

    click: ClickView | None
    inbound: tuple[InboundView, ...]
    conversions: tuple[ConversionView, ...]
    traced: str = ""
    matches: tuple[ClickMatch, ...] = ()
    focus: int | None = None
    replays: tuple[ReplayView, ...] = ()

    def replays_of(self, inbound_id: int) -> list[ReplayView]:
        """The replays of one of its requests, oldest first."""
        return [replay for replay in self.replays if replay.replay_of == inbound_id]

    @property
    def focused(self) -> ConversionView | None:
        """The conversion the trace focuses on (a transaction id's), if any."""
        for conversion in self.conversions:
            if conversion.id == self.focus:
                return conversion
        return None

    @property
    def empty(self) -> bool:
        """Nothing at all is known about the id traced."""
        return self.click is None and not self.inbound

    def event_of(self, inbound_id: int) -> tuple[ConversionView, EventView] | None:
        """The conversion event an inbound request made, if it made one."""
        for conversion in self.conversions:
            for event in conversion.history or ():
                if event.inbound_id == inbound_id:
                    return conversion, event
        return None


class AttemptState(Protocol):
    """What the mark of a decision needs to know of its latest attempt."""

    @property
    def attempt(self) -> int: ...
    @property
    def outcome(self) -> str: ...
    @property
    def resend_of(self) -> int | None: ...


def mark_of(verdict: str, attempts: Sequence[AttemptState]) -> str:
    """The mark of one decision: its verdict, or for a fired one, where its delivery stands."""
    if verdict != "fired":
        return verdict
    if not attempts:
        return "fired"
    latest = attempts[-1]
    if latest.outcome == "pending":
        retried = latest.attempt > 1 and latest.resend_of is None
        return "retrying" if retried else "fired"
    return latest.outcome


def summary_of(marks: Sequence[str]) -> str:
    """The mark of one postback config for a whole conversion, from the marks of its decisions
    at each event (oldest first, ``mark_of`` each). When it fired at some event, where that
    delivery stands, the one that needs a look first: failed, retrying, sending (``fired``),
    delivered; so a deposit delivered at pending and skipped at its approval ("already
    fired") is delivered. When it never fired, its latest verdict: filtered or skipped (a
    config filtered at pending and disabled since is skipped now). No decision at all:
    ``none``."""
    fired = [mark for mark in marks if mark in FIRED_PRECEDENCE]
    if fired:
        return min(fired, key=FIRED_PRECEDENCE.index)
    return marks[-1] if marks else "none"
