"""A trace (``store.read.model.Trace``) told two ways: as a timeline of plain lines (click,
inbound requests, conversion updates, decisions with their reasons, delivery attempts), and
as a Markdown ticket to paste to a network or a traffic source, secrets masked."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from listener.outbound import format_number
from listener.platforms.common import mask
from store.events import REEVALUATED
from store.read.model import (
    AttemptView,
    ClickMatch,
    ConversionView,
    DecisionView,
    EventView,
    InboundView,
    ReplayView,
    Trace,
)
from store.reads import trace_from_json


def timestamp(at: float | None) -> str:
    """A Unix time as 2026-01-01 00:09:00.000 (UTC, milliseconds)."""
    if at is None:
        return ""
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _payout(value: float | None, currency: str) -> str:
    return "no payout" if value is None else f"{format_number(value)} {currency}"


def pretty_json(text: str) -> str:
    """JSON text indented for reading; any other text as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def request_target(path: str, query: str) -> str:
    """A request's path with its query string, as it was sent."""
    return f"{path}?{query}" if query else path


def conversion_line(conversion: ConversionView, event: EventView) -> str:
    """One conversion event: what changed, with the values it left."""
    raw = f" (sent as '{event.raw_status}')" if event.raw_status else ""
    manual = " (manual)" if conversion.manual else ""
    return (
        f"conversion #{conversion.id}{manual} {event.change}: type {event.type or '(none)'}, "
        f"status {event.status}{raw}, {_payout(event.payout, conversion.currency)}"
        + (f", txid {conversion.txid}" if conversion.txid else "")
    )


def conversion_pieces(conversion: ConversionView, event: EventView) -> Line:
    """``conversion_line`` with the conversion's number as a link to it."""
    head = f"conversion #{conversion.id}"
    return (
        link(head, "conversion", conversion.id),
        _plain(conversion_line(conversion, event)[len(head) :]),
    )


def decisions_of(conversion: ConversionView, event: EventView) -> list[DecisionView]:
    """The decisions taken for one event of a conversion, in postback config order."""
    return [decision for decision in conversion.decisions if decision.event_id == event.event_id]


def read_summary(request: InboundView) -> str:
    """How a postback's parameters were read ("" when no alias was used)."""
    aliases = request.parsed.get("aliases") or {}
    if not aliases:
        return ""
    names = ", ".join(f"{label} from '{name}'" for label, name in aliases.items())
    return f"{names}; {request.parsed.get('status', '')}"


# -- timeline lines ---------------------------------------------------------------------------

# A timeline line is a run of pieces, each a text and its role: "" (plain), "time",
# "verdict.<verdict>", "outcome.<outcome>" (an attempt's), "inbound.<outcome>" (a request's,
# with the ": " before it), "warning", or a link to what the piece names: "link.<what>.<id>"
# with <what> one of LINKS. The plain story joins the texts; the dashboard styles each piece
# by its role and lets the user follow a link.
Piece = tuple[str, str]
Line = tuple[Piece, ...]

# What a link piece names: a conversion (on Live), a delivery attempt (on Deliveries), an
# inbound request (on Inbound), one of the clicks an id matched ("match": trace that click
# for the same id) or a click to trace by its own id ("click").
LINKS = ("conversion", "delivery", "inbound", "match", "click")


def link(text: str, what: str, target: object) -> Piece:
    """A piece naming a conversion, delivery, request or click (see ``LINKS``)."""
    return (text, f"link.{what}.{target}")


def link_target(role: str) -> tuple[str, str] | None:
    """What a piece's role links to, as (what, id); None when it is no link."""
    kind, _, rest = role.partition(".")
    what, _, target = rest.partition(".")
    if kind != "link" or what not in LINKS or not target:
        return None
    return what, target


def _plain(text: str) -> Piece:
    return (text, "")


def _indented(lines: list[Line], spaces: int) -> list[Line]:
    return [(_plain(" " * spaces), *line) for line in lines]


def _warnings(warnings: tuple[str, ...], spaces: int) -> list[Line]:
    return [(_plain(" " * spaces), ("warning:", "warning"), _plain(f" {w}")) for w in warnings]


