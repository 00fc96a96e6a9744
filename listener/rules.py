"""The conditional postback rule engine: conversion and postback config in, decision out.

Pure functions, no I/O. Every reason is a sentence a support person can act on, naming the
values involved.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from store.records import Conversion, PostbackConfig, Verdict


class Decision(NamedTuple):
    """The decision for one conversion event and one postback config: its verdict and the
    sentences that explain it."""

    verdict: Verdict
    reasons: list[str]


def format_time(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def format_payout(value: float) -> str:
    return f"{value:g}"


def _one_of(values: list[str]) -> str:
    return ", ".join(values)


def _type_reason(config: PostbackConfig, conversion: Conversion) -> tuple[bool, str]:
    chosen = config.types
    if conversion.type is None:
        return False, "no conversion type was sent"
    if conversion.type in chosen:
        return True, f"type '{conversion.type}' is one of: {_one_of(chosen)}"
    reason = f"type '{conversion.type}' is not one of: {_one_of(chosen)}"
    if any(conversion.type.casefold() == name.casefold() for name in chosen):
        reason += " (types are case-sensitive)"
    return False, reason


def _status_reason(config: PostbackConfig, conversion: Conversion) -> tuple[bool, str]:
    if conversion.status in config.statuses:
        return True, f"status '{conversion.status}' is one of: {_one_of(config.statuses)}"
    return False, f"status '{conversion.status}' is not one of: {_one_of(config.statuses)}"


def _payout_reason(minimum: float, conversion: Conversion) -> tuple[bool, str]:
    limit = format_payout(minimum)
    if conversion.payout is None:
        return False, f"no payout was sent (the minimum is {limit})"
    payout = format_payout(conversion.payout)
    if conversion.payout >= minimum:
        return True, f"payout {payout} is at least the minimum of {limit}"
    return False, f"payout {payout} is below the minimum of {limit}"


def conditions(config: PostbackConfig, conversion: Conversion) -> tuple[bool, list[str]]:
    """Whether the config's conditions hold, with one sentence per condition checked."""
    if not config.conditional:
        return True, ["not conditional: fires for every conversion"]
    checks = []
    if config.types:
        checks.append(_type_reason(config, conversion))
    if config.statuses:
        checks.append(_status_reason(config, conversion))
    if config.min_payout is not None:
        checks.append(_payout_reason(config.min_payout, conversion))
    if not checks:
        return True, ["conditional, but no condition is chosen: fires for every conversion"]
    failed = [reason for ok, reason in checks if not ok]
    if failed:
        return False, failed
    return True, [reason for _, reason in checks]


def decide(
    config: PostbackConfig,
    conversion: Conversion,
    *,
    fired_at: float | None = None,
) -> Decision:
    """Decide one postback config for one conversion event; ``fired_at`` is when this config
    last fired for this conversion (None: never). A decision that fires may still be skipped
    by its builder, when the request lacks a value it needs (the caller does that)."""
    if not config.enabled:
        return Decision(Verdict.SKIPPED, [f"postback '{config.name}' is disabled"])
    matched, reasons = conditions(config, conversion)
    if not matched:
        return Decision(Verdict.FILTERED, reasons)
    if fired_at is not None:
        if not config.refire_on_update:
            return Decision(
                Verdict.SKIPPED,
                [f"already fired at {format_time(fired_at)}; refire_on_update is off"],
            )
        reasons = [*reasons, f"fired before at {format_time(fired_at)}; refire_on_update is on"]
    return Decision(Verdict.FIRED, reasons)


def would_fire(config: PostbackConfig, conversion: Conversion) -> bool:
    """Whether the config's rule lets this conversion through (for what-if counts)."""
    return config.enabled and conditions(config, conversion)[0]
