"""The domain records, as plain dataclasses, in the product's own words.

Each configuration record (offer source, traffic source, postback config, campaign, sink,
settings) is declared once, here: a field's ``Key`` (in its dataclass metadata) says how the
config file gives it and how it is checked, and how SQLite stores it. ``store.config`` reads,
checks and writes the file from these declarations and ``store.workspace`` reads and writes
the rows from them, so a new field is one line in its class.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import StrEnum
from typing import Any, Final, Literal

from store.platforms import SETTINGS as PLATFORM_SETTINGS
from store.rows import JSON

# -- typed names -----------------------------------------------------------------------------
# StrEnum members equal their strings, so rows, JSON and the config file hold the plain words.


class Status(StrEnum):
    """A conversion's status, after the offer source's aliases."""

    APPROVED = "approved"
    PENDING = "pending"
    DECLINED = "declined"
    OTHER = "other"


class DuplicateMode(StrEnum):
    """What an offer source's repeated postback for the same click does."""

    UPDATE = "update"
    NEW = "new"
    IGNORE = "ignore"


class Verdict(StrEnum):
    """What the rule decided for one postback config and one conversion event."""

    FIRED = "fired"
    FILTERED = "filtered"
    SKIPPED = "skipped"


class Outcome(StrEnum):
    """Where a delivery attempt stands."""

    PENDING = "pending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"


class SinkFault(StrEnum):
    """How a sink can misbehave: never answer, reset the connection mid-body, trickle the body
    one byte a second, or close the connection without answering (NONE: answer normally)."""

    NONE = ""
    HANG = "hang"
    RESET = "reset"
    SLOW_BODY = "slow_body"
    CLOSE = "close"


# A postback config's kind: S2S, then each ad platform declared in store.platforms. Plain
# strings rather than an enum, because the platforms are a registry: a new platform module
# adds a kind without touching this file.
S2S: Final = "s2s"
KINDS: tuple[str, ...] = (S2S, *PLATFORM_SETTINGS)

STATUSES: tuple[str, ...] = tuple(Status)  # str: the dashboard offers them as choices
DUPLICATE_MODES: tuple[DuplicateMode, ...] = tuple(DuplicateMode)
SINK_FAULTS: tuple[SinkFault, ...] = tuple(fault for fault in SinkFault if fault)
METHODS = ("GET", "POST")

# -- how a configuration field is given, checked and stored -----------------------------------

# A check of a value the file gives: (key, value) -> the sentence saying what is wrong and
# what to use, or None when the value is fine. It sees the value as TOML gave it.
Check = Callable[[str, Any], str | None]


@dataclass(frozen=True)
class Key:
    """How one field of a configuration record is given in the config file, checked, and
    stored in SQLite. A field without a ``Key`` (``id``, ``campaign_id``) is a column only."""

    kind: type | tuple[type, ...] = str  # the TOML type(s) the file may give
    items: type | None = None  # for a list: the type of every item
    choices: tuple[str, ...] = ()  # the values allowed, in the order errors list them
    check: Check | None = None
    convert: Callable[[Any], Any] | None = None  # the checked value (or a stored one) as kept
    required: bool = False  # the file must give it (a non-empty text)
    secret: bool = False  # written as the mask on export; the mask keeps the stored value
    table: str = ""  # Settings only: the TOML table holding it ("" is the top level)
    toml: Literal["value", "tables", ""] = "value"  # a key; nested [[...]] tables; not in the file
    column: str | None = ""  # the SQL column ("": the field's name; None: no column)
    refers: str = ""  # the column holds the id of the row of this table with this name


def meta(**how: Any) -> dict[str, Key]:
    """A field's metadata holding its ``Key``:
    ``method: str = field(default="GET", metadata=meta(check=_method))``."""
    return {"key": Key(**how)}


def key_of(declared: Field[Any]) -> Key | None:
    """The ``Key`` a field was declared with, or None for a column-only field."""
    found = declared.metadata.get("key")
    return found if isinstance(found, Key) else None


