"""The rule engine as a table of cases."""

from __future__ import annotations

import pytest

from listener.rules import decide, would_fire
from store.records import Conversion, PostbackConfig


def conversion(
    type_: str | None = "Deposit", status: str = "approved", payout: float | None = 50.0
) -> Conversion:
    return Conversion(1, "c", 1, type_, status, status, payout, "USD", None)


def config(**rule: object) -> PostbackConfig:
    return PostbackConfig(name="paid", **rule)  # type: ignore[arg-type]


CASES = [
    # (config, conversion, verdict, reasons)
    (config(), conversion(), "fired", ["not conditional: fires for every conversion"]),
    (config(enabled=False), conversion(), "skipped", ["postback 'paid' is disabled"]),
    (
        config(conditional=True),
        conversion(),
        "fired",
        ["conditional, but no condition is chosen: fires for every conversion"],
    ),
    (
        config(conditional=True, types=["Deposit"], statuses=["approved"]),
        conversion(),
        "fired",
        ["type 'Deposit' is one of: Deposit", "status 'approved' is one of: approved"],
    ),
    (
        config(conditional=True, types=["Deposit"]),
        conversion("deposit"),
        "filtered",
        ["type 'deposit' is not one of: Deposit (types are case-sensitive)"],
    ),
    (
        config(conditional=True, types=["Deposit", "FTD"]),
        conversion("Lead"),
        "filtered",
        ["type 'Lead' is not one of: Deposit, FTD"],
    ),
    (
        config(conditional=True, types=["Deposit"]),
        conversion(None),
        "filtered",
        ["no conversion type was sent"],
    ),
    (
        config(conditional=True, statuses=["approved"]),
        conversion(status="pending"),
        "filtered",
        ["status 'pending' is not one of: approved"],
    ),
    (
        config(conditional=True, types=["FTD"], statuses=["approved", "other"], min_payout=100),
        conversion(status="pending"),
        "filtered",
        [
            "type 'Deposit' is not one of: FTD",
            "status 'pending' is not one of: approved, other",
            "payout 50 is below the minimum of 100",
        ],
    ),
    (
        config(conditional=True, min_payout=50),
        conversion(),
        "fired",
        ["payout 50 is at least the minimum of 50"],
    ),
    (
        config(conditional=True, min_payout=0.5),
        conversion(payout=None),
        "filtered",
        ["no payout was sent (the minimum is 0.5)"],
    ),
    # a config that is not conditional ignores the chosen conditions
    (
        config(types=["FTD"], statuses=["declined"]),
        conversion(),
        "fired",
        ["not conditional: fires for every conversion"],
    ),
]


@pytest.mark.parametrize(("cfg", "conv", "verdict", "reasons"), CASES)
def test_decide(cfg: PostbackConfig, conv: Conversion, verdict: str, reasons: list[str]) -> None:
    result = decide(cfg, conv)
    assert (result.verdict, result.reasons) == (verdict, reasons)
    assert would_fire(cfg, conv) is (verdict == "fired")


def test_fires_at_most_once_unless_refire_on_update() -> None:
    fired_at = 1_800_000_000.0
    once = decide(config(), conversion(), fired_at=fired_at)
    assert once.verdict == "skipped"
    assert once.reasons == ["already fired at 2027-01-15 08:00:00 UTC; refire_on_update is off"]
    again = decide(config(refire_on_update=True), conversion(), fired_at=fired_at)
    assert again.verdict == "fired"
    assert again.reasons[-1] == "fired before at 2027-01-15 08:00:00 UTC; refire_on_update is on"


def test_a_filtered_update_says_why_even_after_firing() -> None:
    result = decide(
        config(conditional=True, statuses=["approved"]), conversion(status="declined"), fired_at=1.0
    )
    assert result.verdict == "filtered"