def attempt_pieces(attempt: AttemptView) -> Line:
    """One delivery attempt: number, request, answer and outcome."""
    answer = f"HTTP {attempt.http_status}" if attempt.http_status is not None else "no answer"
    took = "" if attempt.duration_ms is None else f" in {attempt.duration_ms:g} ms"
    resend = f" (resend of #{attempt.resend_of})" if attempt.resend_of else ""
    pieces = [
        link(f"attempt {attempt.attempt}", "delivery", attempt.id),
        _plain(f"{resend}: {attempt.method} {attempt.url} -> {answer}{took}: "),
        (attempt.outcome, f"outcome.{attempt.outcome}"),
    ]
    if attempt.outcome == "pending":
        pieces.append(_plain(f", due {timestamp(attempt.due_at)}"))
    if attempt.error:
        pieces.append(_plain(f" ({attempt.error})"))
    return tuple(pieces)


def attempt_line(attempt: AttemptView) -> str:
    """One delivery attempt as a plain line."""
    return "".join(text for text, _ in attempt_pieces(attempt))


def _block(label: str, text: str) -> list[Line]:
    return [
        (_plain(f"    {label}:"),),
        *((_plain("      " + line),) for line in pretty_json(text).splitlines()),
    ]


def decision_pieces(decision: DecisionView) -> list[Line]:
    """A decision, its warnings, the request it recorded unsent, and its attempts."""
    lines: list[Line] = [
        (
            (decision.verdict.upper(), f"verdict.{decision.verdict}"),
            _plain(
                f" postback '{decision.postback}' ({decision.kind}): " + "; ".join(decision.reasons)
            ),
        )
    ]
    lines += _warnings(decision.warnings, 2)
    request = decision.request
    if request:  # built but not sent
        lines.append(
            (_plain(f"  request recorded, not sent: {request['method']} {request['url']}"),)
        )
        lines += _block("body", request["body"])
    sent = None
    for attempt in decision.deliveries:
        lines.append((_plain("  "), *attempt_pieces(attempt)))
        if decision.kind == "s2s":
            continue
        # API integrations: the JSON sent (once, it is the same on every retry) and each answer
        if attempt.body != sent:
            sent = attempt.body
            lines += _block("sent", sent)
        if attempt.response:
            lines += _block("answer", attempt.response)
    return lines


def _click_pieces(trace: Trace) -> list[Line]:
    click = trace.click
    if click is None:
        return [(_plain("no click has this id, external id or transaction id"),)]
    lines: list[Line] = [
        (
            (timestamp(click.created_at), "time"),
            _plain(
                f"  click {click.id}: campaign '{click.campaign}'"
                f", external id {click.external_id or '(none)'}"
            ),
        )
    ]
    if click.params:
        params = ", ".join(f"{k}={v}" for k, v in click.params.items())
        lines.append((_plain(f"    params: {params}"),))
    return lines


def _request_pieces(trace: Trace, request: InboundView) -> list[Line]:
    """One inbound request, how it was read, and the conversion event it made."""
    target = request_target(request.path, request.query)
    head: list[Piece] = [
        (timestamp(request.received_at), "time"),
        _plain(f"  {request.endpoint} "),
        link(f"#{request.id}", "inbound", request.id),
        _plain(f" {request.method} {target}"),
    ]
    if request.replay_of is not None:
        head.append(_plain(f" (replay of #{request.replay_of})"))
    head.append((f": {request.outcome}", f"inbound.{request.outcome}"))
    if request.reason:
        head.append(_plain(f" ({request.reason})"))
    lines: list[Line] = [tuple(head)]
    for replay in trace.replays_of(request.id):
        lines.append(
            (
                _plain("    replayed as "),
                link(f"#{replay.id}", "inbound", replay.id),
                _plain(" ("),
                (replay.outcome, f"inbound.{replay.outcome}"),
                _plain(")"),
            )
        )
    if request.body:
        lines.append((_plain(f"    body: {request.body}"),))
    read = read_summary(request)
    if read:
        lines.append((_plain(f"    read: {read}"),))
    lines += _warnings(request.warnings, 4)
    made = trace.event_of(request.id)
    if made is not None:
        conversion, event = made
        lines.append((_plain("    "), *conversion_pieces(conversion, event)))
        for decision in decisions_of(conversion, event):
            lines += _indented(decision_pieces(decision), 6)
    return lines


def reevaluation_line(conversion: ConversionView, event: EventView) -> str:
    """A re-evaluation: the conversion as the rules of that time saw it."""
    raw = f" (sent as '{event.raw_status}')" if event.raw_status else ""
    return (
        f"re-evaluation of conversion #{conversion.id} as it stood: type "
        f"{event.type or '(none)'}, status {event.status}{raw}, "
        f"{_payout(event.payout, conversion.currency)}"
    )


