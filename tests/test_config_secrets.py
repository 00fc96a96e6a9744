"""config export masks secrets unless --include-secrets; importing the mask keeps the stored
secret; [keys] entries are stored flat and checked against the dashboard's binding ids."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import pytest

from store import workspace
from store.config import MASK, ConfigError, flatten_keys, parse
from tests.helpers import FULL, import_text, run, stored

GOOGLE = """
[[campaigns]]
key = "casino-fr"

[[campaigns.postbacks]]
name = "google uploads"
kind = "google"
customer_id = "123-456-7890"
conversion_action = "987"
developer_token = "dev-token-789"
access_token = "env:GOOGLE_TOKEN"
login_customer_id = ""
"""


def exported(db: Path, *flags: str) -> dict[str, object]:
    code, text = run("config", "export", *flags, "--db", str(db))
    assert code == 0, text
    return tomllib.loads(text)


def configured(tmp_path: Path) -> Path:
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, FULL)[0] == 0
    code, output = import_text(tmp_path, db, GOOGLE, "google.toml")
    assert code == 0, output
    return db


def test_export_masks_every_secret_and_keeps_env_references(tmp_path: Path) -> None:
    data = exported(configured(tmp_path))
    listener = data["listener"]
    assert isinstance(listener, dict)
    assert (listener["key"], listener["token"]) == (MASK, MASK)
    campaigns = data["campaigns"]
    assert isinstance(campaigns, list)
    meta, google = campaigns[0]["postbacks"][1:]
    assert meta["access_token"] == MASK
    assert meta["pixel_id"] == "1234567890"
    assert google["developer_token"] == MASK
    assert google["access_token"] == "env:GOOGLE_TOKEN"
    assert google["login_customer_id"] == ""
    assert google["customer_id"] == "123-456-7890"


def test_include_secrets_writes_them_as_they_are(tmp_path: Path) -> None:
    data = exported(configured(tmp_path), "--include-secrets")
    listener = data["listener"]
    assert isinstance(listener, dict)
    assert (listener["key"], listener["token"]) == ("inbound-key-123", "api-token-456")
    campaigns = data["campaigns"]
    assert isinstance(campaigns, list)
    meta, google = campaigns[0]["postbacks"][1:]
    assert meta["access_token"] == "EAAB-secret-token"
    assert google["developer_token"] == "dev-token-789"


def test_export_edit_import_keeps_the_stored_secrets(tmp_path: Path) -> None:
    db = configured(tmp_path)
    before = stored(db)
    code, text = run("config", "export", "--db", str(db))
    assert code == 0 and MASK in text
    edited = text.replace('pixel_id = "1234567890"', 'pixel_id = "555"')
    code, output = import_text(tmp_path, db, edited, "edited.toml")
    assert code == 0, output
    after = stored(db)
    assert (after.settings.key, after.settings.token) == ("inbound-key-123", "api-token-456")
    meta, google = after.campaigns[0].postbacks[1:]
    assert meta.platform["access_token"] == "EAAB-secret-token"
    assert meta.platform["pixel_id"] == "555"
    assert google.platform["developer_token"] == "dev-token-789"
    meta.platform["pixel_id"] = "1234567890"
    assert after == before


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        (
            'key = "inbound-key-123"',
            f'key = "{MASK}"',
            13,
            f"[listener]: 'key' is the mask {MASK} of an exported secret, but the database "
            "holds no [listener] key to keep: write the secret itself",
        ),
        (
            'token = "api-token-456"',
            f'token = "{MASK}"',
            16,
            f"[listener]: 'token' is the mask {MASK}",
        ),
        (
            'access_token = "EAAB-secret-token"',
            f'access_token = "{MASK}"',
            73,
            f"campaign 'casino-fr', postback 'meta purchases': 'access_token' is the mask {MASK}",
        ),
    ],
)
def test_a_mask_with_no_stored_secret_to_keep_is_refused(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    """A masked export imported into a new database would otherwise leave the listener open
    (no key) or a platform without its token, silently."""
    text = FULL.replace(old, new)
    db = tmp_path / "new.db"
    code, output = import_text(tmp_path, db, text)
    assert code == 1
    assert f"line {line}: {message}" in output and "nothing was imported" in output
    assert not db.exists()


def test_apply_workspace_refuses_a_mask_it_cannot_keep_and_writes_nothing(tmp_path: Path) -> None:
    """serve --config parses without what the database holds: writing checks it then."""
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, '[[offer_sources]]\nname = "Other"\n')[0] == 0
    loaded = parse(FULL.replace('token = "api-token-456"', f'token = "{MASK}"'))
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    before = workspace.load_workspace(conn)
    with pytest.raises(ConfigError) as refused, conn:
        workspace.apply_workspace(conn, loaded)
    assert f"[listener] token is the mask {MASK}" in refused.value.message
    assert workspace.load_workspace(conn) == before


def test_a_mask_over_a_stored_secret_keeps_it_when_parsed_without_the_database(
    tmp_path: Path,
) -> None:
    db = configured(tmp_path)
    loaded = parse(FULL.replace('access_token = "EAAB-secret-token"', f'access_token = "{MASK}"'))
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    with conn:
        workspace.apply_workspace(conn, loaded)
    meta = workspace.load_workspace(conn).campaigns[0].postbacks[1]
    assert meta.platform["access_token"] == "EAAB-secret-token"


# -- [keys] ----------------------------------------------------------------------------------

KEYS = """
[keys]
live.follow = "F"
"deliveries.resend" = ["R", "ctrl+r"]

