"""The Campaigns screen's before/after preview: which of a campaign's latest conversions a
rule change flips (would now fire, would now be filtered), with the rule engine's reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text

from listener import rules
from listener.words import plural
from store.records import Conversion, PostbackConfig, Verdict
from tui import format as fmt

SHOWN_FLIPS = 50  # flips listed; the count says how many more there are


@dataclass(frozen=True)
class Flip:
    """One conversion the change flips, and the rule's reason for its new verdict."""

    conversion_id: int
    click_id: str
    type: str | None
    status: str
    verdict: Verdict  # what the rule decides now: fired, filtered or skipped (disabled)
    reason: str


@dataclass
class WhatIf:
    """How many of a campaign's latest conversions a postback config lets through, before
    and after a change, and the ones that flip (newest first)."""

    campaign: str
    sample: int
    before: int
    after: int
    changed: bool
    flips: list[Flip] = field(default_factory=list)


def what_if(
    campaign: str,
    before: PostbackConfig,
    after: PostbackConfig,
    conversions: Sequence[Conversion],
) -> WhatIf:
    """The preview of changing ``before`` to ``after`` over ``conversions`` (pure: run it
    off the UI thread)."""
    flips = []
    passed_before = passed_after = 0
    for conversion in conversions:
        was, now = rules.would_fire(before, conversion), rules.would_fire(after, conversion)
        passed_before += was
        passed_after += now
        if was != now:
            decision = rules.decide(after, conversion)
            flips.append(
                Flip(
                    conversion.id,
                    conversion.click_id,
                    conversion.type,
                    conversion.status,
                    decision.verdict,
                    "; ".join(decision.reasons),
                )
            )
    return WhatIf(campaign, len(conversions), passed_before, passed_after, before != after, flips)


_NOW = {
    Verdict.FIRED: ("would now fire", "bold green"),
    Verdict.FILTERED: ("would now be filtered", "bold magenta"),
    Verdict.SKIPPED: ("would now be skipped", "bold magenta"),
}


def flip_line(flip: Flip) -> Text:
    """``#12 c0ffee… Deposit/pending would now be filtered: status 'pending' is not …``."""
    text = Text(end="")
    text.append(f"#{flip.conversion_id} ", style="bold")
    text.append_text(fmt.literal(flip.click_id))
    text.append(" ")
    text.append_text(fmt.literal(f"{flip.type or '—'}/{flip.status}"))
    words, style = _NOW[flip.verdict]
    text.append(f" {words}", style=style)
    text.append(": ", style="dim")
    text.append_text(fmt.literal(flip.reason))
    return text


def what_if_text(result: WhatIf) -> Text:
    """The preview: the counts, then each conversion that flips."""
    text = Text(end="")
    if result.sample == 0:
        text.append(f"No conversions of '{result.campaign}' yet to test this rule on.", "dim")
        return text
    latest = "The last conversion" if result.sample == 1 else f"Last {result.sample} conversions"
    text.append(f"{latest} of ", style="dim")
    text.append_text(fmt.literal(result.campaign))
    text.append(": ", style="dim")
    if not result.changed:
        text.append(f"{result.after}", style="bold")
        text.append(" pass this rule. A change lists the conversions it flips here.")
        return text
    text.append(f"{result.before}", style="bold")
    text.append(" would have fired before your changes, ")
    text.append(f"{result.after}", style="bold")
    delta = result.after - result.before
    text.append(" after ")
    text.append(f"({delta:+d})", style="bold green" if delta > 0 else "bold magenta")
    text.append(". ")
    if not result.flips:
        text.append("No conversion flips.", style="dim")
        return text
    count = len(result.flips)
    text.append(plural(count, "conversion flips:", "conversions flip:"), style="bold")
    for flip in result.flips[:SHOWN_FLIPS]:
        text.append("\n")
        text.append_text(flip_line(flip))
    hidden = len(result.flips) - SHOWN_FLIPS
    if hidden > 0:
        text.append(f"\n… and {hidden} more", style="dim")
    return text