def _reevaluation_pieces(conversion: ConversionView, event: EventView) -> list[Line]:
    """A re-evaluation and the decisions it changed (no request made it)."""
    lines: list[Line] = [
        (
            (timestamp(event.at), "time"),
            _plain("  "),
            ("re-evaluation", "reevaluated"),
            _plain(" of "),
            link(f"conversion #{conversion.id}", "conversion", conversion.id),
            _plain(
                reevaluation_line(conversion, event).removeprefix(
                    f"re-evaluation of conversion #{conversion.id}"
                )
            ),
        )
    ]
    for decision in decisions_of(conversion, event):
        lines += _indented(decision_pieces(decision), 6)
    return lines


def reevaluations(trace: Trace) -> list[tuple[ConversionView, EventView]]:
    """Every re-evaluation of the trace's conversions, oldest first."""
    found = [
        (conversion, event)
        for conversion in trace.conversions
        for event in conversion.history or ()
        if event.change == REEVALUATED
    ]
    return sorted(found, key=lambda pair: (pair[1].at, pair[1].event_id))


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"


def shown_match(trace: Trace, match: ClickMatch) -> bool:
    """Whether ``match`` is the click the trace tells."""
    return trace.click is not None and trace.click.id == match.click_id


def match_heading(trace: Trace) -> str:
    """ "2 clicks match 'dup-ext' — showing the newest" ("" when one click or none does)."""
    if len(trace.matches) < 2 or trace.click is None:
        return ""
    shown = "the newest" if shown_match(trace, trace.matches[0]) else f"click {trace.click.id}"
    return f"{_count(len(trace.matches), 'click')} match '{trace.traced}' — showing {shown}"


def match_pieces(match: ClickMatch, shown: bool) -> Line:
    """One click an id matches: its id (a link that shows it), campaign and time."""
    mark = " (shown)" if shown else ""
    return (
        link(f"click {match.click_id}", "match", match.click_id),
        _plain(f": campaign '{match.campaign}', {timestamp(match.created_at)}{mark}"),
    )


def match_line(match: ClickMatch, shown: bool) -> str:
    """One click an id matches: its id, campaign and time."""
    return "".join(text for text, _ in match_pieces(match, shown))


def hidden_conversions(trace: Trace) -> list[ConversionView]:
    """The click's conversions a focused trace (of a txid) leaves out."""
    if trace.focused is None:
        return []
    return [conversion for conversion in trace.conversions if conversion.id != trace.focus]


def focus_pieces(trace: Trace) -> Line:
    """What a trace of a transaction id focuses on (nothing when it is no txid trace); the
    click's id links to the click's whole trace."""
    focused = trace.focused
    if focused is None or trace.click is None:
        return ()
    pieces = [
        _plain(f"transaction id '{trace.traced}' is "),
        link(f"conversion #{focused.id}", "conversion", focused.id),
    ]
    others = len(hidden_conversions(trace))
    if others:
        pieces += [
            _plain(
                f"; the click's {_count(others, 'other conversion')}"
                f" {'is' if others == 1 else 'are'} not shown (postwatch trace "
            ),
            link(trace.click.id, "click", trace.click.id),
            _plain(" shows them)"),
        ]
    return tuple(pieces)


def focus_line(trace: Trace) -> str:
    """What a trace of a transaction id focuses on ("" when it is no txid trace)."""
    return "".join(text for text, _ in focus_pieces(trace))


def shown_requests(trace: Trace) -> list[InboundView]:
    """The requests a trace shows: all of them, or for a txid every one but those that made
    events of the click's other conversions."""
    hidden = {conversion.id for conversion in hidden_conversions(trace)}
    if not hidden:
        return list(trace.inbound)
    shown = []
    for request in trace.inbound:
        made = trace.event_of(request.id)
        if made is None or made[0].id not in hidden:
            shown.append(request)
    return shown


def _heading_pieces(trace: Trace) -> list[Line]:
    lines: list[Line] = []
    heading = match_heading(trace)
    if heading:
        lines.append((_plain(heading),))
        for match in trace.matches:
            lines.append((_plain("  "), *match_pieces(match, shown_match(trace, match))))
    focus = focus_pieces(trace)
    if focus:
        lines.append(focus)
    return lines


