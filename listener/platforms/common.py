"""What the ad-platform kinds share: the ``Platform`` each platform module declares, and the
steps every builder takes the same way: settings, secrets, event ids, click ids, value,
currency and order id, hashed user data, JSON.

Secrets (``access_token``, ``developer_token``) never leave this module unmasked except on the
wire: a builder records the request with the masked secret, and the kind's preparer puts the
real one back just before sending. Any setting may be written ``env:NAME`` to read it from the
environment; secrets are read again at send time, so a rotated token is used by the next retry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from listener.outbound import Built, Context, format_number
from listener.platforms import hashing
from store.platforms import SETTINGS, PlatformSettings
from store.records import Attempt

# Every platform's secret settings (access_token, developer_token), as store.platforms declares.
SECRET_KEYS = tuple(dict.fromkeys(key for p in SETTINGS.values() for key in p.secrets))
# Headers the ad platforms read credentials and account ids from (kept by the sink, masked).
SECRET_HEADERS = ("Authorization", "Access-Token", "developer-token")
PLATFORM_HEADERS = (*SECRET_HEADERS, "login-customer-id")
EMAIL_PARAMS = ("email", "em")
PHONE_PARAMS = ("phone", "ph")


class Missing(ValueError):
    """A value the request needs cannot be had; the message is the reason, for a person."""


# -- the declaration -------------------------------------------------------------------------

# The platform's own request, once the shared steps found its required settings (by name).
Request = Callable[["Platform", Context, Mapping[str, str]], Built]
Judge = Callable[[Attempt, int, str], "str | None"]
Preparer = Callable[[Attempt], Attempt]
# A sink's answer in the platform's shapes: (request body, error?) -> (status, JSON value).
Mimic = Callable[[str, bool], tuple[int, Any]]


@dataclass(frozen=True)
class Platform:
    """Everything postwatch knows of one ad platform; its module declares one, as ``PLATFORM``,
    and ``listener.platforms.PLATFORMS`` lists them all."""

    settings: PlatformSettings  # what its postback configs hold (store.platforms)
    label: str  # its name in sentences: "Meta", "Google Ads"
    required: tuple[str, ...]  # settings the request cannot do without
    click_ids: tuple[str, ...]  # click parameters it attributes by, preferred first
    request: Request  # the request, in the platform's documented shape (secrets masked)
    judge: Judge  # its answer in, the reason it is not delivered (or None) out
    prepare: Preparer  # the stored attempt in, the attempt with the real secrets out
    mimic: Mimic  # how a sink standing in for it answers

    def __post_init__(self) -> None:
        unknown = [key for key in self.required if key not in self.settings.keys]
        if unknown:
            raise ValueError(
                f"platform '{self.kind}' requires {', '.join(unknown)}, which its settings "
                "do not declare: add them to its PlatformSettings in store.platforms"
            )
        if not self.click_ids:
            raise ValueError(f"platform '{self.kind}' names no click id to attribute by")

    @property
    def kind(self) -> str:
        """The postback kind (``kind = "facebook"``)."""
        return self.settings.kind

    def build(self, ctx: Context) -> Built:
        """The request of a conversion, or the reason it cannot be made: the required
        settings are read first, then the platform lays out its request."""
        try:
            needed = {key: required(ctx, key) for key in self.required}
            return self.request(self, ctx, needed)
        except Missing as missing:
            return Built(None, str(missing))


# -- settings --------------------------------------------------------------------------------


def resolve(raw: object, what: str) -> str:
    """A setting as text; ``env:NAME`` reads the environment variable NAME."""
    text = "" if raw is None else str(raw).strip()
    if not text.startswith("env:"):
        return text
    name = text.removeprefix("env:").strip()
    value = os.environ.get(name, "").strip()
    if not value:
        raise Missing(f"{what} reads the environment variable {name}, which is not set")
    return value


def setting(ctx: Context, key: str, default: str = "") -> str:
    """A platform setting of the postback config, or ``default`` when it is not set."""
    raw = ctx.config.platform.get(key)
    return resolve(raw, f"'{key}' of postback '{ctx.config.name}'") or default


def required(ctx: Context, key: str) -> str:
    """A platform setting the request cannot do without."""
    value = setting(ctx, key)
    if not value:
        raise Missing(
            f"postback '{ctx.config.name}' has no {key}: set {key} in its "
            "[[campaigns.postbacks]] table"
        )
    return value


def base_url(ctx: Context, default: str) -> str:
    """Where requests go: the platform's own API, or a sink standing in for it."""
    return setting(ctx, "base_url", default).rstrip("/")


