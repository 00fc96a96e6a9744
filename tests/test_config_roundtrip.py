"""The TOML writer: every value, however odd its text, reads back as it was written, and
export -> import -> export is an identity through real SQLite files, for every record kind,
every declared field, the settings and every ad platform's settings."""

from __future__ import annotations

import re
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import workspace
from store.config import MASK, PLATFORM_COMMON, PLATFORM_KEYS, dump, parse
from store.platforms import SETTINGS
from store.records import (
    DUPLICATE_MODES,
    KINDS,
    STATUSES,
    Campaign,
    OfferSource,
    PostbackConfig,
    Settings,
    Sink,
    SinkFault,
    TrafficSource,
    Workspace,
    config_fields,
)
from store.schema import migrate
from tests.helpers import import_text, run

# Any text a UTF-8 file can hold (so no lone surrogates), with the characters TOML must
# escape drawn often: every C0 control character, U+007F (DEL), the C1 controls, quotes,
# backslashes and the Unicode line and paragraph separators.
CONTROL = st.characters(min_codepoint=0, max_codepoint=0x1F) | st.characters(
    min_codepoint=0x7F, max_codepoint=0x9F
)
TEXT = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        CONTROL,
        st.sampled_from('"\\\x7f\u2028\u2029'),
    ),
    max_size=12,
).filter(lambda text: text != MASK)
NAME = TEXT.filter(bool)
# What TOML refuses raw in a file: every control character but tab and the line feed.
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
NUMBER = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
NETWORKS = st.lists(st.sampled_from(["127.0.0.1", "10.0.0.0/8", "::1", "192.168.1.0/24"]))


def names(size: int = 3) -> st.SearchStrategy[list[str]]:
    return st.lists(NAME, max_size=size, unique=True)


@st.composite
def sinks(draw: st.DrawFn, name: str) -> Sink:
    mimic = draw(st.sampled_from(["", *PLATFORM_KEYS]))
    return Sink(
        name=name,
        status=draw(st.integers(100, 599)),
        body=draw(TEXT),
        delay_ms=draw(st.integers(0, 10_000)),
        fail_ratio=draw(st.floats(0, 1)),
        mimic=mimic,
        error=bool(mimic) and draw(st.booleans()),
        fault=draw(st.sampled_from(tuple(SinkFault))),
        retry_after=draw(st.integers(0, 86_400)),
    )


@st.composite
def postbacks(
    draw: st.DrawFn, name: str, kind: str | None = None, every_setting: bool = False
) -> PostbackConfig:
    """A postback config of ``kind`` (any kind when None) with some of its platform settings
    (all of them with ``every_setting``)."""
    kind = draw(st.sampled_from(KINDS)) if kind is None else kind
    platform: dict[str, object] = {}
    if kind != "s2s":
        keys = (*PLATFORM_KEYS[kind], *PLATFORM_COMMON)
        chosen = keys if every_setting else draw(st.lists(st.sampled_from(keys), unique=True))
        for key in chosen:
            platform[key] = (
                draw(st.dictionaries(TEXT, TEXT, max_size=2))
                if key == ("event_names")
                else draw(TEXT)
            )
    return PostbackConfig(
        name=name,
        kind=kind,
        url=draw(TEXT),
        method=draw(st.sampled_from(["GET", "POST"])),
        body=draw(TEXT),
        enabled=draw(st.booleans()),
        conditional=draw(st.booleans()),
        types=draw(st.lists(TEXT, max_size=3)),
        statuses=draw(st.lists(st.sampled_from(STATUSES), unique=True)),
        min_payout=draw(st.none() | NUMBER),
        refire_on_update=draw(st.booleans()),
        platform=platform,
    )


@st.composite
def workspaces(draw: st.DrawFn) -> Workspace:
    offers = [
        OfferSource(
            name=name,
            default_status=draw(st.sampled_from(STATUSES)),
            duplicates=draw(st.sampled_from(DUPLICATE_MODES)),
            status_aliases=draw(st.dictionaries(TEXT, st.sampled_from(STATUSES), max_size=3)),
        )
        for name in draw(names())
    ]
    traffic = [
        TrafficSource(
            name=name,
            click_id_param=draw(TEXT),
            postback_url=draw(TEXT),
            success_body=re.escape(draw(TEXT)),
            failure_body=re.escape(draw(TEXT)),
        )
        for name in draw(names())
    ]
    campaigns = []
    if offers and traffic:
        for key in draw(names()):
            campaigns.append(
                Campaign(
                    key=key,
                    name=draw(TEXT),
                    traffic_source=draw(st.sampled_from([t.name for t in traffic])),
                    offer_source=draw(st.sampled_from([o.name for o in offers])),
                    offer_url=draw(TEXT),
                    postbacks=[draw(postbacks(name)) for name in draw(names())],
                )
            )
    keys = [campaign.key for campaign in campaigns]
    attach = st.sampled_from([f"attach:{key}" for key in keys]) if keys else st.nothing()
    return Workspace(
        conversion_types=draw(names(4)),
        settings=Settings(
            host=draw(TEXT),
            port=draw(st.integers(1, 65535)),
            unknown_clicks=draw(st.just("reject") | attach),
            timeout=draw(NUMBER.filter(bool)),
            retry_schedule=draw(st.lists(NUMBER, max_size=4)),
            per_target=draw(st.integers(1, 64)),
            keep_days=0,  # the only value this version accepts
            currency=draw(TEXT),
            max_body=draw(st.integers(0, 2**31)),
            key=draw(TEXT),
            allow_ips=draw(NETWORKS),
            trusted_proxies=draw(NETWORKS),
            token=draw(TEXT),
            keys=draw(st.dictionaries(TEXT, TEXT, max_size=3)),
        ),
        sinks=[draw(sinks(name)) for name in draw(names())],
        offer_sources=offers,
        traffic_sources=traffic,
        campaigns=campaigns,
    )


