"""How values look on screen: times, payouts, marks, and captured data shown literally.

Everything here builds ``rich.text.Text`` from plain strings and never parses markup, so a
query string holding ``[b]`` or ``[/]`` is shown as sent. Control characters are shown as
escapes, so a captured value cannot move the cursor or change colours.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from rich.style import Style
from rich.text import Text

from listener.outbound import format_number
from listener.story import Line, timeline, timestamp
from store.events import NO_REQUEST
from store.read.model import (
    AttemptRow,
    AttemptView,
    ConversionDetail,
    DecisionView,
    EventView,
    InboundView,
    ReplayView,
    Trace,
)

MARK_SYMBOLS: dict[str, tuple[str, str]] = {
    "delivered": ("✓", "green"),
    "fired": ("↑", "cyan"),
    "retrying": ("↻", "yellow"),
    "failed": ("✗", "bold red"),
    "filtered": ("⊘", "magenta"),
    "skipped": ("\u2013", "dim"),  # en dash
    "none": ("·", "dim"),  # no decision: the config was added after the conversion's events
}
MARK_ORDER = ("delivered", "fired", "retrying", "failed", "filtered", "skipped", "none")
# The legend's words: the mark's own, or on a narrow terminal a short one.
MARK_WORDS = {"none": "no decision"}
SHORT_MARK_WORDS = {
    "delivered": "deliv",
    "fired": "fired",
    "retrying": "retry",
    "failed": "fail",
    "filtered": "filt",
    "skipped": "skip",
    "none": "none",
}

VERDICT_STYLES = {"fired": "green", "filtered": "magenta", "skipped": "dim"}
OUTCOME_STYLES = {
    "delivered": "green",
    "pending": "cyan",
    "retrying": "yellow",
    "failed": "bold red",
    "accepted": "green",
    "rejected": "bold red",
}

# Under NO_COLOR, Textual draws each colour as its grey: magenta and red come out dark grey
# on near-black. There the states keep their symbols and words and take a text style instead
# of a colour (italic for what was filtered).
COLOURLESS = {"magenta": "italic", "red": "bold"}


def no_color() -> bool:
    """Whether the terminal asked for no colours (NO_COLOR set, even empty)."""
    return "NO_COLOR" in os.environ


def tone(style: str) -> str:
    """A state's or verdict's style as drawn: as it is, or under NO_COLOR without colour."""
    return _colourless(style) if style and no_color() else style


@cache
def _colourless(style: str) -> str:
    parsed = Style.parse(style)
    plain = Style(
        bold=parsed.bold,
        dim=parsed.dim,
        italic=parsed.italic,
        underline=parsed.underline,
        reverse=parsed.reverse,
    )
    for colour, instead in COLOURLESS.items():
        if parsed.color is not None and parsed.color.name == colour:
            plain += Style.parse(instead)
    return str(plain) if plain else ""


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(char, f"\\x{ord(char):02x}")


def clean(value: object, *, one_line: bool = True) -> str:
    """A captured value as safe plain text: control characters become escapes (newlines too,
    unless ``one_line`` is False)."""
    text = "" if value is None else str(value)
    return (_CONTROL_LINE if one_line else _CONTROL).sub(_escape, text)


def literal(value: object, style: str = "", *, one_line: bool = True) -> Text:
    """A captured value as Text, shown exactly as sent (never read as markup)."""
    return Text(clean(value, one_line=one_line), style=style, no_wrap=one_line, end="")


@dataclass
class TimeDisplay:
    """How the dashboard shows times: in UTC (the default) or in the local time zone, and
    the clock that says what "today" and "ago" are (the dashboard's, so a test can pin it)."""

    local: bool = False
    clock: Callable[[], float] = time.time

    def moment(self, at: float) -> time.struct_time:
        return time.localtime(at) if self.local else time.gmtime(at)

    @property
    def zone(self) -> str:
        """The zone's name as shown beside times: UTC, or the local zone's abbreviation."""
        if not self.local:
            return "UTC"
        return time.strftime("%Z", time.localtime(self.clock())) or "local"


# Every time on screen is drawn by the functions below, from this one setting (the `z` key
# and --local-time change it for the whole dashboard).
TIMES = TimeDisplay()


def clock_time(at: float | None) -> str:
    """A time as a table cell: HH:MM:SS today, MM-DD HH:MM earlier this year, the date in
    an earlier year (in the zone of ``TIMES``; the column title names it)."""
    if at is None:
        return ""
    moment, today = TIMES.moment(at), TIMES.moment(TIMES.clock())
    if moment[:3] == today[:3]:
        return time.strftime("%H:%M:%S", moment)
    if moment.tm_year == today.tm_year:
        return time.strftime("%m-%d %H:%M", moment)
    return time.strftime("%Y-%m-%d", moment)


def time_title(label: str = "time") -> str:
    """A time column's title with its zone: time UTC."""
    return f"{label} {TIMES.zone}"


def ago(at: float) -> str:
    """How long before now: 12 s ago, 3 min ago, 2 h ago, 4 d ago (in 5 s: a time ahead)."""
    seconds = TIMES.clock() - at
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        span = f"{seconds:.0f} s"
    elif seconds < 3600:
        span = f"{seconds // 60:.0f} min"
    elif seconds < 86400 * 2:
        span = f"{seconds // 3600:.0f} h"
    else:
        span = f"{seconds // 86400:.0f} d"
    return f"in {span}" if ahead else f"{span} ago"


def when(at: float | None) -> str:
    """A Unix time in full, with its zone and how long ago: 2026-01-01 00:09:00.000 UTC
    (51 min ago)."""
    if at is None:
        return "—"
    if TIMES.local:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", TIMES.moment(at))
        stamp += f".{int(at * 1000) % 1000:03d}"
    else:
        stamp = timestamp(at)
    return f"{stamp} {TIMES.zone} ({ago(at)})"


def payout(value: float | None, currency: str = "") -> str:
    if value is None:
        return "—"
    return f"{format_number(value)} {currency}".strip()


def status_text(status: str, raw: str | None) -> Text:
    """The canonical status, with the raw value when the network sent something else."""
    text = Text(status, style=tone(OUTCOME_STYLES.get(status, "")), no_wrap=True, end="")
    if raw is not None and raw.casefold() != status:
        text.append(" (")
        text.append_text(literal(raw))
        text.append(")")
    return text


def mark(state: str) -> Text:
    symbol, style = MARK_SYMBOLS.get(state, ("?", ""))
    return Text(symbol, style=tone(style), end="")


def named_marks(marks: Iterable[tuple[str, str]]) -> Text:
    """Marks labelled with their postback config's name, in the order given:
    ``all events:✓ paid deposits:⊘`` (a name is shown literally: it is the user's)."""
    text = Text(no_wrap=True, end="")
    for index, (name, state) in enumerate(marks):
        if index:
            text.append(" ")
        text.append_text(literal(f"{name}:", "dim"))
        text.append_text(mark(state))
    return text


def legend(*, compact: bool = False) -> Text:
    """What each mark means, in one line (``compact``: short words, for 80 columns)."""
    text = Text(" ", no_wrap=True, end="")  # (apart from the title's end)
    for index, state in enumerate(MARK_ORDER):
        if index:
            text.append(" " if compact else "  ")
        text.append_text(mark(state))
        if compact:
            text.append(SHORT_MARK_WORDS[state], style="dim")
        else:
            text.append(f" {MARK_WORDS.get(state, state)}", style="dim")
    if compact:
        text.append(" ")
    return text


def outcome_text(outcome: str) -> Text:
    return Text(outcome, style=tone(OUTCOME_STYLES.get(outcome, "")), end="")


def http_status(value: int | None) -> str:
    return "—" if value is None else str(value)


def duration(ms: float | None) -> str:
    return "" if ms is None else f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def without_scheme(url: str) -> str:
    """A URL without its http:// or https:// (the table's columns are narrow)."""
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url


def shorten_url(cell: Text, width: int) -> Text:
    """A cell holding "METHOD host/path?query" shortened to ``width`` cells: the query (the
    useful part: the click id, the payout) is kept whole when it leaves room for the start
    of the host, and the middle of the host and path gives way ("GET sink.exa…ropeller?
    visitor_id=…"); with less room, the method and the query only ("GET …?visitor_id=…"),
    the query cut at its end when even it is too long."""
    plain = cell.plain
    if cell.cell_len <= width or width < 2:
        return cell.copy()[:width]
    before, mark, query = plain.partition("?")
    keep = len(mark + query)
    room = width - keep - 1  # the ellipsis
    method = len(plain.partition(" ")[0]) + 1
    if not mark or method + 2 >= width:
        out = cell.copy()
    elif room < method + 8:
        out = cell[:method]
        out.append("…")
        out.append_text(cell[len(before) :])
    else:
        head = (room + 1) // 2 + room // 4
        tail = room - head
        out = cell[:head]
        out.append("…")
        out.append_text(cell[len(before) - tail :])
    out.truncate(width, overflow="ellipsis")
    return out


def shorten_id(cell: Text, width: int) -> Text:
    """An id shortened to ``width`` cells at its start ("…8b2e07c41f9d"): postwatch's click
    ids begin with their time, so the ids of one minute share their first digits and differ
    in their last ones."""
    if cell.cell_len <= width or width < 2:
        return cell.copy()[:width]
    out = Text("…", style=cell.style)
    out.append_text(cell[len(cell.plain) - (width - 1) :])
    return out


def request_target(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


def curl(method: str, url: str, headers: Mapping[str, str], body: str) -> str:
    """A shell command that sends the same request again, byte for byte: ``-g`` stops curl
    from reading ``{…}`` and ``[…]`` as globs, which are exactly the unreplaced macros people
    copy, and the URL is passed as stored (still percent-encoded)."""
    parts = ["curl", "-sS", "-g"]
    if method.upper() != "GET":
        parts += ["-X", method.upper()]
    for name, value in headers.items():
        parts += ["-H", f"{name}: {value}"]
    if body:
        parts += ["--data-raw", body]
    parts.append(url)
    return " ".join(shlex.quote(part) for part in parts)


# -- detail views -----------------------------------------------------------------------------


class Lines:
    """A multi-line Text built line by line from labels and literal values."""

    def __init__(self) -> None:
        self.text = Text(end="")
        self._first = True

    def line(self, *parts: str | Text, indent: int = 0) -> Lines:
        if not self._first:
            self.text.append("\n")
        self._first = False
        if indent:
            self.text.append(" " * indent)
        for part in parts:
            if isinstance(part, Text):
                self.text.append_text(part)
            else:
                self.text.append(part)
        return self

    def heading(self, title: str) -> Lines:
        if not self._first:
            self.line("")
        return self.line(Text(title, style="bold underline"))

    def field(self, label: str, value: object, indent: int = 2, style: str = "") -> Lines:
        return self.line(Text(f"{label}: ", style="dim"), literal(value, style), indent=indent)

    def block(self, value: object, indent: int = 4, style: str = "") -> Lines:
        """A captured multi-line value, each line indented, shown literally."""
        for part in clean(value, one_line=False).splitlines() or [""]:
            self.line(Text(part, style=style), indent=indent)
        return self


def attempt_lines(out: Lines, attempt: AttemptView, indent: int = 4) -> None:
    head = Text(f"attempt {attempt.attempt}", style="bold")
    if attempt.resend_of:
        head.append(f" (resend of #{attempt.resend_of})")
    head.append(f" #{attempt.id}  ")
    head.append_text(outcome_text(attempt.outcome))
    if attempt.http_status is not None:
        head.append(f"  HTTP {attempt.http_status}")
    if attempt.duration_ms is not None:
        head.append(f"  {duration(attempt.duration_ms)}")
    out.line(head, indent=indent)
    out.line(literal(attempt.method), " ", literal(attempt.url), indent=indent + 2)
    if attempt.sent_at:
        out.line(Text("sent ", style="dim"), when(attempt.sent_at), indent=indent + 2)
    elif attempt.due_at:
        out.line(Text("due ", style="dim"), when(attempt.due_at), indent=indent + 2)
    if attempt.error:
        out.line(Text("why: ", style="dim"), literal(attempt.error, "yellow"), indent=indent + 2)
    if attempt.response:
        out.line(Text("response:", style="dim"), indent=indent + 2)
        out.block(attempt.response, indent=indent + 4)


def decision_lines(
    out: Lines, decision: DecisionView, indent: int = 2, *, attempts: bool = True
) -> None:
    """A decision: mark, verdict, postback and why (one reason inline, several as a list),
    its warnings, and (``attempts``) its delivery attempts."""
    verdict = decision.verdict
    head = Text(end="")
    head.append_text(mark(decision.mark))
    head.append(" ")
    head.append(verdict.upper(), style=tone(f"bold {VERDICT_STYLES.get(verdict, '')}"))
    head.append(" ")
    head.append_text(literal(decision.postback, "bold"))
    head.append(" (")
    head.append_text(literal(decision.kind))
    head.append(")")
    reasons = decision.reasons
    if len(reasons) == 1:
        head.append(": ")
        head.append_text(literal(reasons[0]))
    out.line(head, indent=indent)
    if len(reasons) > 1:
        for reason in reasons:
            out.line("• ", literal(reason), indent=indent + 2)
    for warning in decision.warnings:
        out.line(Text("warning: ", style="yellow"), literal(warning), indent=indent + 2)
    if attempts:
        for attempt in decision.deliveries:
            attempt_lines(out, attempt, indent + 2)


def _event_line(event: EventView, currency: str) -> Text:
    line = Text(f"{when(event.at)}  ", style="dim")
    line.append(f"{event.change}  ")
    line.append_text(literal(event.type or "(no type)"))
    line.append("  ")
    line.append_text(status_text(event.status, event.raw_status))
    line.append(f"  {payout(event.payout, currency)}")
    made_by = "re-evaluation" if event.inbound_id == NO_REQUEST else f"request #{event.inbound_id}"
    line.append(f"  ({made_by})", style="dim")
    return line


def conversion_detail(detail: ConversionDetail, labels: Mapping[str, str] | None = None) -> Text:
    """The detail of a conversion: decisions first (why each postback fired or not), then the
    delivery attempts, the inbound requests as received and parsed, and the status history.
    ``labels`` are the short titles of Live's postback columns, by config name: those that
    are not the whole name are told on a line above the decisions."""
    conversion = detail.conversion
    out = Lines()
    head = Text(f"Conversion #{conversion.id}  ", style="bold")
    head.append_text(literal(conversion.type or "(no type)"))
    head.append("  ")
    head.append_text(status_text(conversion.status, conversion.raw_status))
    head.append(f"  {payout(conversion.payout, conversion.currency)}")
    if conversion.manual:
        head.append("  manual", style="bold")
        head.append(" (entered by hand)", style="dim")
    out.line(head)
    out.line(Text("click ", style="dim"), literal(conversion.click_id, "bold"))
    details = Text("campaign ", style="dim")
    details.append_text(literal(conversion.campaign))
    if detail.external_id:
        details.append("  external id ", style="dim")
        details.append_text(literal(detail.external_id))
    if conversion.txid:
        details.append("  txid ", style="dim")
        details.append_text(literal(conversion.txid))
    out.line(details)

    history = conversion.history or ()
    latest_event = history[-1].event_id if history else None
    by_event: dict[int, list[DecisionView]] = {}
    for decision in conversion.decisions:
        by_event.setdefault(decision.event_id, []).append(decision)
    latest = by_event.get(latest_event or -1, [])
    out.heading("Why (latest event)")
    shortened = [
        (labels[decision.postback], decision.postback)
        for decision in latest
        if labels and labels.get(decision.postback, decision.postback) != decision.postback
    ]
    if shortened:
        legend = Text("columns: ", style="dim")
        for index, (label, name) in enumerate(shortened):
            if index:
                legend.append(" · ", style="dim")
            legend.append_text(literal(label, "bold"))
            legend.append(" = ", style="dim")
            legend.append_text(literal(name))
        out.line(legend, indent=2)
    for decision in latest:
        decision_lines(out, decision, attempts=False)
    if not latest:
        out.line(Text("no postback config: nothing to decide", style="dim"), indent=2)
    sent = [decision for decision in latest if decision.deliveries]
    if sent:
        out.heading("Delivery attempts")
        for decision in sent:
            out.line(literal(decision.postback, "bold"), indent=2)
            for attempt in decision.deliveries:
                attempt_lines(out, attempt, indent=4)

    out.heading("Status history")
    for event in history:
        out.line(_event_line(event, conversion.currency), indent=2)
        if event.event_id != latest_event:
            for decision in by_event.get(event.event_id, []):
                decision_lines(out, decision, indent=4)

    out.heading("Requests received")
    for request in detail.inbound:
        inbound_lines(out, request, indent=2)
    return out.text


def inbound_lines(
    out: Lines, request: InboundView, indent: int = 0, replays: Sequence[ReplayView] = ()
) -> None:
    """A request as received: its outcome, target, reason, how it was read, its body, and
    (when given) the requests that replayed it."""
    head = Text(f"#{request.id} ", style="bold")
    head.append_text(literal(request.endpoint))
    head.append(f"  {when(request.received_at)}  ", style="dim")
    head.append_text(outcome_text(request.outcome))
    head.append(f"  HTTP {request.http_status}")
    if request.replay_of is not None:
        head.append(f"  replay of #{request.replay_of}", style="bold")
    out.line(head, indent=indent)
    for replay in replays:
        line = Text("replayed as ", style="bold")
        line.append(f"#{replay.id}", style="bold")
        line.append(" (")
        line.append_text(outcome_text(replay.outcome))
        line.append(")")
        out.line(line, indent=indent + 2)
    target = request_target(request.path, request.query)
    out.line(literal(request.method, "bold"), " ", literal(target), indent=indent + 2)
    if request.reason:
        out.line(Text("why: ", style="dim"), literal(request.reason), indent=indent + 2)
    aliases = request.parsed.get("aliases") or {}
    if aliases:
        read = Text("read: ", style="dim")
        for index, (label, name) in enumerate(aliases.items()):
            if index:
                read.append(", ")
            read.append_text(literal(label))
            read.append(" from ", style="dim")
            read.append_text(literal(repr(str(name))))
        out.line(read, indent=indent + 2)
    if request.parsed.get("status"):  # a sentence that names the status itself
        out.line(literal(request.parsed["status"]), indent=indent + 2)
    for warning in request.warnings:
        out.line(Text("warning: ", style="yellow"), literal(warning), indent=indent + 2)
    if request.body:
        out.line(Text("body:", style="dim"), indent=indent + 2)
        out.block(request.body, indent=indent + 4)


def inbound_detail(request: InboundView, replays: Sequence[ReplayView] = ()) -> Text:
    """The Inbound screen's detail: the request, its replays, and how it was received."""
    out = Lines()
    inbound_lines(out, request, replays=replays)
    out.heading("As received")
    out.field("endpoint", request.endpoint)
    out.field("remote", request.remote)
    for name, value in request.headers.items():
        out.field(str(name), value)
    if request.click_id:
        out.field("click id", request.click_id)
    if request.conversion_id:
        out.field("conversion", f"#{request.conversion_id}")
    return out.text


def delivery_detail(delivery: AttemptRow) -> Text:
    out = Lines()
    head = Text(f"Delivery #{delivery.id}  ", style="bold")
    head.append_text(literal(delivery.postback, "bold"))
    head.append(" (")
    head.append_text(literal(delivery.kind))
    head.append(")  ")
    head.append_text(outcome_text(delivery.outcome))
    out.line(head)
    summary = Text("conversion ", style="dim")
    summary.append(f"#{delivery.conversion_id}  ")
    summary.append("click ", style="dim")
    summary.append_text(literal(delivery.click_id))
    summary.append("  campaign ", style="dim")
    summary.append_text(literal(delivery.campaign))
    out.line(summary)
    out.heading("Request")
    out.line(literal(delivery.method, "bold"), " ", literal(delivery.url), indent=2)
    for name, value in delivery.headers.items():
        out.field(str(name), value)
    if delivery.body:
        out.line(Text("body:", style="dim"), indent=2)
        out.block(delivery.body)
    out.heading("Answer")
    out.field("attempt", delivery.attempt)
    if delivery.resend_of:
        out.field("resend of", f"#{delivery.resend_of}")
    out.field("HTTP status", http_status(delivery.http_status))
    out.field("sent", when(delivery.sent_at) if delivery.sent_at else "not yet")
    if delivery.outcome == "pending":
        out.field("due", when(delivery.due_at))
    out.field("took", duration(delivery.duration_ms) or "—")
    if delivery.error:
        out.field("why not delivered", delivery.error, style="yellow")
    if delivery.response is not None:
        out.line(Text("response:", style="dim"), indent=2)
        out.block(delivery.response)
    out.heading("Decision")
    verdict = Text(delivery.verdict.upper(), style=tone(VERDICT_STYLES.get(delivery.verdict, "")))
    out.line(verdict, indent=2)
    for reason in delivery.reasons:
        out.line("• ", literal(reason), indent=4)
    return out.text


# How the trace timeline styles each role of its pieces (see listener.story.timeline).
TIMELINE_STYLES: dict[str, str] = {
    "time": "dim",
    "verdict.fired": "bold green",
    "verdict.filtered": "bold magenta",
    "verdict.skipped": "bold",
    "inbound.rejected": "bold red",
    "outcome.delivered": "green",
    "outcome.failed": "red",
    "outcome.retrying": "yellow",
    "warning": "yellow",
}


LINK_STYLE = "underline"  # a piece naming a conversion, delivery, request or click


def timeline_text(lines: list[Line], links: list[tuple[int, int, str]] | None = None) -> Text:
    """Timeline lines, each piece styled by its role, captured values shown literally;
    ``links`` (when given) gets the (start, end, role) of each link piece in the text."""
    text = Text(end="")
    for index, line in enumerate(lines):
        if index:
            text.append("\n")
        for piece, role in line:
            start = len(text)
            if role.startswith("link."):
                text.append(clean(piece), style=LINK_STYLE)
                if links is not None:
                    links.append((start, len(text), role))
            else:
                text.append(clean(piece), style=tone(TIMELINE_STYLES.get(role, "")))
    return text


def trace_text(trace: Trace) -> Text:
    """The trace timeline (``listener.story``), styled from its structure."""
    return timeline_text(timeline(trace))