# -- secrets ---------------------------------------------------------------------------------


def mask(secret: str) -> str:
    """A secret as it may be stored and shown: its first four characters, then ****."""
    return secret[:4] + "****" if len(secret) >= 12 else "****"


def masked_secret(ctx: Context, key: str, label: str) -> tuple[str | None, str | None]:
    """The masked secret to record (None: none is configured), and the reason the request
    must not be sent (None: it can be)."""
    raw = ctx.config.platform.get(key)
    if raw is None or not str(raw).strip():
        return None, f"no {label}: request recorded, not sent"
    try:
        return mask(resolve(raw, f"the {label}")), None
    except Missing as missing:
        return "****", f"{missing}: request recorded, not sent"


def real_secret(platform: Mapping[str, Any], key: str, label: str) -> str:
    """The secret to send, read at send time. Raises ``Missing`` (a ValueError, so the
    attempt fails with this sentence) when it is no longer configured or readable."""
    raw = platform.get(key)
    if raw is None or not str(raw).strip():
        raise Missing(
            f"no {label} is configured for this postback any more: set {key}, then resend"
        )
    return resolve(raw, f"the {label}")


def masked_settings(platform: Mapping[str, Any]) -> dict[str, Any]:
    """Platform settings fit to show: secrets masked (an ``env:NAME`` reference is shown,
    since it names the variable, not the value)."""
    shown = dict(platform)
    for key in SECRET_KEYS:
        value = shown.get(key)
        if value and not str(value).startswith("env:"):
            shown[key] = mask(str(value))
    return shown


def with_query(url: str, name: str, value: str) -> str:
    """The URL with query parameter ``name`` set to ``value`` (replacing any)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def masked_query(query: str) -> str:
    """A query string with an ``access_token`` value masked (the sink records it so)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name in SECRET_KEYS for name, _ in pairs):
        return query
    return urlencode(
        [(k, mask(v) if k in SECRET_KEYS else v) for k, v in pairs],
        safe="*",
    )


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The ad-platform headers of a request, secrets masked."""
    shown: dict[str, str] = {}
    for name in PLATFORM_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if name in SECRET_HEADERS:
            scheme, _, secret = value.rpartition(" ")
            value = f"{scheme} {mask(secret)}" if scheme else mask(secret)
        shown[name] = value
    return shown


# -- the event -------------------------------------------------------------------------------


def event_id(ctx: Context) -> str:
    """The platform's deduplication id: one per conversion and postback config, so every
    retry and resend (and a refire) carries the same one."""
    return f"pw-{ctx.conversion.id}-{ctx.config.id}"


def mapped_name(ctx: Context) -> str | None:
    """What ``event_names`` maps the conversion's type to, if anything."""
    names = ctx.config.platform.get("event_names")
    if not isinstance(names, Mapping) or ctx.conversion.type is None:
        return None
    name = names.get(ctx.conversion.type)
    return str(name) if name else None


def event_name(ctx: Context, fallback: str) -> tuple[str, list[str]]:
    """The event name (``event_names``, else the conversion type) and any warning."""
    name = mapped_name(ctx) or ctx.conversion.type
    if name:
        return name, []
    return fallback, [f"the conversion has no type: the event was sent as '{fallback}'"]


@dataclass(frozen=True)
class ClickId:
    """The platform click id a request is attributed by."""

    name: str  # fbclid, gclid, …
    value: str  # exactly as the tracking link passed it
    warnings: list[str] = field(default_factory=list)