def database(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    migrate(conn)
    return conn


def export_import_export(first: Workspace, folder: Path) -> tuple[str, str]:
    """Write ``first`` into one database and export it; import that text into a second
    database and export again."""
    one, two = database(folder / "one.db"), database(folder / "two.db")
    with one:
        workspace.apply_workspace(one, first)
    text = dump(workspace.load_workspace(one), include_secrets=True)
    with two:
        workspace.apply_workspace(two, parse(text, known=workspace.load_workspace(two)))
    again = dump(workspace.load_workspace(two), include_secrets=True)
    one.close()
    two.close()
    return text, again


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workspaces())
def test_export_import_export_is_an_identity(generated: Workspace) -> None:
    written = dump(generated, include_secrets=True)
    assert not RAW_CONTROL.search(written), "a control character was written unescaped"
    assert parse(written) == generated
    with tempfile.TemporaryDirectory() as folder:
        text, again = export_import_export(generated, Path(folder))
    assert again == text


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workspaces())
def test_a_masked_export_imported_back_changes_nothing(generated: Workspace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        conn = database(Path(folder) / "pw.db")
        with conn:
            workspace.apply_workspace(conn, generated)
        before = workspace.load_workspace(conn)
        masked = dump(before)
        with conn:
            workspace.apply_workspace(conn, parse(masked, known=before))
        after = workspace.load_workspace(conn)
        conn.close()
    assert after == before
    assert dump(after) == masked


def test_control_characters_and_delete_are_written_so_they_read_back(tmp_path: Path) -> None:
    """U+007F (DEL) passes JSON's escaping untouched and TOML refuses it raw."""
    db = tmp_path / "pw.db"
    odd = 'a\x7fb\x00c\x1bd\te\nf"g\\h\u2028'
    text = (
        'currency = "EUR"\n\n[[traffic_sources]]\nname = "T\\u007F"\n'
        'postback_url = "a\\u007Fb\\u0000c\\u001Bd\\te\\nf\\"g\\\\h\u2028"\n'
    )
    assert parse(text).traffic_sources[0].postback_url == odd
    assert import_text(tmp_path, db, text)[0] == 0
    code, exported = run("config", "export", "--db", str(db))
    assert code == 0
    assert "\x7f" not in exported
    again = tmp_path / "again.db"
    code, output = import_text(tmp_path, again, exported, "exported.toml")
    assert code == 0, output
    assert run("config", "export", "--db", str(again))[1] == exported
    source = parse(exported).traffic_sources[0]
    assert (source.name, source.postback_url) == ("T\x7f", odd)


# The fields the strategies above draw, per record: a field added to a record fails
# test_the_strategies_draw_every_declared_field until it is drawn here too.
DRAWN: dict[type, set[str]] = {
    Sink: {
        *("name", "status", "body", "delay_ms", "fail_ratio", "mimic", "error", "fault"),
        "retry_after",
    },
    OfferSource: {"name", "default_status", "duplicates", "status_aliases"},
    TrafficSource: {"name", "click_id_param", "postback_url", "success_body", "failure_body"},
    Campaign: {"key", "name", "traffic_source", "offer_source", "offer_url", "postbacks"},
    PostbackConfig: {
        *("name", "kind", "url", "method", "body", "enabled", "conditional", "types"),
        *("statuses", "min_payout", "refire_on_update"),
    },
    Settings: {
        *("host", "port", "unknown_clicks", "timeout", "retry_schedule", "per_target"),
        *("keep_days", "currency", "max_body", "key", "allow_ips", "trusted_proxies", "token"),
        "keys",
    },
}


def test_the_strategies_draw_every_declared_field() -> None:
    for record, drawn in DRAWN.items():
        assert {declared.name for declared, _ in config_fields(record)} == drawn, record


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_kind_round_trips_with_all_its_platform_settings(
    kind: str, data: st.DataObject
) -> None:
    config = data.draw(postbacks("p", kind=kind, every_setting=True))
    generated = Workspace(
        offer_sources=[OfferSource("AffNet")],
        traffic_sources=[TrafficSource("Ads")],
        campaigns=[Campaign("c", "C", "Ads", "AffNet", postbacks=[config])],
    )
    assert parse(dump(generated, include_secrets=True)) == generated
    with tempfile.TemporaryDirectory() as folder:
        text, again = export_import_export(generated, Path(folder))
    assert again == text
    exported = parse(text).campaigns[0].postbacks[0]
    assert exported.platform == config.platform
    assert set(exported.platform) == set(SETTINGS[kind].accepted if kind in SETTINGS else ())
