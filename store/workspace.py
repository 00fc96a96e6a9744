"""The configured workspace in the database: settings, sources, campaigns, postback configs.

Sync functions of a ``sqlite3.Connection``, for writer jobs, readers and the CLI alike. Which
column holds which field, and how (JSON for lists and tables, 0/1 for booleans), comes from
the records' declarations in ``store.records``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from dataclasses import Field, fields, replace
from typing import Any, TypeVar

from store.config import LISTENER_SECRETS, MASK, ConfigError, is_secret_key
from store.records import (
    RULE_FIELDS,
    Campaign,
    Key,
    OfferSource,
    PostbackConfig,
    Settings,
    Sink,
    TrafficSource,
    Workspace,
    key_of,
)

Record = TypeVar("Record", OfferSource, TrafficSource, Sink, Campaign, PostbackConfig)

# -- columns, as the records declare them ----------------------------------------------------


Column = tuple[Field[Any], Key | None, str]
# Worked out once per record: rows are mapped on hot paths (a sink's answer, the snapshot).
_COLUMNS: dict[type, tuple[Column, ...]] = {}


def _stored(record: type) -> tuple[Column, ...]:
    """(field, its Key, its column) for every field of ``record`` its table stores; a field
    without a Key (``id``, ``campaign_id``) is a column of its own name."""
    if record not in _COLUMNS:
        _COLUMNS[record] = _columns(record)
    return _COLUMNS[record]


def _columns(record: type) -> tuple[Column, ...]:
    stored: list[Column] = []
    for declared in fields(record):
        spec = key_of(declared)
        if spec is None:
            stored.append((declared, None, declared.name))
        elif spec.column is not None:
            stored.append((declared, spec, spec.column or declared.name))
    return tuple(stored)


def _kinds(spec: Key) -> tuple[type, ...]:
    return spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)


def _decoded(spec: Key | None, raw: Any) -> Any:
    """A column's value as the record holds it."""
    if spec is None or raw is None:
        return raw
    kinds = _kinds(spec)
    if list in kinds or dict in kinds:
        raw = json.loads(raw)
    elif bool in kinds:
        raw = bool(raw)
    return spec.convert(raw) if spec.convert else raw


def _encoded(spec: Key | None, value: Any) -> Any:
    """A record's value as its column holds it."""
    if spec is None or value is None:
        return value
    kinds = _kinds(spec)
    if list in kinds or dict in kinds:
        return json.dumps(value)
    if bool in kinds:
        return int(value)
    return value


def _from_row(record: type[Record], row: sqlite3.Row) -> Record:
    """A record from its row. A column holding another row's id (``refers``) is read under
    the field's own name, which the query joins in (``t.name AS traffic_source``)."""
    values = {
        declared.name: _decoded(spec, row[declared.name if spec and spec.refers else column])
        for declared, spec, column in _stored(record)
    }
    return record(**values)


def _to_row(conn: sqlite3.Connection, item: Any) -> dict[str, Any]:
    """The columns of a record's row (not its id), a name it refers by turned into an id."""
    values: dict[str, Any] = {}
    for declared, spec, column in _stored(type(item)):
        if spec is None:
            continue
        value = getattr(item, declared.name)
        if spec.refers:
            values[column] = _id_by_name(conn, spec.refers, value)
        else:
            values[column] = _encoded(spec, value)
    return values


def _given_columns(record: type, given: frozenset[str] | None) -> set[str] | None:
    """The columns of the fields a parsed record gave (None: all of them)."""
    if given is None:
        return None
    return {column for declared, _, column in _stored(record) if declared.name in given}


# -- settings: one row per field, its value as JSON --------------------------------------------

# Computed once: load_settings runs for every configuration snapshot and delivery poll.
_SETTINGS: dict[str, Key | None] = {
    declared.name: key_of(declared) for declared in fields(Settings)
}
_SETTING_NAMES = frozenset(_SETTINGS)


def load_settings(conn: sqlite3.Connection) -> Settings:
    """The settings: the stored ones over the defaults (unknown keys are ignored). This is
    the one way settings are read; the writer's snapshot (``store.snapshot``) holds its
    result for the postback path."""
    settings = Settings()
    for key, value in conn.execute("SELECT key, value FROM settings"):
        if key in _SETTINGS:
            spec = _SETTINGS[key]
            loaded = json.loads(value)
            setattr(settings, key, spec.convert(loaded) if spec and spec.convert else loaded)
    return settings


def save_settings(conn: sqlite3.Connection, settings: Settings) -> None:
    """Store every setting."""
    for name in sorted(_SETTING_NAMES):
        save_setting(conn, name, getattr(settings, name))


def save_setting(conn: sqlite3.Connection, key: str, value: Any) -> None:
    """Store one setting (a ``Settings`` field), leaving the others as they are."""
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )


