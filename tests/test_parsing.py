"""Property tests of the postback parser."""

from __future__ import annotations

import math
from urllib.parse import parse_qsl, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from listener.capture import form_fields
from listener.parsing import (
    CLICK_ID,
    CURRENCY,
    PAYOUT,
    STATUS,
    TXID,
    TYPE,
    Rejection,
    looks_like_macro,
    parse_payout,
    parse_postback,
    resolve_status,
)
from store.records import STATUSES, OfferSource

# what a network fills in for a click id (a leftover macro such as REPLACE is refused: tested below)
ids = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=40).filter(
    lambda value: not looks_like_macro(value)
)


@given(ids, st.sampled_from(CLICK_ID))
def test_any_alias_reads_the_click_id(click_id: str, name: str) -> None:
    postback = parse_postback({name: click_id})
    assert postback.click_id == click_id.strip()
    assert postback.aliases["click id"] == name


@given(ids)
def test_the_first_alias_wins(click_id: str) -> None:
    params = {name: f"{name}-{click_id}" for name in reversed(CLICK_ID)}
    assert parse_postback(params).click_id == f"clickid-{click_id}"


# Each value's aliases, and where parse_postback puts the value: a new alias added to one of
# these tuples is tested here without another line.
VALUE_ALIASES = [
    ("payout", PAYOUT, "payout", "12.5", "12.5"),
    ("type", TYPE, "type", "Deposit", "Deposit"),
    ("status", STATUS, "raw_status", "approved", "approved"),
    ("txid", TXID, "txid", "T-1", "T-1"),
    ("currency", CURRENCY, "currency", "eur", "EUR"),
]


@pytest.mark.parametrize(
    ("label", "name", "attribute", "sent", "read"),
    [
        (label, name, attribute, sent, read)
        for label, names, attribute, sent, read in VALUE_ALIASES
        for name in names
    ],
)
def test_every_alias_of_every_value_is_read(
    label: str, name: str, attribute: str, sent: str, read: str
) -> None:
    postback = parse_postback({"clickid": "c1", name: sent})
    assert getattr(postback, attribute) == read
    assert postback.aliases[label] == name


@pytest.mark.parametrize(("label", "names"), [(row[0], row[1]) for row in VALUE_ALIASES])
def test_the_first_alias_of_a_value_wins(label: str, names: tuple[str, ...]) -> None:
    params = {"clickid": "c1", **{name: "x" for name in reversed(names)}}
    assert parse_postback(params).aliases[label] == names[0]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_payouts_round_trip(value: float) -> None:
    assert parse_payout(repr(value)) == value


@given(st.text())
def test_payout_parses_or_rejects_never_crashes(text: str) -> None:
    try:
        value = parse_payout(text)
    except Rejection as rejection:
        assert rejection.status == 400
        assert repr(text)[1:-1] in rejection.reason or text in rejection.reason
    else:
        assert math.isfinite(value)


@given(ids)
def test_wrapped_placeholders_look_like_macros(name: str) -> None:
    for wrapped in (f"{{{name}}}", f"${{{name}}}", f"#{name}#", f"[{name}]"):
        assert looks_like_macro(wrapped)


@given(st.text(max_size=20))
def test_status_always_resolves_to_a_canonical_one(raw: str) -> None:
    source = OfferSource(name="N", status_aliases={"1": "approved", "Hold": "pending"})
    assert resolve_status(raw, source).status in STATUSES


def test_status_resolution_examples() -> None:
    source = OfferSource(name="N", default_status="declined", status_aliases={"Hold": "pending"})
    assert resolve_status("hold", source).status == "pending"
    assert resolve_status("APPROVED", source).status == "approved"
    assert resolve_status(None, source).status == "declined"
    unknown = resolve_status("chargeback", source)
    assert unknown.status == "other"
    assert unknown.warning is not None and "'chargeback'" in unknown.warning


def test_how_a_status_was_read_is_said_without_repeating_itself() -> None:
    source = OfferSource(name="N", status_aliases={"Hold": "pending"})
    assert resolve_status("approved", source).how == "status 'approved', as sent"
    assert (
        resolve_status("APPROVED", source).how
        == "status 'APPROVED' read as 'approved' (case is ignored)"
    )
    assert resolve_status("hold", source).how == (
        "status 'hold' is an alias of 'pending' (offer source 'N')"
    )


# Query strings as senders write them: escaped or not, with '+', '%', blanks and repeats.
query_text = st.text(alphabet="ab=&+%2F0é{}[]#", max_size=30)


@given(query_text)
def test_form_fields_read_what_parse_qsl_reads(text: str) -> None:
    assert form_fields(text) == dict(parse_qsl(text, keep_blank_values=True))


@given(st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=5))
def test_form_fields_undo_url_encoding(fields: dict[str, str]) -> None:
    text = "&".join(f"{quote_plus(name)}={quote_plus(value)}" for name, value in fields.items())
    assert form_fields(text) == fields
