"""The configured workspace in the database: settings, sources, campaigns, postback configs.

Sync functions of a ``sqlite3.Connection``, for writer jobs, readers and the CLI alike.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from dataclasses import asdict, fields, replace
from typing import Any

from store.config import LISTENER_SECRETS, MASK, ConfigError, is_secret_key
from store.records import (
    Campaign,
    OfferSource,
    PostbackConfig,
    Settings,
    Sink,
    TrafficSource,
    Workspace,
)

# Computed once: load_settings runs for every postback and every delivery attempt.
_SETTING_NAMES = frozenset(f.name for f in fields(Settings))


def load_settings(conn: sqlite3.Connection) -> Settings:
    """The stored settings over the defaults; unknown keys are ignored."""
    settings = Settings()
    for key, value in conn.execute("SELECT key, value FROM settings"):
        if key in _SETTING_NAMES:
            setattr(settings, key, json.loads(value))
    return settings


def save_settings(conn: sqlite3.Connection, settings: Settings) -> None:
    conn.executemany(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [(key, json.dumps(value)) for key, value in asdict(settings).items()],
    )


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


def _offer_source(row: sqlite3.Row) -> OfferSource:
    return OfferSource(
        id=row["id"],
        name=row["name"],
        default_status=row["default_status"],
        duplicates=row["duplicates"],
        status_aliases=json.loads(row["status_aliases"]),
    )


def _traffic_source(row: sqlite3.Row) -> TrafficSource:
    return TrafficSource(
        id=row["id"],
        name=row["name"],
        click_id_param=row["click_id_param"],
        postback_url=row["postback_url"],
        success_body=row["success_body"],
        failure_body=row["failure_body"],
    )


def postback_config(row: sqlite3.Row) -> PostbackConfig:
    return PostbackConfig(
        id=row["id"],
        campaign_id=row["campaign_id"],
        name=row["name"],
        kind=row["kind"],
        url=row["url"],
        method=row["method"],
        body=row["body"],
        enabled=bool(row["enabled"]),
        conditional=bool(row["conditional"]),
        types=json.loads(row["types"]),
        statuses=json.loads(row["statuses"]),
        min_payout=row["min_payout"],
        refire_on_update=bool(row["refire_on_update"]),
        platform=json.loads(row["platform"]),
    )


def offer_sources(conn: sqlite3.Connection) -> list[OfferSource]:
    return [_offer_source(r) for r in conn.execute("SELECT * FROM offer_sources ORDER BY id")]


def traffic_sources(conn: sqlite3.Connection) -> list[TrafficSource]:
    return [_traffic_source(r) for r in conn.execute("SELECT * FROM traffic_sources ORDER BY id")]


_CAMPAIGN = """
    SELECT c.*, t.name AS traffic_source, o.name AS offer_source
    FROM campaigns c
    JOIN traffic_sources t ON t.id = c.traffic_source_id
    JOIN offer_sources o ON o.id = c.offer_source_id