def conversion_types(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM conversion_types ORDER BY rowid")]


def is_empty(conn: sqlite3.Connection) -> bool:
    """Whether nothing has been configured yet (no campaign and no source)."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM campaigns) + (SELECT count(*) FROM offer_sources)"
        " + (SELECT count(*) FROM traffic_sources)"
    ).fetchone()
    return bool(row[0] == 0)


def postback_config(row: sqlite3.Row) -> PostbackConfig:
    """A postback config from its row."""
    return _from_row(PostbackConfig, row)


def offer_sources(conn: sqlite3.Connection) -> list[OfferSource]:
    rows = conn.execute("SELECT * FROM offer_sources ORDER BY id")
    return [_from_row(OfferSource, row) for row in rows]


def traffic_sources(conn: sqlite3.Connection) -> list[TrafficSource]:
    rows = conn.execute("SELECT * FROM traffic_sources ORDER BY id")
    return [_from_row(TrafficSource, row) for row in rows]


_CAMPAIGN = """
    SELECT c.*, t.name AS traffic_source, o.name AS offer_source
    FROM campaigns c
    JOIN traffic_sources t ON t.id = c.traffic_source_id
    JOIN offer_sources o ON o.id = c.offer_source_id
"""


def _campaign(conn: sqlite3.Connection, row: sqlite3.Row) -> Campaign:
    campaign = _from_row(Campaign, row)
    campaign.postbacks = postback_configs(conn, campaign.id or 0)
    return campaign


def campaigns(conn: sqlite3.Connection) -> list[Campaign]:
    rows = conn.execute(_CAMPAIGN + " ORDER BY c.id").fetchall()
    return [_campaign(conn, row) for row in rows]


def postback_configs(conn: sqlite3.Connection, campaign_id: int) -> list[PostbackConfig]:
    rows = conn.execute(
        "SELECT * FROM postback_configs WHERE campaign_id = ? ORDER BY position, id",
        (campaign_id,),
    )
    return [postback_config(row) for row in rows]


def sinks(conn: sqlite3.Connection) -> list[Sink]:
    return [_from_row(Sink, row) for row in conn.execute("SELECT * FROM sinks ORDER BY name")]


def sink(conn: sqlite3.Connection, name: str) -> Sink:
    """How the sink of this name answers (the default for one not configured)."""
    row = conn.execute("SELECT * FROM sinks WHERE name = ?", (name,)).fetchone()
    return Sink(name=name) if row is None else _from_row(Sink, row)


def load_workspace(conn: sqlite3.Connection) -> Workspace:
    """The whole configuration, as a config file would hold it."""
    return Workspace(
        conversion_types=conversion_types(conn),
        settings=load_settings(conn),
        sinks=sinks(conn),
        offer_sources=offer_sources(conn),
        traffic_sources=traffic_sources(conn),
        campaigns=campaigns(conn),
    )


def _upsert(
    conn: sqlite3.Connection,
    table: str,
    keys: tuple[str, ...],
    values: dict[str, Any],
    update: Collection[str] | None = None,
    returning: str = "id",
) -> Any:
    """Insert a row with all ``values``, or update the row of the same unique ``keys`` with
    the columns in ``update`` only (None: all of them); return the row id (or ``returning``)."""
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    chosen = [name for name in values if name not in keys and (update is None or name in update)]
    # Setting a key to itself keeps RETURNING working when nothing else is to change.
    updates = ", ".join(f"{name} = excluded.{name}" for name in chosen or keys[:1])
    row = conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates} RETURNING {returning}",
        list(values.values()),
    ).fetchone()
    return row[0]


def _apply_record(
    conn: sqlite3.Connection, table: str, key: str, item: Any, returning: str = "id"
) -> Any:
    """Insert or update one record's row, matched by its unique ``key``: a stored row gets
    only the columns of the keys the record was given."""
    update = _given_columns(type(item), item.given)
    return _upsert(conn, table, (key,), _to_row(conn, item), update, returning)


def apply_workspace(conn: sqlite3.Connection, workspace: Workspace) -> None:
    """Write a workspace in: everything is matched by name (campaigns by key) and updated in
    place, so applying the same workspace twice changes nothing. Things the workspace does not
    name are left as they are, and so are the keys a parsed record did not give (its
    ``given``); a new row gets the record's defaults for those. A masked secret (``MASK``)
    keeps the stored one; with none stored, ``ConfigError`` is raised and the caller's
    transaction must be rolled back."""
    _apply_settings(conn, workspace.settings)
    conn.executemany(
        "INSERT OR IGNORE INTO conversion_types (name) VALUES (?)",
        [(name,) for name in workspace.conversion_types],
    )
    for sink_ in workspace.sinks:
        _apply_record(conn, "sinks", "name", sink_, returning="name")
    for offer in workspace.offer_sources:
        _apply_record(conn, "offer_sources", "name", offer)
    for traffic in workspace.traffic_sources:
        _apply_record(conn, "traffic_sources", "name", traffic)
    for campaign in workspace.campaigns:
        _apply_campaign(conn, campaign)


def _apply_settings(conn: sqlite3.Connection, settings: Settings) -> None:
    stored = load_settings(conn)
    names = _SETTING_NAMES if settings.given is None else _SETTING_NAMES & settings.given
    for name in sorted(names):
        value = getattr(settings, name)
        if name in LISTENER_SECRETS and value == MASK:
            _keep_secret(getattr(stored, name), f"[listener] {name}")
            continue
        if name == "keys" and settings.given is not None:
            value = {**stored.keys, **value}  # bindings the file leaves out stay remapped
        save_setting(conn, name, value)


def _keep_secret(stored: Any, what: str) -> None:
    """A masked secret keeps the stored one; refuse it when there is none to keep."""
    if not stored:
        raise ConfigError(
            None,
            f"{what} is the mask {MASK} of an exported secret, but the database holds no "
            f"{what} to keep: write the secret itself",
        )


def _apply_campaign(conn: sqlite3.Connection, campaign: Campaign) -> None:
    campaign_id = _apply_record(conn, "campaigns", "key", campaign)
    for position, config in enumerate(campaign.postbacks):
        if config.given is None:
            save_postback_config(conn, campaign_id, config, position)
        else:
            _apply_postback_config(conn, campaign_id, config)


def _id_by_name(conn: sqlite3.Connection, table: str, name: str) -> int:
    row = conn.execute(f"SELECT id FROM {table} WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise ValueError(f"no {table.replace('_', ' ')[:-1]} is named '{name}'")
    return int(row[0])


def _apply_postback_config(
    conn: sqlite3.Connection, campaign_id: int, config: PostbackConfig
) -> None:
    """Save a parsed postback config: a new one goes after the campaign's others with the
    defaults for what it leaves out; a stored one gets the keys given and keeps its place,
    its other keys and, when its kind stays, its other platform settings."""
    row = conn.execute(
        "SELECT * FROM postback_configs WHERE campaign_id = ? AND name = ?",
        (campaign_id, config.name),
    ).fetchone()
    given = config.given or frozenset()
    if row is None:
        for key, value in config.platform.items():
            if is_secret_key(key) and value == MASK:
                _keep_secret("", f"{key} of postback '{config.name}'")
        (last,) = conn.execute(
            "SELECT max(position) FROM postback_configs WHERE campaign_id = ?", (campaign_id,)
        ).fetchone()
        save_postback_config(conn, campaign_id, config, 0 if last is None else last + 1)
        return
    held = postback_config(row)
    merged = replace(held, **{name: getattr(config, name) for name in given if name != "name"})
    merged.platform = _merged_platform(held, config)
    save_postback_config(conn, campaign_id, merged, row["position"])


def _merged_platform(held: PostbackConfig, config: PostbackConfig) -> dict[str, Any]:
    """The given platform settings over the stored ones (all replaced when the kind changes);
    a masked secret keeps the stored one."""
    kind_given = "kind" in (config.given or ())
    platform = {} if kind_given and config.kind != held.kind else dict(held.platform)
    for key, value in config.platform.items():
        if is_secret_key(key) and value == MASK:
            _keep_secret(held.platform.get(key), f"{key} of postback '{config.name}'")
            continue
        platform[key] = value
    return platform


def save_postback_config(
    conn: sqlite3.Connection, campaign_id: int, config: PostbackConfig, position: int
) -> int:
    """Insert or update a campaign's postback config, matched by name."""
    values = {"campaign_id": campaign_id, "position": position, **_to_row(conn, config)}
    return int(_upsert(conn, "postback_configs", ("campaign_id", "name"), values))


# The columns of a postback config's rule, which the dashboard saves on its own.
_RULE_COLUMNS = [
    (declared.name, spec, column)
    for declared, spec, column in _stored(PostbackConfig)
    if declared.name in RULE_FIELDS
]


def update_rule(conn: sqlite3.Connection, config: PostbackConfig) -> None:
    """Save a postback config's rule (enabled, conditional, types, statuses, min payout,
    refire on update)."""
    sets = ", ".join(f"{column} = ?" for _, _, column in _RULE_COLUMNS)
    values = [_encoded(spec, getattr(config, name)) for name, spec, _ in _RULE_COLUMNS]
    conn.execute(f"UPDATE postback_configs SET {sets} WHERE id = ?", [*values, config.id])


def update_url(conn: sqlite3.Connection, config_id: int, url: str) -> None:
    """Save a postback config's own URL template ("": use its traffic source's)."""
    conn.execute("UPDATE postback_configs SET url = ? WHERE id = ?", (url, config_id))


def update_postback_url(conn: sqlite3.Connection, traffic_source: str, url: str) -> None:
    """Save a traffic source's postback URL template (of its configs without their own)."""
    found = conn.execute(
        "UPDATE traffic_sources SET postback_url = ? WHERE name = ?", (url, traffic_source)
    )
    if found.rowcount == 0:
        raise ValueError(f"no traffic source is named '{traffic_source}'")
