"""Outbound requests: what a builder reads and returns, macro expansion, and the S2S kind.

Pure functions. S2S postbacks expand a URL template's macros; ``listener.kinds`` maps each
postback kind to its builder.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from store.records import Attempt, Campaign, Click, Conversion, PostbackConfig, TrafficSource

_MACRO = re.compile(r"\{([A-Za-z0-9_]+)\}")

# Every macro a URL or body template may use, with what it holds (``macro_values`` fills
# them); besides these, each parameter of the click (sub1, ...) is a macro of its own name.
MACROS: dict[str, str] = {
    "external_id": "the traffic source's click id, from the click",
    "externalid": "the same as external_id",
    "clickid": "postwatch's click id",
    "payout": "the conversion's payout (empty when none was sent)",
    "sum": "the same as payout",
    "currency": "the conversion's currency",
    "status": "the status: approved, pending, declined or other",
    "raw_status": "the status as the offer source sent it",
    "type": "the conversion type",
    "txid": "the transaction id",
    "campaign": "the campaign key",
    "timestamp": "the time of sending, Unix seconds",
}


@dataclass
class Outbound:
    """What a postback config would send for a conversion."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass
class Context:
    """Everything a builder may read."""

    config: PostbackConfig
    conversion: Conversion
    click: Click
    campaign: Campaign
    traffic_source: TrafficSource
    now: float = field(default_factory=time.time)


@dataclass
class Built:
    """A builder's result: the request, or the reason it cannot be made, and warnings."""

    request: Outbound | None
    missing: str | None = None
    warnings: list[str] = field(default_factory=list)


def format_number(value: float) -> str:
    """A payout as plain decimal text: 12.5, 100, 0.0001 (never 1e-04)."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def macros_in(template: str) -> list[str]:
    """The macro names a template uses, in order, each once."""
    return list(dict.fromkeys(_MACRO.findall(template)))


def unknown_macros(template: str, params: Iterable[str]) -> list[str]:
    """The macros of ``template`` that are neither in ``MACROS`` nor one of ``params`` (the
    click parameters known): a delivery would send them empty."""
    known = set(params)
    return [name for name in macros_in(template) if name not in MACROS and name not in known]


def named_values(items: Iterable[str]) -> dict[str, str]:
    """Macro values given as ``NAME=VALUE`` (``payout=5``, ``sub1=fr``), as a test postback
    takes them; a ValueError names the item that is not."""
    values = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise ValueError(f"{item!r} is not NAME=VALUE (say payout=5)")
        values[name] = value
    return values


def macro_values(ctx: Context) -> dict[str, str]:
    """The value of every macro for a conversion: its click's parameters, then ``MACROS``."""
    conversion = ctx.conversion
    payout = "" if conversion.payout is None else format_number(conversion.payout)
    values = dict(ctx.click.params)
    values.update(
        {
            "external_id": ctx.click.external_id,
            "externalid": ctx.click.external_id,
            "clickid": ctx.click.id,
            "payout": payout,
            "sum": payout,
            "currency": conversion.currency,
            "status": conversion.status,
            "raw_status": conversion.raw_status or "",
            "type": conversion.type or "",
            "txid": conversion.txid or "",
            "campaign": ctx.campaign.key,
            "timestamp": str(int(ctx.now)),
        }
    )
    return values


def expand(
    template: str, values: dict[str, str], encode: Callable[[str], str]
) -> tuple[str, list[str]]:
    """Replace every ``{macro}``; return the text and a warning per unknown macro or empty
    value."""
    warnings: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            warnings.append(f"unknown macro {{{name}}} was left empty")
            return ""
        if not values[name]:
            warnings.append(f"macro {{{name}}} has no value for this conversion")
        return encode(values[name])

    return _MACRO.sub(replace, template), warnings


def _url_encode(value: str) -> str:
    return quote(value, safe="")


def _json_encode(value: str) -> str:
    return json.dumps(value)[1:-1]


def build_s2s(ctx: Context) -> Built:
    template = ctx.config.url or ctx.traffic_source.postback_url
    if not template:
        return Built(
            None,
            f"no postback URL: set url on postback '{ctx.config.name}' or postback_url on "
            f"traffic source '{ctx.traffic_source.name}'",
        )
    uses = set(_MACRO.findall(template + ctx.config.body))
    if uses & {"external_id", "externalid"} and not ctx.click.external_id:
        return Built(
            None,
            f"the click has no external id: the traffic source '{ctx.traffic_source.name}' "
            f"parameter '{ctx.traffic_source.click_id_param}' was empty on the click",
        )
    values = macro_values(ctx)
    url, warnings = expand(template, values, _url_encode)
    body = ""
    method = ctx.config.method.upper()
    headers: dict[str, str] = {}
    if method == "POST" and ctx.config.body:
        is_json = ctx.config.body.lstrip().startswith(("{", "["))
        body, body_warnings = expand(
            ctx.config.body, values, _json_encode if is_json else _url_encode
        )
        warnings += body_warnings
        headers["Content-Type"] = (
            "application/json" if is_json else "application/x-www-form-urlencoded"
        )
    return Built(Outbound(method, url, headers, body), warnings=warnings)


def judge_s2s(attempt: Attempt, status: int, body: str) -> str | None:
    """Why an S2S answer does not count as delivered, or None when it does."""
    if not 200 <= status < 300:
        return f"HTTP {status}: only a 2xx answer counts as delivered"
    if attempt.failure_body and re.search(attempt.failure_body, body):
        return f"the answer matches the traffic source's failure_body '{attempt.failure_body}'"
    if attempt.success_body and not re.search(attempt.success_body, body):
        return (
            f"the answer does not match the traffic source's success_body '{attempt.success_body}'"
        )
    return None