def _either(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def click(ctx: Context, platform: Platform) -> ClickId:
    """The click's platform click id (the first of the platform's ``click_ids`` it has), with
    a warning when it had several: a platform takes exactly one."""
    names = platform.click_ids
    present = [name for name in names if ctx.click.params.get(name, "").strip()]
    if not present:
        how = (
            f"by the {names[0]}, so pass {names[0]}"
            if len(names) == 1
            else "by one of them, so pass it"
        )
        raise Missing(
            f"the click has no {_either(names)}: {platform.label} attributes a conversion to "
            f"its ad click {how} on the tracking link (/click/{ctx.campaign.key}?{names[0]}=…)"
        )
    name = present[0]
    warnings = []
    if len(present) > 1:
        warnings.append(
            f"the click has {', '.join(present)}: only {name} was sent ({platform.label} "
            "takes exactly one click id)"
        )
    return ClickId(name, ctx.click.params[name], warnings)


def value(ctx: Context) -> float | None:
    """The payout as a JSON number (plain decimals, no float noise), or None."""
    payout = ctx.conversion.payout
    return None if payout is None else float(format_number(payout))


def currency(ctx: Context) -> str:
    """The currency code sent: the postback config's ``currency``, else the conversion's."""
    return setting(ctx, "currency") or ctx.conversion.currency


def value_warnings(ctx: Context) -> list[str]:
    if ctx.conversion.payout is None:
        return ["the conversion has no payout: the event was sent without a value"]
    return []


def amounts(
    ctx: Context, value_key: str, currency_key: str, order_key: str
) -> tuple[dict[str, Any], list[str]]:
    """The conversion's value (when it has a payout), currency and order id (its txid, when
    it has one), under the platform's names, and a warning when there is no value."""
    found: dict[str, Any] = {}
    payout = value(ctx)
    if payout is not None:
        found[value_key] = payout
    found[currency_key] = currency(ctx)
    if ctx.conversion.txid:
        found[order_key] = ctx.conversion.txid
    return found, value_warnings(ctx)


def user_data(
    ctx: Context, email: hashing.Normaliser, phone: hashing.Normaliser
) -> tuple[str | None, str | None, list[str]]:
    """The click's email and phone (parameters ``email``/``em``, ``phone``/``ph``), each
    normalised by the platform's rules and hashed, with a warning for one that cannot be."""
    warnings: list[str] = []
    found: list[str | None] = []
    for names, normalise, what in (
        (EMAIL_PARAMS, email, "an email address"),
        (PHONE_PARAMS, phone, "a phone number with its country code"),
    ):
        name = next((n for n in names if ctx.click.params.get(n, "").strip()), None)
        if name is None:
            found.append(None)
            continue
        digest = hashing.hashed(ctx.click.params[name], normalise)
        if digest is None:
            warnings.append(f"click parameter {name} is not {what}: it was not sent")
        found.append(digest)
    return found[0], found[1], warnings


def identifiers(
    ctx: Context,
    email: tuple[str, hashing.Normaliser],
    phone: tuple[str, hashing.Normaliser],
) -> tuple[dict[str, str], list[str]]:
    """The click's hashed email and phone under the platform's names (``("em", rule)``),
    those it has only, and a warning for each one that cannot be normalised."""
    email_digest, phone_digest, warnings = user_data(ctx, email[1], phone[1])
    found = {
        key: digest
        for key, digest in ((email[0], email_digest), (phone[0], phone_digest))
        if digest is not None
    }
    return found, warnings


# -- JSON ------------------------------------------------------------------------------------


def to_json(body: Mapping[str, Any]) -> str:
    """The body as sent (UTF-8 JSON, values kept exactly)."""
    return json.dumps(body, ensure_ascii=False)


def from_json(text: str) -> Any:
    """A platform's answer as JSON, or None when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def requested(body: str, key: str) -> list[dict[str, Any]]:
    """The objects a request body lists under ``key`` (for a mimicked answer)."""
    request = from_json(body)
    items = request.get(key) if isinstance(request, dict) else None
    return [item for item in items or [] if isinstance(item, dict)]


# A sink answering like a platform puts this where the platform puts its trace or request id,
# so a demo never passes its answers off as the platform's own.
TRACE_ID = "postwatch-sink"


def error_object(answer: Any) -> dict[str, Any] | None:
    """The ``{"error": {...}}`` object of an answer, if it has one."""
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return dict(answer["error"])
    return None