def timeline(trace: Trace, *, focused: bool = False) -> list[Line]:
    """The trace as timeline lines of pieces, oldest first. ``focused``: first which clicks
    matched and what a txid trace focuses on, when there is something to say, and of a txid
    trace only its conversion's requests (what ``postwatch trace`` and the Trace screen
    show). Re-evaluations (which no request made) take their place by
    time among the requests."""
    lines = (_heading_pieces(trace) if focused else []) + _click_pieces(trace)
    hidden = {conversion.id for conversion in hidden_conversions(trace)} if focused else set()
    pending = [pair for pair in reevaluations(trace) if pair[0].id not in hidden]
    for request in shown_requests(trace) if focused else trace.inbound:
        while pending and pending[0][1].at < request.received_at:
            lines += _reevaluation_pieces(*pending.pop(0))
        lines += _request_pieces(trace, request)
    for conversion, event in pending:
        lines += _reevaluation_pieces(conversion, event)
    return lines


def story(trace: Trace | Mapping[str, Any], *, focused: bool = False) -> list[str]:
    """The trace as plain timeline lines, oldest first (the JSON of ``GET /api/trace/{id}``
    is read back into a ``Trace`` first); ``focused`` as in ``timeline`` (what
    ``postwatch trace`` prints)."""
    if not isinstance(trace, Trace):
        trace = trace_from_json(trace)
    return ["".join(text for text, _ in line) for line in timeline(trace, focused=focused)]


# -- Markdown ---------------------------------------------------------------------------------

# Names of parameters, headers and JSON keys whose values are secrets.
_SECRET_NAME = re.compile(r"key|token|secret|password|authorization|signature", re.I)


def _secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def masked_value(name: str, value: str) -> str:
    """A value shown under ``name``: masked when the name says it is a secret."""
    if not _secret_name(name) or not value or value.startswith("env:"):
        return value
    scheme, _, secret = value.rpartition(" ")  # "Bearer abc…": keep the scheme
    return f"{scheme} {mask(secret)}" if scheme else mask(value)


def masked_query(query: str) -> str:
    """A query string with the values of secret parameters masked (the rest as sent)."""
    if not query:
        return query
    parts = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        parts.append(f"{name}={masked_value(name, value)}" if equals else pair)
    return "&".join(parts)


def masked_url(url: str) -> str:
    """A URL with the values of secret query parameters masked."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    return urlunsplit(parts._replace(query=masked_query(parts.query)))


def _masked_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: masked_value(key, item) if isinstance(item, str) else _masked_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked_json(item) for item in value]
    return value


def masked_body(body: str) -> str:
    """A body with its secrets masked: JSON keys or form fields named like secrets."""
    try:
        data = json.loads(body)
    except ValueError:
        if "=" in body and "\n" not in body:
            return masked_query(body)
        return body
    return json.dumps(_masked_json(data), indent=2, ensure_ascii=False)


def _code(text: str, language: str = "") -> list[str]:
    """A fenced code block that no captured backtick run can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", *text.splitlines(), fence]


def _inline(text: object) -> str:
    """A captured value as inline code."""
    value = str(text).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


def _markdown_matches(trace: Trace) -> list[str]:
    """Which clicks the id matched, and the conversion of a txid."""
    lines: list[str] = []
    heading = match_heading(trace)
    if heading:
        lines += [heading.replace(f"'{trace.traced}'", _inline(trace.traced)) + ":", ""]
        for match in trace.matches:
            shown = " (shown)" if shown_match(trace, match) else ""
            lines.append(
                f"- {_inline(match.click_id)}: campaign {_inline(match.campaign)}, "
                f"{timestamp(match.created_at)} UTC{shown}"
            )
        lines.append("")
    focused = trace.focused
    if focused is not None and trace.click is not None:
        line = f"Transaction id {_inline(trace.traced)} is conversion #{focused.id}."
        others = len(hidden_conversions(trace))
        if others:
            line += (
                f" The click's {_count(others, 'other conversion')}"
                f" {'is' if others == 1 else 'are'} left out"
                f" (`postwatch trace {trace.click.id}` shows them)."
            )
        lines += [line, ""]
    return lines


def _markdown_click(trace: Trace) -> list[str]:
    click = trace.click
    if click is None:
        return ["## Click", "", "No click has this id, external id or transaction id.", ""]
    lines = [
        "## Click",
        "",
        f"- click id: {_inline(click.id)}",
        f"- campaign: {_inline(click.campaign)} ({click.campaign_name})",
        f"- external id: {_inline(click.external_id) if click.external_id else '(none)'}",
        f"- at: {timestamp(click.created_at)} UTC",
    ]
    for name, value in click.params.items():
        lines.append(f"- {_inline(name)}: {_inline(masked_value(name, value))}")
    return [*lines, ""]


