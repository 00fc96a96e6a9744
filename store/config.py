"""The TOML config file of SPEC §5: reading it (all or nothing, with the line of any error)
and writing the workspace back in the same form."""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import fields
from typing import Any

from store.platforms import COMMON, SETTINGS
from store.records import (
    DUPLICATE_MODES,
    KINDS,
    SINK_FAULTS,
    STATUSES,
    Campaign,
    OfferSource,
    PostbackConfig,
    Settings,
    Sink,
    TrafficSource,
    Workspace,
)

# Platform settings each API kind accepts (SPEC §5), besides the rule and `name`/`kind`; they
# are declared once, in store.platforms.
PLATFORM_KEYS: dict[str, tuple[str, ...]] = {kind: p.keys for kind, p in SETTINGS.items()}
PLATFORM_COMMON = COMMON

RULE_KEYS = (
    "name",
    "kind",
    "url",
    "method",
    "body",
    "enabled",
    "conditional",
    "types",
    "statuses",
    "min_payout",
    "refire_on_update",
)


class ConfigError(ValueError):
    """A config file that cannot be imported, with the line to look at."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


class _Lines:
    """Finds the line a table entry or a key of it stands on, for error messages."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def table(self, header: str, index: int = 0, after: int = 0) -> int | None:
        pattern = re.compile(rf"^\s*\[{{1,2}}\s*{re.escape(header)}\s*\]{{1,2}}\s*(#.*)?$")
        seen = -1
        for number, line in enumerate(self.lines[after:], start=after + 1):
            if pattern.match(line):
                seen += 1
                if seen == index:
                    return number
        return None

    def key(self, start: int | None, name: str) -> int | None:
        """The line of key ``name`` in the table starting at ``start`` (or ``start``)."""
        return self.find_key(start, name) or start

    def find_key(self, start: int | None, name: str) -> int | None:
        """The line of key ``name`` in the table starting at ``start``; None if not there."""
        if start is None:
            return None
        pattern = re.compile(rf"^\s*\"?{re.escape(name)}\"?\s*=")
        for number, line in enumerate(self.lines[start:], start=start + 1):
            if line.lstrip().startswith("["):
                break
            if pattern.match(line):
                return number
        return None