[keys.rules]
toggle = "E"
"""

BINDING_IDS = ("app.quit", "deliveries.resend", "live.follow", "rules.toggle")


def test_keys_are_stored_flat_by_binding_id(tmp_path: Path) -> None:
    expected = {"live.follow": "F", "deliveries.resend": "R,ctrl+r", "rules.toggle": "E"}
    assert parse(KEYS).settings.keys == expected
    db = tmp_path / "pw.db"
    assert import_text(tmp_path, db, KEYS)[0] == 0
    assert stored(db).settings.keys == expected
    assert flatten_keys({"a": {"b": {"c": "x"}}, "d": ["1", "2"]}) == {"a.b.c": "x", "d": "1,2"}


@pytest.mark.parametrize(
    ("old", "new", "line", "binding", "hint"),
    [
        ('live.follow = "F"', 'live.folow = "F"', 3, "live.folow", "did you mean 'live.follow'?"),
        ('"deliveries.resend"', '"menu.open"', 4, "menu.open", "the ids start with"),
        ('toggle = "E"', 'togle = "E"', 7, "rules.togle", "did you mean 'rules.toggle'?"),
    ],
)
def test_an_unknown_binding_id_is_refused_with_its_line(
    tmp_path: Path, old: str, new: str, line: int, binding: str, hint: str
) -> None:
    text = KEYS.replace(old, new)
    with pytest.raises(ConfigError) as refused:
        parse(text, binding_ids=BINDING_IDS)
    message = refused.value.message
    assert refused.value.line == line
    assert message.startswith(f"[keys]: there is no binding with the id '{binding}'; {hint}")
    config = tmp_path / "keys.toml"
    config.write_text(text)
    db = tmp_path / "pw.db"
    obj = {"binding_ids": lambda: list(BINDING_IDS)}
    code, output = run("config", "import", str(config), "--db", str(db), obj=obj)
    assert code == 1
    assert f"line {line}: {message}" in output and "nothing was imported" in output
    # Without the dashboard's ids (the root command gave none) they are not checked.
    assert run("config", "import", str(config), "--db", str(db))[0] == 0


def test_known_binding_ids_pass(tmp_path: Path) -> None:
    config = tmp_path / "keys.toml"
    config.write_text(KEYS)
    db = tmp_path / "pw.db"
    obj = {"binding_ids": lambda: list(BINDING_IDS)}
    code, output = run("config", "import", str(config), "--db", str(db), obj=obj)
    assert code == 0, output
