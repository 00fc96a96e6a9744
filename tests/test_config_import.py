"""Partial imports: a key the file leaves out keeps its stored value, and a file may refer to
sources and campaigns that only the database holds (README, "Importing part of a configuration")."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import workspace
from store.config import ConfigError, parse
from store.records import PostbackConfig
from tests.helpers import FULL, Listener, import_text, run, stored

PARTIAL = """
currency = "EUR"

[keys]
"live.trace" = "T"

[listener]
port = 9090

[delivery]
timeout = 3

[[sinks]]
name = "propeller"
delay_ms = 5

[[offer_sources]]
name = "AffNet"
duplicates = "new"

[[traffic_sources]]
name = "PropellerAds"
failure_body = "fail"

[[campaigns]]
key = "casino-fr"
traffic_source = "PropellerAds"
offer_source = "AffNet"
offer_url = "https://other.example/?c={clickid}"

[[campaigns.postbacks]]
name = "meta purchases"
test_event_code = "TEST1"

[[campaigns.postbacks]]
name = "leads"
conditional = true
types = ["Lead"]
"""


def test_a_partial_import_changes_only_the_keys_it_gives(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    code, output = import_text(tmp_path, db, PARTIAL, "partial.toml")
    assert code == 0, output

    expected = parse(FULL)
    expected.settings.currency = "EUR"
    expected.settings.keys = {"live.follow": "F", "live.trace": "T"}
    expected.settings.port = 9090
    expected.settings.timeout = 3.0
    expected.sinks[0].delay_ms = 5
    expected.offer_sources[0].duplicates = "new"
    expected.traffic_sources[0].failure_body = "fail"
    campaign = expected.campaigns[0]
    campaign.offer_url = "https://other.example/?c={clickid}"
    campaign.postbacks[1].platform["test_event_code"] = "TEST1"
    campaign.postbacks.append(PostbackConfig(name="leads", conditional=True, types=["Lead"]))
    # Compare as a file would: ids are the database's own.
    code, exported = run("config", "export", "--include-secrets", "--db", str(db))
    assert code == 0
    assert parse(exported) == expected


def test_a_partial_file_parsed_without_the_database_keeps_stored_keys_too(tmp_path: Path) -> None:
    """serve --config and the dashboard's --config parse the file alone, then write it.
    Alone, the file must give a postback's kind for its platform settings to be known."""
    alone = PARTIAL.replace(
        'name = "meta purchases"\n', 'name = "meta purchases"\nkind = "facebook"\n'
    )
    with pytest.raises(ConfigError, match="unknown key 'test_event_code'"):
        parse(PARTIAL)
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    with conn:
        workspace.apply_workspace(conn, parse(alone))
    via_cli = tmp_path / "cli.db"
    assert import_text(tmp_path, via_cli, FULL)[0] == 0
    assert import_text(tmp_path, via_cli, PARTIAL)[0] == 0
    assert stored(db) == stored(via_cli)


def test_importing_the_same_partial_file_twice_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    assert import_text(tmp_path, db, PARTIAL)[0] == 0
    first = run("config", "export", "--include-secrets", "--db", str(db))[1]
    assert import_text(tmp_path, db, PARTIAL)[0] == 0
    assert run("config", "export", "--include-secrets", "--db", str(db))[1] == first


