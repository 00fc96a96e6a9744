"""The listener's answers to the dashboard's actions, as a panel shows them: a test
postback's attempt (Campaigns), and a re-evaluation, dry run or recorded (Campaigns' panel
for a campaign's conversions, Live's detail for the selected one)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from listener.words import plural
from tui import format as fmt

ANSWER_START = 300  # characters of the target's answer shown
SHOWN_CHANGES = 50  # changes listed; the count says how many more there are


def test_answer_text(answer: dict[str, Any]) -> Text:
    """``TEST postback 'all events' → HTTP 200 in 12 ms``, the URL sent and the answer's
    start."""
    text = Text(end="")
    text.append(" TEST ", style="reverse bold")
    text.append(" postback ")
    text.append_text(fmt.literal(answer.get("postback", ""), "bold"))
    delivered = answer.get("outcome") == "delivered"
    status = answer.get("http_status")
    text.append(" → ")
    text.append(
        f"HTTP {status}" if status is not None else "no answer",
        style="bold green" if delivered else "bold magenta",
    )
    took = answer.get("duration_ms")
    if took is not None:
        text.append(f" in {fmt.duration(took)}")
    text.append(f" ({answer.get('outcome', '')}" + ("" if delivered else ", not delivered") + ")")
    text.append(" · not a conversion", style="dim")
    text.append(f"\n{answer.get('method', '')} ", style="dim")
    text.append_text(fmt.literal(answer.get("url", ""), one_line=False))
    if answer.get("body"):
        text.append("\nbody ", style="dim")
        text.append_text(fmt.literal(answer["body"], one_line=False))
    if answer.get("error"):
        text.append("\nwhy: ", style="dim")
        text.append_text(fmt.literal(answer["error"], one_line=False))
    response = str(answer.get("response") or "")
    text.append("\nanswer: ", style="dim")
    if not response:
        text.append("(empty)", style="dim")
    else:
        text.append_text(fmt.literal(response[:ANSWER_START]))
        if len(response) > ANSWER_START:
            text.append(f" … ({len(response):,} characters)", style="dim")
    return text


def _change_line(change: dict[str, Any]) -> Text:
    old, new = change["old"], change["new"]
    text = Text(end="")
    text.append(f"#{change['conversion_id']} ", style="bold")
    text.append_text(fmt.literal(change["postback"]))
    text.append(f": {old['verdict'] or 'no decision'} → ")
    text.append(new["verdict"], style="bold green" if new["verdict"] == "fired" else "bold magenta")
    text.append(": ", style="dim")
    text.append_text(fmt.literal("; ".join(new["reasons"])))
    return text


def _since_words(since: str) -> str:
    """``of the last 24h`` for an age, ``since 2026-01-31`` for a time."""
    return (
        f"of the last {since}" if since[-1:].isalpha() and since[:1].isdigit() else f"since {since}"
    )


def campaign_scope(campaign: str, since: str) -> Text:
    """What a campaign's re-evaluation runs: ``casino-fr, conversions of the last 24h``."""
    text = fmt.literal(campaign)
    text.append(f", conversions {_since_words(since)}", style="dim")
    return text


def reevaluation_text(
    answer: dict[str, Any],
    scope: Text,
    record_key: str,
    fire_key: str,
    fired: dict[str, Any] | None = None,
) -> Text:
    """A re-evaluation's answer about ``scope`` (what it runs: ``campaign_scope``, or one
    conversion): for a dry run, each decision that would flip and why, and the keys that
    record them (``fired``: the same dry run with fire, whose further changes are decisions
    recorded before without sending, which the fire key would send); for a real run, what
    was recorded and queued."""
    text = Text(end="")
    dry = bool(answer.get("dry_run"))
    text.append("Re-evaluate " + ("(dry run) " if dry else ""), style="bold")
    text.append_text(scope)
    text.append(": ", style="dim")
    text.append(plural(answer["conversions"], "conversion", "conversions"))
    changes = answer["changes"]
    decisions = plural(len(changes), "decision", "decisions")
    if not dry:
        text.append(f"; recorded {decisions} as a re-evaluation")
        if answer.get("fire"):
            queued = len(answer.get("deliveries") or [])
            text.append(f", queued {plural(queued, 'delivery', 'deliveries')}")
        text.append(". The original decisions stay in each trace.", style="dim")
        return text
    more = ""
    unsent = 0 if fired is None else len(fired["changes"]) - len(changes)
    if unsent > 0:
        earlier = plural(unsent, "decision", "decisions")
        more = f"{fire_key} also sends {earlier} recorded earlier without sending. "
    if not changes:
        text.append(". The current rules change no decision. " + more)
        text.rstrip()
        return text
    text.append(f"; {decisions} would change. {more}")
    text.append(f"{record_key}", style="bold")
    text.append(" records them (nothing sent), ")
    text.append(f"{fire_key}", style="bold")
    text.append(" records and sends the newly fired, Esc closes.")
    for change in changes[:SHOWN_CHANGES]:
        text.append("\n")
        text.append_text(_change_line(change))
    hidden = len(changes) - SHOWN_CHANGES
    if hidden > 0:
        text.append(f"\n… and {hidden} more", style="dim")
    return text