def config_fields(record: type, table: str | None = None) -> Iterator[tuple[Field[Any], Key]]:
    """The fields of a record the config file gives as keys (of one Settings ``table``)."""
    for declared in fields(record):
        spec = key_of(declared)
        if spec is not None and spec.toml and (table is None or spec.table == table):
            yield declared, spec


def key_named(record: type, name: str) -> Key:
    """The ``Key`` of one field of a record."""
    for declared, spec in config_fields(record):
        if declared.name == name:
            return spec
    raise KeyError(f"{record.__name__} declares no config key '{name}'")


def default_of(declared: Field[Any]) -> Any:
    """A field's default value (a fresh one for a list or a table; None when it has none)."""
    if callable(declared.default_factory):
        return declared.default_factory()
    return None if declared.default is MISSING else declared.default


# -- checks, named in the words of their error sentences ---------------------------------------


def between(low: float, high: float, hint: str) -> Check:
    """A number from ``low`` to ``high``; the sentence ends with ``hint``."""
    return lambda name, value: None if low <= value <= high else f"'{name}' is {value}; {hint}"


def _fraction(name: str, value: Any) -> str | None:
    return None if 0 <= value <= 1 else f"'{name}' is {float(value)}; use 0 to 1"


def _seconds_above_zero(name: str, value: Any) -> str | None:
    return None if value > 0 else f"'{name}' is {float(value):g}; use seconds above 0"


def _seconds_list(name: str, value: list[Any]) -> str | None:
    if all(isinstance(s, int | float) and not isinstance(s, bool) and s >= 0 for s in value):
        return None
    return f"'{name}' must list seconds (0 or more), not {value!r}"