def test_a_new_postback_goes_after_the_stored_ones(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    assert import_text(tmp_path, db, PARTIAL)[0] == 0
    names = [config.name for config in stored(db).campaigns[0].postbacks]
    assert names == ["paid deposits", "meta purchases", "leads"]


def test_a_new_row_gets_the_defaults_for_what_the_file_leaves_out(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    text = '[[traffic_sources]]\nname = "Taboola"\n\n[[sinks]]\nname = "taboola"\n'
    assert import_text(tmp_path, db, text)[0] == 0
    held = stored(db)
    taboola = next(s for s in held.traffic_sources if s.name == "Taboola")
    assert (taboola.click_id_param, taboola.postback_url) == ("ref_id", "")
    sink = next(s for s in held.sinks if s.name == "taboola")
    assert (sink.status, sink.body, sink.mimic) == (200, "OK", "")


def test_a_stored_postback_keeps_its_kind_and_other_platform_settings(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    text = (
        '[[campaigns]]\nkey = "casino-fr"\n\n'
        '[[campaigns.postbacks]]\nname = "meta purchases"\npixel_id = "999"\n'
    )
    code, output = import_text(tmp_path, db, text)
    assert code == 0, output
    meta = stored(db).campaigns[0].postbacks[1]
    assert meta.kind == "facebook"
    assert meta.platform == {
        "pixel_id": "999",
        "access_token": "EAAB-secret-token",
        "base_url": "https://graph.facebook.com",
        "event_names": {"Deposit": "Purchase"},
    }
    assert (meta.conditional, meta.types) == (True, ["Deposit"])


def test_listener_secrets_and_proxies_survive_a_partial_listener_table(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    assert import_text(tmp_path, db, '[listener]\nhost = "0.0.0.0"\n')[0] == 0
    settings = stored(db).settings
    assert settings.host == "0.0.0.0"
    assert (settings.token, settings.key) == ("api-token-456", "inbound-key-123")
    assert settings.trusted_proxies == ["127.0.0.1"]
    assert settings.allow_ips == ["10.0.0.0/8"]
    assert settings.unknown_clicks == "attach:casino-fr"


async def test_after_a_partial_import_postbacks_still_fire_and_deliver(pw: Listener) -> None:
    """The listener's own loop: the file names the sources only to add a postback config; the
    offer source's aliases and the traffic source's postback URL stay, so a conversion sent
    with status "1" is approved and its S2S postbacks reach the sink."""
    db = pw.store.path
    text = """
[[offer_sources]]
name = "AffNet"

[[traffic_sources]]
name = "Propeller"

[[campaigns]]
key = "casino-fr"
traffic_source = "Propeller"
offer_source = "AffNet"

[[campaigns.postbacks]]
name = "leads"
conditional = true
types = ["Lead"]
"""
    config = Path(db).parent / "partial.toml"
    config.write_text(text)
    code, output = run("config", "import", str(config), "--db", str(db))
    assert code == 0, output
    clickid = await pw.click(ref_id="ext-9")
    status, _ = await pw.postback(clickid=clickid, type="Deposit", status="1", sum="20")
    assert status == 200
    await pw.delivered(clickid)
    trace = await pw.trace(clickid)
    (conversion,) = trace["conversions"]
    assert conversion["status"] == "approved"
    verdicts = {d["postback"]: d["verdict"] for d in conversion["decisions"]}
    assert verdicts == {"all events": "fired", "paid deposits": "fired", "leads": "filtered"}
    outcomes = [d["deliveries"][-1]["outcome"] for d in conversion["decisions"] if d["deliveries"]]
    assert outcomes == ["delivered", "delivered"]
    status, received = await pw.get("/api/sink/propeller")
    assert status == 200 and "visitor_id=ext-9" in str(received)


# -- references to what the database holds ------------------------------------------------------


def test_a_file_may_add_a_postback_to_a_stored_campaign_by_its_key_alone(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    before = stored(db)
    text = '[[campaigns]]\nkey = "casino-fr"\n\n[[campaigns.postbacks]]\nname = "leads"\n'
    code, output = import_text(tmp_path, db, text)
    assert code == 0, output
    after = stored(db)
    assert [c.name for c in after.campaigns[0].postbacks][-1] == "leads"
    after.campaigns[0].postbacks.pop()
    assert after == before


def test_a_new_campaign_may_name_sources_the_database_holds(tmp_path: Path) -> None:
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    text = (
        '[listener]\nunknown_clicks = "attach:casino-de"\n\n'
        '[[campaigns]]\nkey = "casino-de"\ntraffic_source = "PropellerAds"\n'
        'offer_source = "AffNet"\n'
    )
    code, output = import_text(tmp_path, db, text)
    assert code == 0, output
    campaign = next(c for c in stored(db).campaigns if c.key == "casino-de")
    assert (campaign.traffic_source, campaign.offer_source) == ("PropellerAds", "AffNet")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            '[[campaigns]]\nkey = "casino-de"\ntraffic_source = "Nope"\noffer_source = "AffNet"\n',
            3,
            "campaign 'casino-de' names traffic source 'Nope', which the file does not define "
            "and the database does not hold: add it under [[traffic_sources]]",
        ),
        (
            '[[campaigns]]\nkey = "casino-fr"\noffer_source = "Nope"\n',
            3,
            "campaign 'casino-fr' names offer source 'Nope', which the file does not define "
            "and the database does not hold: add it under [[offer_sources]]",
        ),
        (
            '[[campaigns]]\nkey = "casino-de"\noffer_source = "AffNet"\n',
            1,
            "campaign 'casino-de': 'traffic_source' is required",
        ),
        (
            '[listener]\nunknown_clicks = "attach:nowhere"\n',
            2,
            "unknown_clicks attaches to campaign 'nowhere', which the file does not define "
            "and the database does not hold",
        ),
    ],
)
def test_an_unknown_reference_is_refused_with_its_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    before = stored(db)
    with pytest.raises(ConfigError) as refused:
        parse(text, known=before)
    assert (refused.value.line, refused.value.message) == (line, message)
    code, output = import_text(tmp_path, db, text)
    assert code == 1
    assert f"line {line}: {message}" in output and "nothing was imported" in output
    assert stored(db) == before


def test_without_what_the_database_holds_the_file_must_define_its_sources() -> None:
    with pytest.raises(ConfigError) as refused:
        parse('[[campaigns]]\nkey = "casino-fr"\n')
    assert refused.value.message == "campaign 'casino-fr': 'traffic_source' is required"