"""


def _campaign(conn: sqlite3.Connection, row: sqlite3.Row) -> Campaign:
    return Campaign(
        id=row["id"],
        key=row["key"],
        name=row["name"],
        traffic_source=row["traffic_source"],
        offer_source=row["offer_source"],
        offer_url=row["offer_url"],
        postbacks=postback_configs(conn, row["id"]),
    )


def campaigns(conn: sqlite3.Connection) -> list[Campaign]:
    rows = conn.execute(_CAMPAIGN + " ORDER BY c.id").fetchall()
    return [_campaign(conn, row) for row in rows]


def postback_configs(conn: sqlite3.Connection, campaign_id: int) -> list[PostbackConfig]:
    rows = conn.execute(
        "SELECT * FROM postback_configs WHERE campaign_id = ? ORDER BY position, id",
        (campaign_id,),
    )
    return [postback_config(row) for row in rows]


def _sink(row: sqlite3.Row) -> Sink:
    return Sink(
        name=row["name"],
        status=row["status"],
        body=row["body"],
        delay_ms=row["delay_ms"],
        fail_ratio=row["fail_ratio"],
        mimic=row["mimic"],
        error=bool(row["error"]),
        fault=row["fault"],
        retry_after=row["retry_after"],
    )


def sinks(conn: sqlite3.Connection) -> list[Sink]:
    return [_sink(row) for row in conn.execute("SELECT * FROM sinks ORDER BY name")]


def sink(conn: sqlite3.Connection, name: str) -> Sink:
    """How the sink of this name answers (the default for one not configured)."""
    row = conn.execute("SELECT * FROM sinks WHERE name = ?", (name,)).fetchone()
    return Sink(name=name) if row is None else _sink(row)


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
    key: str,
    values: dict[str, Any],
    update: Collection[str] | None = None,
    returning: str = "id",
) -> Any:
    """Insert a row with all ``values``, or update the row of the same unique ``key`` with the
    columns in ``update`` only (None: all of them); return the row id (or ``returning``)."""
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    chosen = [name for name in values if name != key and (update is None or name in update)]
    # Setting the key to itself keeps RETURNING working when nothing else is to change.
    updates = ", ".join(f"{name} = excluded.{name}" for name in chosen or [key])
    row = conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        f" ON CONFLICT ({key}) DO UPDATE SET {updates} RETURNING {returning}",
        list(values.values()),
    ).fetchone()
    return row[0]


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
        values = asdict(sink_)
        values["error"] = int(sink_.error)
        _upsert(conn, "sinks", "name", values, sink_.given, returning="name")
    for offer in workspace.offer_sources:
        _upsert(
            conn,
            "offer_sources",
            "name",
            {
                "name": offer.name,
                "default_status": offer.default_status,
                "duplicates": offer.duplicates,
                "status_aliases": json.dumps(offer.status_aliases),
            },
            offer.given,
        )
    for traffic in workspace.traffic_sources:
        _upsert(
            conn,
            "traffic_sources",
            "name",
            {
                "name": traffic.name,
                "click_id_param": traffic.click_id_param,
                "postback_url": traffic.postback_url,
                "success_body": traffic.success_body,
                "failure_body": traffic.failure_body,
            },
            traffic.given,
        )
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
    given = campaign.given
    update = None if given is None else {_CAMPAIGN_COLUMNS.get(name, name) for name in given}
    campaign_id = _upsert(
        conn,
        "campaigns",
        "key",
        {
            "key": campaign.key,
            "name": campaign.name,
            "traffic_source_id": _id_by_name(conn, "traffic_sources", campaign.traffic_source),
            "offer_source_id": _id_by_name(conn, "offer_sources", campaign.offer_source),
            "offer_url": campaign.offer_url,
        },
        update,
    )
    for position, config in enumerate(campaign.postbacks):
        if config.given is None:
            save_postback_config(conn, campaign_id, config, position)
        else:
            _apply_postback_config(conn, campaign_id, config)


# The config's keys of a campaign, where the column is named otherwise.
_CAMPAIGN_COLUMNS = {"traffic_source": "traffic_source_id", "offer_source": "offer_source_id"}


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
    merged = replace(
        held,
        **{name: getattr(config, name) for name in _RULE_FIELDS if name in given},
    )
    merged.platform = _merged_platform(held, config)
    save_postback_config(conn, campaign_id, merged, row["position"])


_RULE_FIELDS = frozenset(f.name for f in fields(PostbackConfig)) - {"name", "id", "campaign_id"}


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
    row = conn.execute(
        """
        INSERT INTO postback_configs (campaign_id, position, name, kind, url, method, body,
            enabled, conditional, types, statuses, min_payout, refire_on_update, platform)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (campaign_id, name) DO UPDATE SET position = excluded.position,
            kind = excluded.kind, url = excluded.url, method = excluded.method,
            body = excluded.body, enabled = excluded.enabled,
            conditional = excluded.conditional, types = excluded.types,
            statuses = excluded.statuses, min_payout = excluded.min_payout,
            refire_on_update = excluded.refire_on_update, platform = excluded.platform
        RETURNING id
        """,
        (
            campaign_id,
            position,
            config.name,
            config.kind,
            config.url,
            config.method,
            config.body,
            int(config.enabled),
            int(config.conditional),
            json.dumps(config.types),
            json.dumps(config.statuses),
            config.min_payout,
            int(config.refire_on_update),
            json.dumps(config.platform),
        ),
    ).fetchone()
    return int(row[0])


def update_rule(conn: sqlite3.Connection, config: PostbackConfig) -> None:
    """Save a postback config's rule (enabled, conditional, types, statuses, min payout)."""
    conn.execute(
        "UPDATE postback_configs SET enabled = ?, conditional = ?, types = ?, statuses = ?,"
        " min_payout = ?, refire_on_update = ? WHERE id = ?",
        (
            int(config.enabled),
            int(config.conditional),
            json.dumps(config.types),
            json.dumps(config.statuses),
            config.min_payout,
            int(config.refire_on_update),
            config.id,
        ),
    )
