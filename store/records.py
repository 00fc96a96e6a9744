"""The domain records, as plain dataclasses, in the product's own words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from store.platforms import SETTINGS as PLATFORM_SETTINGS

STATUSES = ("approved", "pending", "declined", "other")
DUPLICATE_MODES = ("update", "new", "ignore")
KINDS = ("s2s", *PLATFORM_SETTINGS)  # S2S, then each ad platform declared in store.platforms
VERDICTS = ("fired", "filtered", "skipped")
OUTCOMES = ("pending", "retrying", "delivered", "failed")
# How a sink can misbehave: never answer, reset the connection mid-body, trickle the body one
# byte a second, or close the connection without answering.
SINK_FAULTS = ("hang", "reset", "slow_body", "close")


class Given:
    """The keys a config file gave for a record (``None``: every key, as for a record made in
    code). The parser sets it; ``apply_workspace`` writes only these keys over a stored row,
    so a key the file leaves out keeps its stored value. A plain class attribute, not a
    dataclass field: it takes no part in equality, ``asdict`` or ``repr``."""

    given: frozenset[str] | None = None


@dataclass
class OfferSource(Given):
    """The affiliate network that reports conversions."""

    name: str
    default_status: str = "pending"
    duplicates: str = "update"
    status_aliases: dict[str, str] = field(default_factory=dict)
    id: int | None = None


@dataclass
class TrafficSource(Given):
    """Where the clicks were bought; receives the outbound S2S postbacks."""

    name: str
    click_id_param: str = "ref_id"
    postback_url: str = ""
    success_body: str = ""
    failure_body: str = ""
    id: int | None = None


@dataclass
class PostbackConfig(Given):
    """One outbound postback of a campaign and its conditional rule."""

    name: str
    kind: str = "s2s"
    url: str = ""
    method: str = "GET"
    body: str = ""
    enabled: bool = True
    conditional: bool = False
    types: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    min_payout: float | None = None
    refire_on_update: bool = False
    platform: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    campaign_id: int | None = None


@dataclass
class Campaign(Given):
    """Ties one traffic source to one offer source; owns the postback configs."""

    key: str
    name: str
    traffic_source: str
    offer_source: str
    offer_url: str = ""
    postbacks: list[PostbackConfig] = field(default_factory=list)
    id: int | None = None


@dataclass
class Sink(Given):
    """How a built-in sink answers."""

    name: str
    status: int = 200
    body: str = "OK"
    delay_ms: int = 0
    fail_ratio: float = 0.0
    mimic: str = ""  # "" or an ad-platform kind: answer in that platform's shapes
    error: bool = False  # with mimic: answer with the platform's documented error
    fault: str = ""  # "" or one of SINK_FAULTS: misbehave like a broken target, for demos and tests
    retry_after: int = 0  # seconds sent in a Retry-After header (0: no header)


@dataclass
class Settings(Given):
    """Listener and delivery settings (the ``[listener]`` and ``[delivery]`` tables)."""

    host: str = "127.0.0.1"
    port: int = 8080
    unknown_clicks: str = "reject"
    timeout: float = 10.0
    retry_schedule: list[float] = field(default_factory=lambda: [10, 60, 300, 1800, 7200, 21600])
    per_target: int = 8  # attempts in flight at once to one target (host:port)
    keep_days: int = 0  # [storage]: 0 keeps everything
    currency: str = "USD"
    max_body: int = 64 * 1024
    key: str = ""
    allow_ips: list[str] = field(default_factory=list)
    trusted_proxies: list[str] = field(default_factory=list)  # whose X-Forwarded-For is believed
    token: str = ""  # the JSON API's token (made up and stored when binding beyond loopback)
    keys: dict[str, str] = field(default_factory=dict)  # dashboard binding id -> keys


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
    params: dict[str, str]
    created_at: float


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
    headers: dict[str, str]
    body: str
    success_body: str
    failure_body: str
    platform: dict[str, Any]
    due_at: float = 0.0
