"""A trace told as a timeline of plain lines: click, inbound postbacks, conversion updates,
decisions with their reasons, delivery attempts."""

from __future__ import annotations

import json
from typing import Any

from listener.outbound import format_number


def _time(iso: str | None) -> str:
    return "" if iso is None else iso.replace("T", " ").removesuffix("Z")


def _payout(value: float | None, currency: str) -> str:
    return "no payout" if value is None else f"{format_number(value)} {currency}"


def attempt_line(attempt: dict[str, Any]) -> str:
    """One delivery attempt: number, request, answer and outcome."""
    answer = f"HTTP {attempt['http_status']}" if attempt["http_status"] is not None else "no answer"
    took = "" if attempt["duration_ms"] is None else f" in {attempt['duration_ms']:g} ms"
    resend = f" (resend of #{attempt['resend_of']})" if attempt["resend_of"] else ""
    line = (
        f"attempt {attempt['attempt']}{resend}: {attempt['method']} {attempt['url']}"
        f" -> {answer}{took}: {attempt['outcome']}"
    )
    if attempt["outcome"] == "pending":
        line += f", due {_time(attempt['due_at'])}"
    if attempt["error"]:
        line += f" ({attempt['error']})"
    return line


def decision_lines(decision: dict[str, Any]) -> list[str]:
    lines = [
        f"{decision['verdict'].upper()} postback '{decision['postback']}' ({decision['kind']}): "
        + "; ".join(decision["reasons"])
    ]
    lines += [f"  warning: {warning}" for warning in decision["warnings"]]
    request = decision.get("request")
    if request:  # built but not sent
        lines.append(f"  request recorded, not sent: {request['method']} {request['url']}")
        lines += _block("body", request["body"])
    sent = None
    for attempt in decision["deliveries"]:
        lines.append("  " + attempt_line(attempt))
        if decision["kind"] == "s2s":
            continue
        # API integrations: the JSON sent (once, it is the same on every retry) and each answer
        if attempt["body"] != sent:
            sent = attempt["body"]
            lines += _block("sent", sent)
        if attempt["response"]:
            lines += _block("answer", attempt["response"])
    return lines


def pretty_json(text: str) -> str:
    """JSON text indented for reading; any other text as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _block(label: str, text: str) -> list[str]:
    return [f"    {label}:", *("      " + line for line in pretty_json(text).splitlines())]


def story(trace: dict[str, Any]) -> list[str]:
    """The trace of ``GET /api/trace/{id}`` as timeline lines, oldest first."""
    lines: list[str] = []
    click = trace["click"]
    if click is None:
        lines.append("no click has this id, external id or transaction id")
    else:
        external = click["external_id"] or "(none)"
        lines.append(
            f"{_time(click['created_at'])}  click {click['id']}: campaign '{click['campaign']}'"
            f", external id {external}"
        )
        if click["params"]:
            params = ", ".join(f"{k}={v}" for k, v in click["params"].items())
            lines.append(f"    params: {params}")
    events = {
        event["inbound_id"]: (conversion, event)
        for conversion in trace["conversions"]
        for event in conversion["history"]
    }
    for request in trace["inbound"]:
        where = f"{request['path']}?{request['query']}" if request["query"] else request["path"]
        lines.append(
            f"{_time(request['received_at'])}  {request['endpoint']} #{request['id']} "
            f"{request['method']} {where}: {request['outcome']}"
            + (f" ({request['reason']})" if request["reason"] else "")
        )
        if request["body"]:
            lines.append(f"    body: {request['body']}")
        parsed = request["parsed"]
        if parsed.get("aliases"):
            aliases = ", ".join(
                f"{label} from '{name}'" for label, name in parsed["aliases"].items()
            )
            lines.append(f"    read: {aliases}; {parsed.get('status', '')}")
        lines += [f"    warning: {warning}" for warning in request["warnings"]]
        if request["id"] not in events:
            continue
        conversion, event = events[request["id"]]
        raw = f" (sent as '{event['raw_status']}')" if event["raw_status"] else ""
        lines.append(
            f"    conversion #{conversion['id']} {event['change']}: type "
            f"{event['type'] or '(none)'}, status {event['status']}{raw}, "
            f"{_payout(event['payout'], conversion['currency'])}"
            + (f", txid {conversion['txid']}" if conversion["txid"] else "")
        )
        for decision in conversion["decisions"]:
            if decision["event_id"] == event["event_id"]:
                lines += ["      " + line for line in decision_lines(decision)]
    return lines
