"""The TOML config: import, export, refusal of bad files, and the CLI around them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from store.config import ConfigError, dump, parse
from store.sample import sample_workspace
from tests.helpers import SPEC_EXAMPLE, Listener, run


def test_the_spec_example_reads_and_round_trips() -> None:
    workspace = parse(SPEC_EXAMPLE)
    assert workspace.campaigns[0].postbacks[1].platform == {
        "pixel_id": "1234567890",
        "access_token": "",
        "base_url": "https://graph.facebook.com",
        "event_names": {"Deposit": "Purchase"},
    }
    assert parse(dump(workspace)) == workspace
    assert parse(dump(sample_workspace(9000))) == sample_workspace(9000)


def test_import_export_through_the_cli_is_idempotent(tmp_path: Path) -> None:
    db = str(tmp_path / "pw.db")
    config = tmp_path / "postwatch.toml"
    config.write_text(SPEC_EXAMPLE)
    assert run("config", "import", str(config), "--db", db)[0] == 0
    code, exported = run("config", "export", "--db", db)
    assert code == 0
    assert parse(exported) == parse(SPEC_EXAMPLE)
    before = sqlite3.connect(db).execute("SELECT count(*) FROM postback_configs").fetchone()
    assert run("config", "import", str(config), "--db", db)[0] == 0
    assert run("config", "export", "--db", db)[1] == exported
    after = sqlite3.connect(db).execute("SELECT count(*) FROM postback_configs").fetchone()
    assert before == after == (2,)


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (
            ('duplicates = "update"', 'duplicates = "merge"'),
            23,
            "'duplicates' is 'merge'; use one of: update, new, ignore",
        ),
        (
            ('statuses = ["approved"]', 'statuses = ["paid"]'),
            45,
            "status 'paid' is not one of: approved, pending, declined, other",
        ),
        (
            ('traffic_source = "PropellerAds"', 'traffic_source = "Propeller"'),
            35,
            "names traffic source 'Propeller', which the file does not define",
        ),
        (
            ('failure_body = "error"', 'failure_body = "("'),
            30,
            "'failure_body' is not a valid regular expression",
        ),
        (("port = 8080", 'port = "80"'), 6, "'port' must be a whole number, not '80'"),
        (('kind = "s2s"', 'kind = "s2s"\npixel_id = "1"'), 42, "unknown key 'pixel_id'"),
        (("timeout = 10", "timeout = 10 ="), 10, "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_whole_with_its_line(
    tmp_path: Path, edit: tuple[str, str], line: int, message: str
) -> None:
    text = SPEC_EXAMPLE.replace(*edit)
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert caught.value.line == line
    assert message in caught.value.message
    config = tmp_path / "bad.toml"
    config.write_text(text)
    db = tmp_path / "pw.db"
    code, output = run("config", "import", str(config), "--db", str(db))
    assert code == 1
    assert f"line {line}: " in output and "nothing was imported" in output
    if db.exists():
        assert sqlite3.connect(db).execute("SELECT count(*) FROM campaigns").fetchone() == (0,)


async def test_trace_json_equals_the_api(pw: Listener) -> None:
    clickid = await pw.click(ref_id="ext-55")
    await pw.postback(clickid=clickid, type="Deposit", status="2", sum="5", txid="TX-55")
    await pw.postback(clickid=clickid, status="1", txid="TX-55")
    await pw.delivered(clickid)
    for any_id in (clickid, "ext-55", "TX-55"):
        api = await pw.trace(any_id)
        code, output = run("trace", any_id, "--json", "--db", str(pw.store.path))
        assert code == 0
        assert json.loads(output) == api
        assert api["click"]["id"] == clickid
    code, output = run("trace", "TX-55", "--db", str(pw.store.path))
    assert code == 0
    assert "FILTERED postback 'paid deposits' (s2s): status 'pending' is not one of: approved" in (
        output
    )
    assert "FIRED postback 'paid deposits'" in output


async def test_trace_of_a_rejected_unknown_click(pw: Listener) -> None:
    await pw.postback(clickid="ghost", type="Lead")
    trace = await pw.trace("ghost")
    assert trace["click"] is None and trace["conversions"] == []
    assert trace["inbound"][0]["reason"].startswith("unknown click id 'ghost'")


def test_trace_without_a_database_says_what_to_do(tmp_path: Path) -> None:
    code, output = run("trace", "x", "--db", str(tmp_path / "none.db"))
    assert code == 1
    assert "no database at" in output and "postwatch serve" in output


def test_storage_keep_days_takes_a_whole_number_of_days_and_refuses_a_negative_one() -> None:
    assert parse("[storage]\nkeep_days = 0\n").settings.keep_days == 0
    assert parse("[storage]\nkeep_days = 30\n").settings.keep_days == 30
    with pytest.raises(ConfigError) as refused:
        parse("[storage]\nkeep_days = -1\n")
    assert refused.value.line == 2
    assert "'keep_days' is -1" in str(refused.value)
    with pytest.raises(ConfigError) as refused:
        parse("[storage]\nkeep_days = 1.5\n")
    assert "'keep_days' must be a whole number" in str(refused.value)
