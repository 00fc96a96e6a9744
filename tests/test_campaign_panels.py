"""The pure parts of the Campaigns screen's panels and the macro list they show: the one list
of macros matches what a delivery fills in, unknown macros are found, the preview lists the
conversions a change flips with the rule's reason, and a target's secrets are masked."""

from __future__ import annotations

import pytest

from listener import outbound
from store.records import Campaign, Click, Conversion, PostbackConfig, TrafficSource, Verdict
from tui.widgets.target import macro_help, target_text, url_holder
from tui.widgets.what_if import what_if, what_if_text


def _conversion(id: int, type: str, status: str, payout: float | None = None) -> Conversion:
    return Conversion(id, f"click-{id}", 1, type, status, status, payout, "USD", None)


def test_macros_are_exactly_what_a_delivery_fills_besides_the_click_parameters() -> None:
    config = PostbackConfig("all")
    click = Click("c1", 1, "ext", {"sub1": "fr", "zone": "7"}, 0.0)
    ctx = outbound.Context(
        config,
        _conversion(1, "Lead", "approved"),
        click,
        Campaign("k", "K", "ts", "os"),
        TrafficSource("ts"),
    )
    assert set(outbound.macro_values(ctx)) == set(outbound.MACROS) | {"sub1", "zone"}


def test_unknown_macros_are_those_neither_listed_nor_click_parameters() -> None:
    template = "http://t/?a={payout}&b={sub1}&c={nope}&d={nope}&e={Payout}"
    assert outbound.unknown_macros(template, ["sub1"]) == ["nope", "Payout"]
    assert outbound.unknown_macros(template, ["sub1", "nope", "Payout"]) == []
    shown = macro_help(template, ["sub1"]).plain
    assert shown.startswith("unknown: {nope} {Payout} (sent empty)")
    assert "{timestamp}" in shown and "click parameters: {sub1}" in shown


def test_named_values_read_name_equals_value() -> None:
    assert outbound.named_values(["payout=5", "q=a=b", "empty="]) == {
        "payout": "5",
        "q": "a=b",
        "empty": "",
    }
    with pytest.raises(ValueError, match="'payout' is not NAME=VALUE"):
        outbound.named_values(["payout"])
    with pytest.raises(ValueError, match="'=5' is not NAME=VALUE"):
        outbound.named_values(["=5"])


def test_the_preview_lists_each_flip_with_the_rules_reason() -> None:
    before = PostbackConfig("all events")
    after = PostbackConfig("all events", conditional=True, statuses=["approved"])
    conversions = [
        _conversion(3, "Lead", "declined"),
        _conversion(2, "Lead", "approved"),
        _conversion(1, "Deposit", "pending"),
    ]
    found = what_if("casino-fr", before, after, conversions)
    assert (found.sample, found.before, found.after, found.changed) == (3, 3, 1, True)
    assert [(f.conversion_id, f.verdict) for f in found.flips] == [
        (3, Verdict.FILTERED),
        (1, Verdict.FILTERED),
    ]
    assert found.flips[1].reason == "status 'pending' is not one of: approved"
    text = what_if_text(found).plain
    assert "2 conversions flip:" in text
    assert "#1 click-1 Deposit/pending would now be filtered: status 'pending'" in text
    # back again: the filtered ones would fire; disabling skips them
    back = what_if("casino-fr", after, before, conversions)
    assert [f.verdict for f in back.flips] == [Verdict.FIRED, Verdict.FIRED]
    off = what_if("casino-fr", before, PostbackConfig("all events", enabled=False), conversions)
    assert {f.verdict for f in off.flips} == {Verdict.SKIPPED}
    assert "would now be skipped: postback 'all events' is disabled" in what_if_text(off).plain


def test_a_target_masks_its_secrets_and_says_where_its_url_is_held() -> None:
    source = TrafficSource(
        "Propeller", postback_url="http://t/pb?token=abcdef123456789&v={clickid}"
    )
    config = PostbackConfig("all")
    assert url_holder(config, source) == "Propeller"
    text = target_text(config, source, "l").plain
    assert "traffic source 'Propeller'" in text and "abcdef123456789" not in text
    assert "v={clickid}" in text
    assert "{clickid} postwatch's click id" in text  # what each macro used holds
    own = PostbackConfig("own", url="http://own/?v={clickid}")
    assert url_holder(own, source) is None
    assert "postback 'own' has its own URL" in target_text(own, source, "l").plain
    google = PostbackConfig(
        "ads",
        kind="google",
        platform={"customer_id": "123", "developer_token": "dev-secret", "access_token": "env:T"},
    )
    shown = target_text(google, source, "l").plain
    assert "customer_id" in shown and "123" in shown
    assert "dev-secret" not in shown and "********" in shown
    assert "env:T" in shown  # names the variable, not the secret
    nothing = target_text(config, TrafficSource("Bare"), "l").plain
    assert nothing.startswith("Target No postback URL: neither postback 'all' nor traffic ")
    assert "Press l to write it (saved as traffic source 'Bare' postback_url)" in nothing
