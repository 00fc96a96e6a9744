"""Reading a postback's parameters in every dialect postwatch accepts (the rejections and
their order: README, "Decisions").

Pure functions: the request's merged parameters in, a ``Postback`` (or a ``Rejection``) out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from store.records import STATUSES, OfferSource

# The first name of each is RedTrack's; the rest are the aliases other trackers use.
CLICK_ID = ("clickid", "cid", "click_id", "subid", "cnv_id")
PAYOUT = ("sum", "payout", "revenue", "amount")
TYPE = ("type", "et", "event", "goal")
STATUS = ("status", "cnv_status", "conv_status")
TXID = ("txid", "tid", "transaction_id")
CURRENCY = ("currency", "cur", "cnv_currency")

_VALUES = (
    ("payout", PAYOUT),
    ("type", TYPE),
    ("status", STATUS),
    ("txid", TXID),
    ("currency", CURRENCY),
)

_MACRO = re.compile(r"^(\{.*\}|\$\{.*\}|#.*#|\[.*\]|%.*%|REPLACE)$", re.IGNORECASE)


class Rejection(Exception):
    """An inbound request postwatch refuses, with the HTTP status and a plain-words reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Postback:
    """A postback's values, and which parameter name each was read from."""

    click_id: str
    payout: str | None = None  # as sent: parse_payout reads it after the click lookup
    type: str | None = None
    raw_status: str | None = None
    txid: str | None = None
    currency: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def looks_like_macro(value: str) -> bool:
    """Whether a value is a placeholder the sender forgot to fill in."""
    return not value.strip() or bool(_MACRO.match(value.strip()))


def _pick(params: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        if name in params:
            return name, params[name]
    return None


def parse_payout(value: str) -> float:
    """A payout as a finite number, or a ``Rejection`` that names the value."""
    try:
        payout = float(value.strip())
    except ValueError:
        payout = math.nan
    if not math.isfinite(payout):
        raise Rejection(
            400, f"payout '{value}' is not a number: send a plain decimal such as 12.50"
        )
    return payout


def parse_postback(params: Mapping[str, str]) -> Postback:
    """Read a postback's parameters; raise ``Rejection`` for a missing or unfilled click id.
    The payout is kept as sent (see ``parse_payout``)."""
    found = _pick(params, CLICK_ID)
    if found is None:
        raise Rejection(400, f"no click id: looked for {', '.join(CLICK_ID)}")
    name, click_id = found
    if looks_like_macro(click_id):
        shown = click_id or "(empty)"
        raise Rejection(
            400,
            f"click id '{shown}' in '{name}' looks like an unreplaced macro: the sender did not "
            "fill it in; check the postback URL's click id macro in the network's settings",
        )
    postback = Postback(click_id=click_id.strip(), aliases={"click id": name})
    for label, names in _VALUES:
        picked = _pick(params, names)
        if picked is None:
            continue
        param, value = picked[0], picked[1].strip()
        if not value:
            continue
        postback.aliases[label] = param
        if label == "payout":
            postback.payout = picked[1]  # as sent, for the error message
            continue
        if looks_like_macro(value):
            postback.warnings.append(
                f"{label} '{value}' in '{param}' looks like an unreplaced macro"
            )
        if label == "type":
            postback.type = value
        elif label == "status":
            postback.raw_status = value
        elif label == "txid":
            postback.txid = value
        else:
            postback.currency = value.upper()
    return postback


class StatusResolution(NamedTuple):
    status: str
    how: str  # a sentence: which alias matched, or that the default applied
    warning: str | None = None


def resolve_status(raw: str | None, offer_source: OfferSource) -> StatusResolution:
    """Map a raw status through the offer source's aliases to one of the four statuses."""
    if raw is None:
        return StatusResolution(
            offer_source.default_status,
            f"no status was sent: default status '{offer_source.default_status}' "
            f"of offer source '{offer_source.name}' applied",
        )
    folded = raw.casefold()
    mapped = next(
        (value for key, value in offer_source.status_aliases.items() if key.casefold() == folded),
        None,
    )
    candidate = mapped if mapped is not None else raw
    if candidate.casefold() in STATUSES:
        status = candidate.casefold()
        if mapped is not None:
            how = f"status '{raw}' is an alias of '{status}' (offer source '{offer_source.name}')"
        elif raw == status:
            how = f"status '{raw}', as sent"
        else:
            how = f"status '{raw}' read as '{status}' (case is ignored)"
        return StatusResolution(status, how)
    return StatusResolution(
        "other",
        f"status '{raw}' maps to no known status: recorded as 'other'",
        f"status '{raw}' maps to no known status, so it is recorded as 'other': add it to "
        f"the status_aliases of offer source '{offer_source.name}'",
    )


def type_warning(conversion_type: str | None, known: list[str]) -> str | None:
    """A warning for a conversion type that is not one of the known ones."""
    if conversion_type is None or conversion_type in known:
        return None
    near = [name for name in known if name.casefold() == conversion_type.casefold()]
    hint = f" (did you mean '{near[0]}'? types are case-sensitive)" if near else ""
    listed = ", ".join(known) or "none are defined"
    return f"conversion type '{conversion_type}' is not a known type ({listed}){hint}"