class _Reader:
    """Reads one table with type checks; every error names the key and its line."""

    def __init__(self, table: dict[str, Any], where: str, line: int | None, lines: _Lines):
        self.table, self.where, self.line, self.lines = table, where, line, lines

    def fail(self, key: str | None, message: str) -> ConfigError:
        line = self.lines.key(self.line, key) if key else self.line
        return ConfigError(line, f"{self.where}: {message}")

    def only(self, allowed: tuple[str, ...]) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.fail(key, f"unknown key '{key}' (known keys: {', '.join(allowed)})")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) and kind is not bool:
            raise self.fail(key, f"'{key}' must be {_kind_name(kind)}, not {value!r}")
        if not isinstance(value, kind):
            raise self.fail(key, f"'{key}' must be {_kind_name(kind)}, not {value!r}")
        return value

    def required(self, key: str) -> str:
        value = self.get(key, str, None)
        if not value:
            raise self.fail(None, f"'{key}' is required")
        return str(value)

    def strings(self, key: str) -> list[str]:
        value = self.get(key, list, [])
        if not all(isinstance(item, str) for item in value):
            raise self.fail(key, f"'{key}' must be a list of strings, not {value!r}")
        return list(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = str(self.get(key, str, default))
        if value not in choices:
            raise self.fail(key, f"'{key}' is '{value}'; use one of: {', '.join(choices)}")
        return value

    def regex(self, key: str) -> str:
        value = str(self.get(key, str, ""))
        try:
            re.compile(value)
        except re.error as error:
            raise self.fail(key, f"'{key}' is not a valid regular expression: {error}") from None
        return value


def _non_negative(reader: _Reader, key: str) -> int:
    value = int(reader.get(key, int, 0))
    if value < 0:
        raise reader.fail(key, f"'{key}' is {value}; use 0 or more seconds")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "text",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _entries(data: dict[str, Any], name: str) -> list[Any]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(None, f"'{name}' must be written as [[{name}]] tables")
    return value


def parse(
    text: str,
    known: Workspace | None = None,
    binding_ids: Collection[str] | None = None,
) -> Workspace:
    """Read a config file; raise ``ConfigError`` naming the line and the problem.

    ``known`` is what the database already holds (``workspace.load_workspace(conn)``): with it,
    a campaign may name sources the database holds, a campaign the database holds needs no
    sources, and a masked secret is refused when there is no stored one to keep. Without it,
    the file must define what it refers to. ``binding_ids``, when given, are the dashboard's
    binding ids: a ``[keys]`` entry for any other id is refused.

    Each record gets ``given``: the keys its table named, which are all that
    ``apply_workspace`` writes over a stored row."""
    data = _toml(text)
    lines = _Lines(text)
    stored = _Known(known)
    top = _Reader(data, "the top level", None, lines)
    top.only(
        (
            "conversion_types",
            "currency",
            "listener",
            "delivery",
            "sinks",
            "offer_sources",
            "traffic_sources",
            "campaigns",
            "keys",
            "storage",
        )
    )
    workspace = Workspace(conversion_types=top.strings("conversion_types"))
    settings = workspace.settings
    settings.currency = str(top.get("currency", str, settings.currency))
    settings.keys = _read_keys(top, lines, binding_ids)
    listener = _read_listener(data, lines, settings, stored)
    delivery = _read_delivery(data, lines, settings)
    storage = _read_storage(data, lines, settings)
    settings.given = frozenset(
        {name for name in ("currency", "keys") if name in data} | listener | delivery | storage
    )
    workspace.sinks = [
        _read_sink(table, index, lines, stored)
        for index, table in enumerate(_entries(data, "sinks"))
    ]
    workspace.offer_sources = [
        _read_offer_source(table, index, lines)
        for index, table in enumerate(_entries(data, "offer_sources"))
    ]
    workspace.traffic_sources = [
        _read_traffic_source(table, index, lines)
        for index, table in enumerate(_entries(data, "traffic_sources"))
    ]
    postback_index = 0
    for index, table in enumerate(_entries(data, "campaigns")):
        campaign = _read_campaign(table, index, lines, stored)
        for table_ in _entries(table, "postbacks"):
            pb_line = lines.table("campaigns.postbacks", postback_index)
            postback_index += 1
            campaign.postbacks.append(_read_postback(table_, campaign.key, pb_line, lines, stored))
        workspace.campaigns.append(campaign)
    _check_references(workspace, lines, stored)
    return workspace


def _toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        line = int(match.group(1)) if match else None
        raise ConfigError(line, f"not valid TOML: {error}") from None


class _Known:
    """What the database already holds, as ``parse`` needs it. ``checked`` is False when the
    caller did not say (then only the file counts, and masked secrets are left to
    ``apply_workspace`` to check)."""

    def __init__(self, workspace: Workspace | None) -> None:
        self.checked = workspace is not None
        held = workspace or Workspace()
        self.settings = held.settings
        self.sinks = {sink.name: sink for sink in held.sinks}
        self.offer_sources = {source.name for source in held.offer_sources}
        self.traffic_sources = {source.name for source in held.traffic_sources}
        self.campaigns = {campaign.key: campaign for campaign in held.campaigns}

    def postback(self, campaign: str, name: str) -> PostbackConfig | None:
        held = self.campaigns.get(campaign)
        configs = [] if held is None else [c for c in held.postbacks if c.name == name]
        return configs[0] if configs else None


def flatten_keys(keys: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """The ``[keys]`` table as binding id -> keys. A TOML dotted key (``live.follow = "F"``)
    arrives as a nested table, so nested tables are joined back with dots; a list of keys is
    joined with commas, as Textual writes several keys."""
    flat: dict[str, str] = {}
    for name, value in keys.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten_keys(value, f"{key}."))
        elif isinstance(value, list):
            flat[key] = ",".join(str(item) for item in value)
        else:
            flat[key] = str(value)
    return flat


def _read_keys(top: _Reader, lines: _Lines, binding_ids: Collection[str] | None) -> dict[str, str]:
    keys = flatten_keys(top.get("keys", dict, {}))
    for binding in unknown_bindings(keys, binding_ids or keys):
        raise ConfigError(
            _binding_line(lines, binding), unknown_binding(binding, binding_ids or ())
        )
    return keys


def unknown_bindings(keys: Collection[str], binding_ids: Collection[str]) -> list[str]:
    """The ids of ``keys`` that name no binding, in their order."""
    return [binding for binding in keys if binding not in binding_ids]


def unknown_binding(binding: str, binding_ids: Collection[str]) -> str:
    """The sentence for a ``[keys]`` id that names no binding, with the ids it may mean."""
    known_ids = sorted(set(binding_ids))
    close = difflib.get_close_matches(binding, known_ids, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    else:
        scopes = sorted({known.split(".")[0] + ".*" for known in known_ids})
        hint = f"the ids start with {', '.join(scopes)}; the dashboard's ? panel lists them all"
    return f"[keys]: there is no binding with the id '{binding}'; {hint}"


def _binding_line(lines: _Lines, binding: str) -> int | None:
    """The line of a ``[keys]`` entry, written ``"a.b" = ...`` or ``a.b = ...`` under
    ``[keys]``, or ``b = ...`` under ``[keys.a]``."""
    prefix, _, last = binding.rpartition(".")
    start = lines.table("keys")
    found = lines.find_key(start, binding)
    if found is None and prefix:
        found = lines.find_key(lines.table(f"keys.{prefix}"), last)
    return found or start


def _read_sink(table: dict[str, Any], index: int, lines: _Lines, stored: _Known) -> Sink:
    reader = _Reader(table, f"sink #{index + 1}", lines.table("sinks", index), lines)
    reader.only(
        (
            "name",
            "status",
            "body",
            "delay_ms",
            "fail_ratio",
            "mimic",
            "error",
            "fault",
            "retry_after",
        )
    )
    name = reader.required("name")
    status = int(reader.get("status", int, 200))
    if not 100 <= status <= 599:
        raise reader.fail("status", f"'status' is {status}; use an HTTP status, 100 to 599")
    fail_ratio = float(reader.get("fail_ratio", (int, float), 0.0))
    if not 0 <= fail_ratio <= 1:
        raise reader.fail("fail_ratio", f"'fail_ratio' is {fail_ratio}; use 0 to 1")
    held = stored.sinks.get(name)
    mimic = str(reader.get("mimic", str, held.mimic if held else ""))
    if mimic and mimic not in SETTINGS:
        raise reader.fail(
            "mimic",
            f"'mimic' is '{mimic}'; use one of: {', '.join(SETTINGS)} (or leave it out)",
        )
    mimic_error = bool(reader.get("error", bool, False))
    if mimic_error and not mimic:
        raise reader.fail("error", "'error' needs 'mimic': it answers with that platform's error")
    sink = Sink(
        name,
        status,
        str(reader.get("body", str, "OK")),
        int(reader.get("delay_ms", int, 0)),
        fail_ratio,
        # mimic: answer like this ad platform (success, or its error when error = true)
        mimic=mimic,
        error=mimic_error,
        fault=reader.choice("fault", ("", *SINK_FAULTS), ""),
        retry_after=_non_negative(reader, "retry_after"),
    )
    sink.given = frozenset(table)
    return sink


def _read_offer_source(table: dict[str, Any], index: int, lines: _Lines) -> OfferSource:
    reader = _Reader(
        table, f"offer source #{index + 1}", lines.table("offer_sources", index), lines
    )
    reader.only(("name", "default_status", "duplicates", "status_aliases"))
    aliases = reader.get("status_aliases", dict, {})
    for raw, status in aliases.items():
        if status not in STATUSES:
            raise reader.fail(
                "status_aliases",
                f"status alias '{raw}' maps to '{status}'; map it to one of: {', '.join(STATUSES)}",
            )
    source = OfferSource(
        name=reader.required("name"),
        default_status=reader.choice("default_status", STATUSES, "pending"),
        duplicates=reader.choice("duplicates", DUPLICATE_MODES, "update"),
        status_aliases={str(key): str(value) for key, value in aliases.items()},
    )
    source.given = frozenset(table)
    return source


def _read_traffic_source(table: dict[str, Any], index: int, lines: _Lines) -> TrafficSource:
    reader = _Reader(
        table, f"traffic source #{index + 1}", lines.table("traffic_sources", index), lines
    )
    reader.only(("name", "click_id_param", "postback_url", "success_body", "failure_body"))
    source = TrafficSource(
        name=reader.required("name"),
        click_id_param=str(reader.get("click_id_param", str, "ref_id")),
        postback_url=str(reader.get("postback_url", str, "")),
        success_body=reader.regex("success_body"),
        failure_body=reader.regex("failure_body"),
    )
    source.given = frozenset(table)
    return source


def _read_campaign(table: dict[str, Any], index: int, lines: _Lines, stored: _Known) -> Campaign:
    reader = _Reader(table, f"campaign #{index + 1}", lines.table("campaigns", index), lines)
    reader.only(("key", "name", "traffic_source", "offer_source", "offer_url", "postbacks"))
    key = reader.required("key")
    reader.where = f"campaign '{key}'"
    held = stored.campaigns.get(key)

    def source(name: str) -> str:
        # A campaign the database holds keeps its sources unless the file names others.
        if held is not None and name not in table:
            return str(getattr(held, name))
        return reader.required(name)

    campaign = Campaign(
        key=key,
        name=str(reader.get("name", str, held.name if held else key)),
        traffic_source=source("traffic_source"),
        offer_source=source("offer_source"),
        offer_url=str(reader.get("offer_url", str, "")),
    )
    campaign.given = frozenset(table) - {"postbacks"}
    return campaign


def _read_listener(
    data: dict[str, Any], lines: _Lines, settings: Settings, stored: _Known
) -> frozenset[str]:
    """Read ``[listener]`` into ``settings``; return the keys it gave."""
    table = data.get("listener", {})
    reader = _Reader(table, "[listener]", lines.table("listener"), lines)
    reader.only(
        (
            "host",
            "port",
            "unknown_clicks",
            "max_body",
            "key",
            "allow_ips",
            "trusted_proxies",
            "token",
        )
    )
    settings.host = str(reader.get("host", str, settings.host))
    settings.port = int(reader.get("port", int, settings.port))
    if not 0 < settings.port < 65536:
        raise reader.fail("port", f"'port' is {settings.port}; use 1 to 65535")
    policy = str(reader.get("unknown_clicks", str, "reject"))
    if policy != "reject" and not (policy.startswith("attach:") and len(policy) > 7):
        raise reader.fail(
            "unknown_clicks",
            f"'unknown_clicks' is '{policy}'; use \"reject\" or \"attach:<campaign key>\"",
        )
    settings.unknown_clicks = policy
    settings.max_body = int(reader.get("max_body", int, settings.max_body))
    settings.key = str(reader.get("key", str, ""))
    settings.allow_ips = _networks(reader, "allow_ips")
    settings.trusted_proxies = _networks(reader, "trusted_proxies")
    settings.token = str(reader.get("token", str, ""))
    for name in LISTENER_SECRETS:
        if (
            stored.checked
            and getattr(settings, name) == MASK
            and not getattr(stored.settings, name)
        ):
            raise reader.fail(name, _no_secret_to_keep(f"'{name}'", f"[listener] {name}"))
    return frozenset(table)


def _no_secret_to_keep(what: str, where: str) -> str:
    return (
        f"{what} is the mask {MASK} of an exported secret, but the database holds no "
        f"{where} to keep: write the secret itself"
    )


def _networks(reader: _Reader, key: str) -> list[str]:
    """A list of addresses or networks (``10.0.0.1``, ``10.0.0.0/8``, ``::1``)."""
    values = reader.strings(key)
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise reader.fail(
                key, f"'{key}' holds {value!r}, which is not an address or a network"
            ) from None
    return values


def _read_storage(data: dict[str, Any], lines: _Lines, settings: Settings) -> frozenset[str]:
    """Read ``[storage]`` into ``settings``; return the keys it gave."""
    table = data.get("storage", {})
    reader = _Reader(table, "[storage]", lines.table("storage"), lines)
    reader.only(("keep_days",))
    keep_days = int(reader.get("keep_days", int, settings.keep_days))
    if keep_days < 0:
        raise reader.fail(
            "keep_days",
            f"'keep_days' is {keep_days}; use 0 (keep everything) or a number of days to keep",
        )
    settings.keep_days = keep_days
    return frozenset(table)


def _read_delivery(data: dict[str, Any], lines: _Lines, settings: Settings) -> frozenset[str]:
    """Read ``[delivery]`` into ``settings``; return the keys it gave."""
    table = data.get("delivery", {})
    reader = _Reader(table, "[delivery]", lines.table("delivery"), lines)
    reader.only(("timeout", "retry_schedule", "per_target"))
    settings.timeout = float(reader.get("timeout", (int, float), settings.timeout))
    if settings.timeout <= 0:
        raise reader.fail("timeout", f"'timeout' is {settings.timeout:g}; use seconds above 0")
    schedule = reader.get("retry_schedule", list, settings.retry_schedule)
    if not all(isinstance(s, int | float) and not isinstance(s, bool) and s >= 0 for s in schedule):
        raise reader.fail(
            "retry_schedule", f"'retry_schedule' must list seconds (0 or more), not {schedule!r}"
        )
    settings.retry_schedule = [float(s) for s in schedule]
    settings.per_target = int(reader.get("per_target", int, settings.per_target))
    if not 1 <= settings.per_target <= 64:
        raise reader.fail(
            "per_target", f"'per_target' is {settings.per_target}; use 1 to 64 attempts at once"
        )
    return frozenset(table)


def _read_postback(
    table: dict[str, Any], campaign: str, line: int | None, lines: _Lines, stored: _Known
) -> PostbackConfig:
    reader = _Reader(table, f"campaign '{campaign}', postback", line, lines)
    name = reader.required("name")
    reader.where = f"campaign '{campaign}', postback '{name}'"
    held = stored.postback(campaign, name)
    # A stored postback keeps its kind, so its platform settings can be given alone.
    kind = reader.choice("kind", KINDS, held.kind if held else "s2s")
    platform_keys = SETTINGS[kind].accepted if kind in SETTINGS else ()
    reader.only((*RULE_KEYS, *platform_keys))
    statuses = reader.strings("statuses")
    for status in statuses:
        if status not in STATUSES:
            raise reader.fail("statuses", f"status '{status}' is not one of: {', '.join(STATUSES)}")
    min_payout = reader.get("min_payout", (int, float), None)
    method = str(reader.get("method", str, "GET")).upper()
    if method not in ("GET", "POST"):
        raise reader.fail("method", f"'method' is '{method}'; use GET or POST")
    platform = {key: value for key, value in table.items() if key in platform_keys}
    for key, value in platform.items():
        if key == "event_names":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise reader.fail(
                    key, "'event_names' must be a table of text: conversion type = event name"
                )
        elif isinstance(value, bool) or not isinstance(value, str | int):
            raise reader.fail(key, f"'{key}' must be text, not {value!r}")
        elif _unkept_secret(stored, key, value, held):
            raise reader.fail(key, _no_secret_to_keep(f"'{key}'", f"{key} of this postback"))
    config = PostbackConfig(
        name=name,
        kind=kind,
        url=str(reader.get("url", str, "")),
        method=method,
        body=str(reader.get("body", str, "")),
        enabled=bool(reader.get("enabled", bool, True)),
        conditional=bool(reader.get("conditional", bool, False)),
        types=reader.strings("types"),
        statuses=statuses,
        min_payout=None if min_payout is None else float(min_payout),
        refire_on_update=bool(reader.get("refire_on_update", bool, False)),
        platform=platform,
    )
    config.given = frozenset(table)
    return config


def _unkept_secret(stored: _Known, key: str, value: Any, held: PostbackConfig | None) -> bool:
    """Whether a platform value is the mask of a secret that the database does not hold."""
    if not (stored.checked and is_secret_key(key) and value == MASK):
        return False
    return not (held and held.platform.get(key))


def _check_references(workspace: Workspace, lines: _Lines, stored: _Known) -> None:
    traffic = {source.name for source in workspace.traffic_sources} | stored.traffic_sources
    offers = {source.name for source in workspace.offer_sources} | stored.offer_sources
    keys = [campaign.key for campaign in workspace.campaigns]
    undefined = (
        "which the file does not define and the database does not hold"
        if stored.checked
        else "which the file does not define"
    )
    for index, campaign in enumerate(workspace.campaigns):
        line = lines.table("campaigns", index)
        if keys.count(campaign.key) > 1:
            raise ConfigError(
                lines.key(line, "key"),
                f"campaign key '{campaign.key}' is used twice: keys must be unique",
            )
        if campaign.traffic_source not in traffic:
            raise ConfigError(
                lines.key(line, "traffic_source"),
                f"campaign '{campaign.key}' names traffic source "
                f"'{campaign.traffic_source}', {undefined}: add it under [[traffic_sources]]",
            )
        if campaign.offer_source not in offers:
            raise ConfigError(
                lines.key(line, "offer_source"),
                f"campaign '{campaign.key}' names offer source "
                f"'{campaign.offer_source}', {undefined}: add it under [[offer_sources]]",
            )
        names = [config.name for config in campaign.postbacks]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(
                    line,
                    f"campaign '{campaign.key}' has two postbacks named "
                    f"'{name}': names must be unique within a campaign",
                )
    policy = workspace.settings.unknown_clicks
    target = policy.removeprefix("attach:")
    if policy.startswith("attach:") and target not in {*keys, *stored.campaigns}:
        raise ConfigError(
            lines.key(lines.table("listener"), "unknown_clicks"),
            f"unknown_clicks attaches to campaign '{target}', {undefined}",
        )


# -- secrets ---------------------------------------------------------------------------------

# What ``config export`` writes in place of a secret. Eight asterisks are no real key or token,
# and importing them keeps the stored secret, so export -> edit -> import is safe.
MASK = "********"
LISTENER_SECRETS = ("key", "token")
_SECRET_NAME = re.compile(r"token|secret|password", re.IGNORECASE)


def is_secret_key(name: str) -> bool:
    """Whether a platform setting of this name holds a secret (``access_token``,
    ``developer_token``, or any other name with token, secret or password in it)."""
    return _SECRET_NAME.search(name) is not None


def masked(value: Any) -> Any:
    """A secret as the export writes it: ``MASK``, unless it is empty or an ``env:NAME``
    reference (which names a variable, not the secret)."""
    if value is None or value == "" or str(value).strip().startswith("env:"):
        return value
    return MASK


# -- writing ---------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
# TOML basic strings must escape the quote, the backslash and every control character but tab:
# U+0000 to U+001F and U+007F (DEL), which JSON's escaping leaves as it is.
_MUST_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


_EXACT_INTEGERS = 2**53  # below this, every whole float is exactly an int and back


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04X}"


def _string(text: str) -> str:
    """A TOML basic string that reads back as ``text``."""
    return '"' + _MUST_ESCAPE.sub(_escape, text) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_INTEGERS:
        # 10.0 is written 10, as people write seconds and payouts; every number the parser
        # reads into a float field it converts, so the value reads back the same.
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _table(header: str, values: dict[str, Any]) -> list[str]:
    return [header, *(f"{_key(k)} = {_value(v)}" for k, v in values.items() if v is not None), ""]


def _platform(settings: dict[str, Any], include_secrets: bool) -> dict[str, Any]:
    if include_secrets:
        return dict(settings)
    return {k: masked(v) if is_secret_key(k) else v for k, v in settings.items()}


def dump(workspace: Workspace, *, include_secrets: bool = False) -> str:
    """The workspace as a config file that ``parse`` reads back to the same workspace.

    Secrets (the listener's ``key`` and ``token``, platform tokens) are written as ``MASK``
    unless ``include_secrets``; importing the mask keeps the stored secret."""
    s = workspace.settings

    def secret(value: str) -> str:
        return value if include_secrets else str(masked(value))

    out = [
        f"conversion_types = {_value(workspace.conversion_types)}",
        f"currency = {_value(s.currency)}",
        "",
    ]
    if s.keys:
        out += _table("[keys]", dict(s.keys))
    out += _table(
        "[listener]",
        {
            "host": s.host,
            "port": s.port,
            "unknown_clicks": s.unknown_clicks,
            "max_body": s.max_body,
            "key": secret(s.key),
            "allow_ips": s.allow_ips,
            "trusted_proxies": s.trusted_proxies,
            "token": secret(s.token),
        },
    )
    out += _table(
        "[delivery]",
        {
            "timeout": s.timeout,
            "retry_schedule": s.retry_schedule,
            "per_target": s.per_target,
        },
    )
    out += _table("[storage]", {"keep_days": s.keep_days})
    for sink in workspace.sinks:
        out += _table("[[sinks]]", {f.name: getattr(sink, f.name) for f in fields(Sink)})
    for offer in workspace.offer_sources:
        out += _table(
            "[[offer_sources]]",
            {
                "name": offer.name,
                "default_status": offer.default_status,
                "duplicates": offer.duplicates,
                "status_aliases": offer.status_aliases,
            },
        )
    for traffic in workspace.traffic_sources:
        out += _table(
            "[[traffic_sources]]",
            {
                "name": traffic.name,
                "click_id_param": traffic.click_id_param,
                "postback_url": traffic.postback_url,
                "success_body": traffic.success_body,
                "failure_body": traffic.failure_body,
            },
        )
    for campaign in workspace.campaigns:
        out += _table(
            "[[campaigns]]",
            {
                "key": campaign.key,
                "name": campaign.name,
                "traffic_source": campaign.traffic_source,
                "offer_source": campaign.offer_source,
                "offer_url": campaign.offer_url,
            },
        )
        for config in campaign.postbacks:
            values: dict[str, Any] = {
                "name": config.name,
                "kind": config.kind,
                "url": config.url,
                "method": config.method,
                "body": config.body,
                "enabled": config.enabled,
                "conditional": config.conditional,
                "types": config.types,
                "statuses": config.statuses,
                "min_payout": config.min_payout,
                "refire_on_update": config.refire_on_update,
            }
            values.update(_platform(config.platform, include_secrets))
            out += _table("[[campaigns.postbacks]]", values)
    return "\n".join(out)