def _markdown_request(request: InboundView, replays: list[ReplayView]) -> list[str]:
    title = (
        f"### #{request.id} {request.endpoint} at {timestamp(request.received_at)} UTC: "
        f"{request.outcome} (HTTP {request.http_status})"
    )
    if request.replay_of is not None:
        title += f", replay of #{request.replay_of}"
    target = request_target(request.path, masked_query(request.query))
    lines = [title, "", *_code(f"{request.method} {target}")]
    if request.body:
        lines += ["", "Body:", "", *_code(masked_body(request.body))]
    lines.append("")
    if request.reason:
        lines.append(f"- why: {request.reason}")
    read = read_summary(request)
    if read:
        lines.append(f"- read: {read}")
    lines += [f"- warning: {warning}" for warning in request.warnings]
    lines += [f"- replayed as #{replay.id} ({replay.outcome})" for replay in replays]
    return [*lines, ""] if lines[-1] else lines


def _markdown_attempt(attempt: AttemptView) -> list[str]:
    answer = f"HTTP {attempt.http_status}" if attempt.http_status is not None else "no answer"
    took = "" if attempt.duration_ms is None else f" in {attempt.duration_ms:g} ms"
    resend = f", resend of #{attempt.resend_of}" if attempt.resend_of else ""
    when = timestamp(attempt.sent_at) if attempt.sent_at is not None else ""
    head = f"Attempt {attempt.attempt} (#{attempt.id}{resend})"
    head += f" sent {when} UTC" if when else f", due {timestamp(attempt.due_at)} UTC"
    lines = [f"{head}: {answer}{took}, **{attempt.outcome}**", ""]
    lines += _code(f"{attempt.method} {masked_url(attempt.url)}")
    if attempt.body:
        lines += ["", "Sent:", "", *_code(masked_body(attempt.body))]
    if attempt.error:
        lines += ["", f"Why: {attempt.error}"]
    if attempt.response:
        lines += ["", "Answer:", "", *_code(pretty_json(attempt.response))]
    return [*lines, ""]


def _markdown_decision(decision: DecisionView) -> list[str]:
    lines = [f"#### {decision.verdict.upper()}: {_inline(decision.postback)} ({decision.kind})", ""]
    lines += [f"- {reason}" for reason in decision.reasons]
    lines += [f"- warning: {warning}" for warning in decision.warnings]
    if decision.reasons or decision.warnings:
        lines.append("")
    request = decision.request
    if request:
        lines += ["Request recorded, not sent:", ""]
        lines += _code(f"{request['method']} {masked_url(str(request['url']))}")
        if request.get("body"):
            lines += ["", *_code(masked_body(str(request["body"])))]
        lines.append("")
    for attempt in decision.deliveries:
        lines += _markdown_attempt(attempt)
    return lines


def _markdown_conversion(conversion: ConversionView) -> list[str]:
    lines = [
        f"## Conversion #{conversion.id}: {conversion.type or '(no type)'}, {conversion.status}, "
        f"{_payout(conversion.payout, conversion.currency)}"
        + (" (manual: entered by hand)" if conversion.manual else ""),
        "",
    ]
    if conversion.txid:
        lines += [f"Transaction id {_inline(conversion.txid)}.", ""]
    for event in conversion.history or ():
        heading = (
            f"### {timestamp(event.at)} UTC, {reevaluation_line(conversion, event)}"
            if event.change == REEVALUATED
            else f"### {timestamp(event.at)} UTC, request #{event.inbound_id}: "
            + conversion_line(conversion, event)
        )
        lines += [heading, ""]
        for decision in decisions_of(conversion, event):
            lines += _markdown_decision(decision)
    return lines


def markdown(trace: Trace, traced: str) -> str:
    """The trace as a Markdown ticket: the click, the requests received, and for each
    conversion event the decisions with their reasons and the deliveries with their URLs
    and answers. Secrets (keys, tokens, passwords) are masked."""
    lines = [f"# postwatch trace of {_inline(traced)}", ""]
    if trace.empty:
        lines += [
            "Nothing is known about this id: no click, external id, transaction id or "
            "request has it.",
            "",
        ]
        return "\n".join(lines)
    lines += _markdown_matches(trace)
    lines += _markdown_click(trace)
    lines += ["## Requests received", ""]
    requests = shown_requests(trace)
    if not requests:
        lines += ["None.", ""]
    for request in requests:
        lines += _markdown_request(request, trace.replays_of(request.id))
    hidden = {conversion.id for conversion in hidden_conversions(trace)}
    for conversion in trace.conversions:
        if conversion.id not in hidden:
            lines += _markdown_conversion(conversion)
    return "\n".join(lines).rstrip("\n") + "\n"