def _regex(name: str, value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as error:
        return f"'{name}' is not a valid regular expression: {error}"
    return None


def _networks(name: str, value: list[str]) -> str | None:
    """A list of addresses or networks (``10.0.0.1``, ``10.0.0.0/8``, ``::1``)."""
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"'{name}' holds {item!r}, which is not an address or a network"
    return None


def _unknown_clicks(name: str, value: str) -> str | None:
    if value == "reject" or (value.startswith("attach:") and len(value) > len("attach:")):
        return None
    return f"'{name}' is '{value}'; use \"reject\" or \"attach:<campaign key>\""


def _method(name: str, value: str) -> str | None:
    method = value.upper()
    return None if method in METHODS else f"'{name}' is '{method}'; use GET or POST"


def _statuses(name: str, value: list[str]) -> str | None:
    for status in value:
        if status not in STATUSES:
            return f"status '{status}' is not one of: {', '.join(STATUSES)}"
    return None


def _status_aliases(name: str, value: dict[str, Any]) -> str | None:
    for raw, status in value.items():
        if status not in STATUSES:
            return (
                f"status alias '{raw}' maps to '{status}'; map it to one of: {', '.join(STATUSES)}"
            )
    return None


def _mimic(name: str, value: str) -> str | None:
    if not value or value in PLATFORM_SETTINGS:
        return None
    return f"'{name}' is '{value}'; use one of: {', '.join(PLATFORM_SETTINGS)} (or leave it out)"


def _statuses_of(values: list[str]) -> list[Status]:
    return [Status(value) for value in values]


def _aliases_of(values: dict[str, Any]) -> dict[str, Status]:
    return {str(raw): Status(status) for raw, status in values.items()}


_NUMBER = (int, float)


# -- the configuration records -----------------------------------------------------------------


class Given:
    """The keys a config file gave for a record (``None``: every key, as for a record made in
    code). The parser sets it; ``apply_workspace`` writes only these keys over a stored row,
    so a key the file leaves out keeps its stored value. A plain class attribute, not a
    dataclass field: it takes no part in equality, ``asdict`` or ``repr``."""

    given: frozenset[str] | None = None


@dataclass
class OfferSource(Given):
    """The affiliate network that reports conversions. Its statuses are ``Status`` names and
    its duplicate mode a ``DuplicateMode`` name (plain ``str`` in the annotations, so code that
    writes the words keeps type-checking; the readers give enum members)."""

    name: str = field(metadata=meta(required=True))
    default_status: str = field(
        default=Status.PENDING, metadata=meta(choices=STATUSES, convert=Status)
    )
    duplicates: str = field(
        default=DuplicateMode.UPDATE, metadata=meta(choices=DUPLICATE_MODES, convert=DuplicateMode)
    )
    status_aliases: dict[str, str] = field(
        default_factory=dict, metadata=meta(kind=dict, check=_status_aliases, convert=_aliases_of)
    )
    id: int | None = None


@dataclass
class TrafficSource(Given):
    """Where the clicks were bought; receives the outbound S2S postbacks."""

    name: str = field(metadata=meta(required=True))
    click_id_param: str = field(default="ref_id", metadata=meta())
    postback_url: str = field(default="", metadata=meta())
    success_body: str = field(default="", metadata=meta(check=_regex))
    failure_body: str = field(default="", metadata=meta(check=_regex))
    id: int | None = None


@dataclass
class PostbackConfig(Given):
    """One outbound postback of a campaign and its conditional rule. Its ad-platform settings
    (``platform``) are keys of its table in the file, one JSON column in SQLite."""

    name: str = field(metadata=meta(required=True))
    kind: str = field(default=S2S, metadata=meta(choices=KINDS))
    url: str = field(default="", metadata=meta())
    method: str = field(default="GET", metadata=meta(check=_method, convert=str.upper))
    body: str = field(default="", metadata=meta())
    enabled: bool = field(default=True, metadata=meta(kind=bool))
    conditional: bool = field(default=False, metadata=meta(kind=bool))
    types: list[str] = field(default_factory=list, metadata=meta(kind=list, items=str))
    statuses: list[str] = field(
        default_factory=list,
        metadata=meta(kind=list, items=str, check=_statuses, convert=_statuses_of),
    )
    min_payout: float | None = field(default=None, metadata=meta(kind=_NUMBER, convert=float))
    refire_on_update: bool = field(default=False, metadata=meta(kind=bool))
    platform: dict[str, Any] = field(default_factory=dict, metadata=meta(kind=dict, toml=""))
    id: int | None = None
    campaign_id: int | None = None


# The fields of a postback config that make its conditional rule (saved by the dashboard).
RULE_FIELDS = ("enabled", "conditional", "types", "statuses", "min_payout", "refire_on_update")


@dataclass
class Campaign(Given):
    """Ties one traffic source to one offer source; owns the postback configs."""

    key: str = field(metadata=meta(required=True))
    name: str = field(metadata=meta())  # the file may leave it out: the campaign's key
    traffic_source: str = field(
        metadata=meta(required=True, column="traffic_source_id", refers="traffic_sources")
    )
    offer_source: str = field(
        metadata=meta(required=True, column="offer_source_id", refers="offer_sources")
    )
    offer_url: str = field(default="", metadata=meta())
    postbacks: list[PostbackConfig] = field(
        default_factory=list, metadata=meta(kind=list, toml="tables", column=None)
    )
    id: int | None = None


@dataclass
class Sink(Given):
    """How a built-in sink answers."""

    name: str = field(metadata=meta(required=True))
    status: int = field(
        default=200,
        metadata=meta(kind=int, check=between(100, 599, "use an HTTP status, 100 to 599")),
    )
    body: str = field(default="OK", metadata=meta())
    delay_ms: int = field(default=0, metadata=meta(kind=int))
    fail_ratio: float = field(
        default=0.0, metadata=meta(kind=_NUMBER, check=_fraction, convert=float)
    )
    # "" or an ad-platform kind: answer in that platform's shapes
    mimic: str = field(default="", metadata=meta(check=_mimic))
    # with mimic: answer with the platform's documented error
    error: bool = field(default=False, metadata=meta(kind=bool))
    # misbehave like a broken target, for demos and tests
    fault: SinkFault = field(
        default=SinkFault.NONE, metadata=meta(choices=tuple(SinkFault), convert=SinkFault)
    )
    # seconds sent in a Retry-After header (0: no header)
    retry_after: int = field(
        default=0, metadata=meta(kind=int, check=between(0, math.inf, "use 0 or more seconds"))
    )


@dataclass
class Settings(Given):
    """Listener, delivery and storage settings (the ``[listener]``, ``[delivery]`` and
    ``[storage]`` tables, and ``currency`` and ``[keys]`` at the top level of the file)."""

    host: str = field(default="127.0.0.1", metadata=meta(table="listener"))
    port: int = field(
        default=8080,
        metadata=meta(kind=int, table="listener", check=between(1, 65535, "use 1 to 65535")),
    )
    unknown_clicks: str = field(
        default="reject", metadata=meta(table="listener", check=_unknown_clicks)
    )
    timeout: float = field(
        default=10.0,
        metadata=meta(kind=_NUMBER, table="delivery", check=_seconds_above_zero, convert=float),
    )
    retry_schedule: list[float] = field(
        default_factory=lambda: [10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0],
        metadata=meta(
            kind=list,
            table="delivery",
            check=_seconds_list,
            convert=lambda schedule: [float(s) for s in schedule],
        ),
    )
    # attempts in flight at once to one target (host:port)
    per_target: int = field(
        default=8,
        metadata=meta(
            kind=int, table="delivery", check=between(1, 64, "use 1 to 64 attempts at once")
        ),
    )
    # [storage]: 0 keeps everything
    keep_days: int = field(default=0, metadata=meta(kind=int, table="storage"))
    currency: str = field(default="USD", metadata=meta())
    max_body: int = field(default=64 * 1024, metadata=meta(kind=int, table="listener"))
    key: str = field(default="", metadata=meta(table="listener", secret=True))
    allow_ips: list[str] = field(
        default_factory=list, metadata=meta(kind=list, items=str, table="listener", check=_networks)
    )
    # whose X-Forwarded-For is believed
    trusted_proxies: list[str] = field(
        default_factory=list, metadata=meta(kind=list, items=str, table="listener", check=_networks)
    )
    # the JSON API's token (made up and stored when binding beyond loopback)
    token: str = field(default="", metadata=meta(table="listener", secret=True))
    # dashboard binding id -> keys (the [keys] table)
    keys: dict[str, str] = field(default_factory=dict, metadata=meta(kind=dict))


@dataclass
class Workspace:
    """Everything a config file holds."""

    conversion_types: list[str] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)
    sinks: list[Sink] = field(default_factory=list)
    offer_sources: list[OfferSource] = field(default_factory=list)
    traffic_sources: list[TrafficSource] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)


@dataclass
class Click:
    """One visit through a campaign's tracking link."""

    id: str
    campaign_id: int
    external_id: str
    params: dict[str, str] = field(metadata=JSON)
    created_at: float
    seq: int = 0  # its row's sequence number, once stored (what its conversions name it by)


@dataclass
class Conversion:
    """The current state of a conversion, as the rule engine sees it."""

    id: int
    click_id: str
    campaign_id: int
    type: str | None
    status: str
    raw_status: str | None
    payout: float | None
    currency: str
    txid: str | None


@dataclass
class InboundRequest:
    """A request as it arrived, stored raw before anything else."""

    received_at: float
    endpoint: str  # click | postback
    method: str
    path: str
    query: str
    body: str
    remote: str
    headers: dict[str, str]


@dataclass
class Attempt:
    """One outbound HTTP request of a delivery, ready to send."""

    id: int
    decision_id: int
    attempt: int
    resend_of: int | None
    kind: str
    method: str
    url: str
    headers: dict[str, str] = field(metadata=JSON)
    body: str
    success_body: str
    failure_body: str
    platform: dict[str, Any] = field(metadata=JSON)
    due_at: float = 0.0
