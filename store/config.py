"""The TOML config file (README, "Configuration"): reading it (all or nothing, with the line
of any error) and writing the workspace back in the same form.

What each record's table may hold, and how each key is checked, comes from the record's
declaration in ``store.records`` (its fields' ``Key``); the readers here add only what one
record checks across its keys or against the database."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

import tomli_w

from store.platforms import COMMON, SETTINGS
from store.records import (
    S2S,
    Campaign,
    Key,
    OfferSource,
    PostbackConfig,
    Settings,
    Sink,
    TrafficSource,
    Workspace,
    config_fields,
    default_of,
    key_named,
)

# Platform settings each API kind accepts (README, "Ad-platform postbacks"), besides the rule
# and `name`/`kind`; they are declared once, in store.platforms.
PLATFORM_KEYS: dict[str, tuple[str, ...]] = {kind: p.keys for kind, p in SETTINGS.items()}
PLATFORM_COMMON = COMMON

# The keys of a postback config's rule and request (its platform settings come on top).
RULE_KEYS = tuple(declared.name for declared, _ in config_fields(PostbackConfig))

# The top level of the file, in the order an unknown key's error lists them.
TOP_KEYS = (
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

# The top-level list of a config file: a list of text, like a record's ``types``.
_NAMES = Key(kind=list, items=str)

Record = TypeVar("Record", OfferSource, TrafficSource, Sink, Campaign, PostbackConfig)


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

    def value(self, key: str, spec: Key, default: Any) -> Any:
        """The value of ``key`` as its declaration says: given or ``default``, of its type,
        one of its choices, passing its check; then converted as the record keeps it."""
        if spec.required:
            value = self.get(key, str, default)
            if not value:
                raise self.fail(None, f"'{key}' is required")
            return str(value)
        value = self.get(key, spec.kind, default)
        if value is None:
            return None
        if spec.items is not None and not all(isinstance(item, spec.items) for item in value):
            raise self.fail(key, f"'{key}' must be a list of strings, not {value!r}")
        if spec.choices and value not in spec.choices:
            raise self.fail(key, f"'{key}' is '{value}'; use one of: {', '.join(spec.choices)}")
        problem = spec.check(key, value) if spec.check else None
        if problem:
            raise self.fail(key, problem)
        return spec.convert(value) if spec.convert else _copy(value)

    def values(
        self, record: type, table: str | None = None, defaults: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Every key ``record`` declares (in one Settings ``table``), read by ``value``;
        ``defaults`` overrides the declared default of some (a required key given a default
        may be left out)."""
        chosen = defaults or {}
        read: dict[str, Any] = {}
        for declared, spec in config_fields(record, table):
            if spec.toml == "value":
                default = chosen.get(declared.name, default_of(declared))
                read[declared.name] = self.value(declared.name, spec, default)
        return read

    def given(self, record: type) -> frozenset[str]:
        """The keys of ``record`` this table gives (its ``given``)."""
        return frozenset(name for name in _value_keys(record) if name in self.table)


def _copy(value: Any) -> Any:
    """A list or a table copied, so a record never shares one with the parsed file."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _value_keys(record: type, table: str | None = None) -> tuple[str, ...]:
    """The keys of ``record`` (in one Settings ``table``) that the file gives as values."""
    return tuple(
        declared.name for declared, spec in config_fields(record, table) if spec.toml == "value"
    )


def _file_keys(record: type) -> tuple[str, ...]:
    """Every key a table of ``record`` may hold, nested tables too, in declaration order."""
    return tuple(declared.name for declared, _ in config_fields(record))


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
    top.only(TOP_KEYS)
    workspace = Workspace(
        conversion_types=top.value("conversion_types", _NAMES, []),
        settings=_read_settings(data, top, lines, stored, binding_ids),
        sinks=[
            _read_sink(table, index, lines, stored)
            for index, table in enumerate(_entries(data, "sinks"))
        ],
        offer_sources=[
            _read_offer_source(table, index, lines)
            for index, table in enumerate(_entries(data, "offer_sources"))
        ],
        traffic_sources=[
            _read_traffic_source(table, index, lines)
            for index, table in enumerate(_entries(data, "traffic_sources"))
        ],
        campaigns=_read_campaigns(data, lines, stored),
    )
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


def _read_settings(
    data: dict[str, Any],
    top: _Reader,
    lines: _Lines,
    stored: _Known,
    binding_ids: Collection[str] | None,
) -> Settings:
    """The settings: ``currency`` and ``[keys]`` at the top level, then ``[listener]``,
    ``[delivery]`` and ``[storage]``; ``given`` holds every setting the file named."""
    settings = Settings(**top.values(Settings, table=""))
    settings.keys = _read_keys(top, lines, binding_ids)
    listener = _read_listener(data, lines, settings, stored)
    delivery = _read_delivery(data, lines, settings)
    storage = _read_storage(data, lines, settings)
    top_level = frozenset(name for name in _value_keys(Settings, "") if name in data)
    settings.given = top_level | listener | delivery | storage
    return settings


def _read_table(
    data: dict[str, Any], name: str, lines: _Lines, settings: Settings
) -> tuple[_Reader, frozenset[str]]:
    """Read the settings table ``[name]`` into ``settings``; return its reader and the keys
    it gave."""
    table = data.get(name, {})
    reader = _Reader(table, f"[{name}]", lines.table(name), lines)
    reader.only(_value_keys(Settings, name))
    for key, value in reader.values(Settings, name, _current(settings, name)).items():
        setattr(settings, key, value)
    return reader, frozenset(table)


def _current(settings: Settings, table: str) -> dict[str, Any]:
    """The values ``settings`` holds now for the keys of one table (the defaults to keep)."""
    return {name: getattr(settings, name) for name in _value_keys(Settings, table)}


def _read_listener(
    data: dict[str, Any], lines: _Lines, settings: Settings, stored: _Known
) -> frozenset[str]:
    """Read ``[listener]`` into ``settings``; return the keys it gave."""
    reader, given = _read_table(data, "listener", lines, settings)
    for name in LISTENER_SECRETS:
        if (
            stored.checked
            and getattr(settings, name) == MASK
            and not getattr(stored.settings, name)
        ):
            raise reader.fail(name, _no_secret_to_keep(f"'{name}'", f"[listener] {name}"))
    return given


def _no_secret_to_keep(what: str, where: str) -> str:
    return (
        f"{what} is the mask {MASK} of an exported secret, but the database holds no "
        f"{where} to keep: write the secret itself"
    )


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
    return _read_table(data, "delivery", lines, settings)[1]


def _read_record(
    record: type[Record],
    reader: _Reader,
    defaults: Mapping[str, Any] | None = None,
    nested: tuple[str, ...] = (),
) -> Record:
    """One record from its table: only its declared keys (and ``nested`` others), each read
    as declared; ``given`` is the keys the table named."""
    reader.only((*_file_keys(record), *nested))
    made = record(**reader.values(record, defaults=defaults))
    made.given = reader.given(record)
    return made


def _read_sink(table: dict[str, Any], index: int, lines: _Lines, stored: _Known) -> Sink:
    reader = _Reader(table, f"sink #{index + 1}", lines.table("sinks", index), lines)
    name = reader.required("name")
    held = stored.sinks.get(name)
    # A stored sink keeps its mimic, so its error can be given alone.
    sink = _read_record(Sink, reader, {"mimic": held.mimic} if held else None)
    if sink.error and not sink.mimic:
        raise reader.fail("error", "'error' needs 'mimic': it answers with that platform's error")
    return sink


def _read_offer_source(table: dict[str, Any], index: int, lines: _Lines) -> OfferSource:
    where = f"offer source #{index + 1}"
    reader = _Reader(table, where, lines.table("offer_sources", index), lines)
    return _read_record(OfferSource, reader)


def _read_traffic_source(table: dict[str, Any], index: int, lines: _Lines) -> TrafficSource:
    where = f"traffic source #{index + 1}"
    reader = _Reader(table, where, lines.table("traffic_sources", index), lines)
    return _read_record(TrafficSource, reader)


def _read_campaigns(data: dict[str, Any], lines: _Lines, stored: _Known) -> list[Campaign]:
    """Every ``[[campaigns]]`` table with its ``[[campaigns.postbacks]]``."""
    campaigns = []
    postback_index = 0  # the postback tables of all campaigns are counted in file order
    for index, table in enumerate(_entries(data, "campaigns")):
        campaign = _read_campaign(table, index, lines, stored)
        for postback in _entries(table, "postbacks"):
            line = lines.table("campaigns.postbacks", postback_index)
            postback_index += 1
            campaign.postbacks.append(_read_postback(postback, campaign.key, line, lines, stored))
        campaigns.append(campaign)
    return campaigns


def _read_campaign(table: dict[str, Any], index: int, lines: _Lines, stored: _Known) -> Campaign:
    reader = _Reader(table, f"campaign #{index + 1}", lines.table("campaigns", index), lines)
    reader.only(_file_keys(Campaign))
    key = reader.required("key")
    reader.where = f"campaign '{key}'"
    held = stored.campaigns.get(key)
    # A campaign the database holds keeps its name and sources unless the file names others.
    defaults: dict[str, Any] = {"name": key}
    if held is not None:
        defaults = {
            "name": held.name,
            "traffic_source": held.traffic_source,
            "offer_source": held.offer_source,
        }
    return _read_record(Campaign, reader, defaults)


def _read_postback(
    table: dict[str, Any], campaign: str, line: int | None, lines: _Lines, stored: _Known
) -> PostbackConfig:
    reader = _Reader(table, f"campaign '{campaign}', postback", line, lines)
    name = reader.required("name")
    reader.where = f"campaign '{campaign}', postback '{name}'"
    held = stored.postback(campaign, name)
    # A stored postback keeps its kind, so its platform settings can be given alone.
    kind = reader.value("kind", key_named(PostbackConfig, "kind"), held.kind if held else S2S)
    platform_keys = SETTINGS[kind].accepted if kind in SETTINGS else ()
    config = _read_record(PostbackConfig, reader, {"kind": kind}, nested=platform_keys)
    config.platform = _read_platform(reader, platform_keys, stored, held)
    return config


def _read_platform(
    reader: _Reader,
    platform_keys: tuple[str, ...],
    stored: _Known,
    held: PostbackConfig | None,
) -> dict[str, Any]:
    """A postback config's ad-platform settings: the table's keys its kind accepts."""
    platform = {key: value for key, value in reader.table.items() if key in platform_keys}
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
    return platform


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
LISTENER_SECRETS = tuple(declared.name for declared, spec in config_fields(Settings) if spec.secret)
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
# tomli-w writes every key and value (escaping what TOML must escape, U+007F too); the layout
# is ours: one [[table]] per record, in the README's order ("Configuration"), a table value
# (status aliases, event names) as a sub-table right under its record, so the file reads like
# a written one.


_EXACT_INTEGERS = 2**53  # below this, every whole float is exactly an int and back


def _plain(value: Any) -> Any:
    """A whole float as an int (10.0 is written 10, as people write seconds and payouts):
    every number the parser reads into a float field it converts, so it reads back the same."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_INTEGERS:
        return int(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _section(header: str, path: str, values: Mapping[str, Any]) -> str:
    """One table of the file: its header, its keys (None: left out), then its table values as
    sub-tables named ``path.key``."""
    literals = {
        k: _plain(v) for k, v in values.items() if v is not None and not isinstance(v, dict)
    }
    text = f"{header}\n{tomli_w.dumps(literals)}"
    for key, value in values.items():
        if isinstance(value, dict):
            text += f"\n[{path}.{key}]\n{tomli_w.dumps(value)}"
    return text


def _record_values(record: Any) -> dict[str, Any]:
    """The keys a record's table holds, as its declaration lists them."""
    return {name: getattr(record, name) for name in _value_keys(type(record))}


def _settings_values(settings: Settings, table: str, include_secrets: bool) -> dict[str, Any]:
    """The keys of one settings table; a secret is masked unless ``include_secrets``."""
    values: dict[str, Any] = {}
    for declared, spec in config_fields(Settings, table):
        value = getattr(settings, declared.name)
        values[declared.name] = value if include_secrets or not spec.secret else masked(value)
    return values


def masked_platform(settings: dict[str, Any], include_secrets: bool = False) -> dict[str, Any]:
    """A postback config's platform settings as the export writes (and the dashboard shows)
    them: each secret masked unless ``include_secrets``."""
    if include_secrets:
        return dict(settings)
    return {k: masked(v) if is_secret_key(k) else v for k, v in settings.items()}


def dump(workspace: Workspace, *, include_secrets: bool = False) -> str:
    """The workspace as a config file that ``parse`` reads back to the same workspace.

    Secrets (the listener's ``key`` and ``token``, platform tokens) are written as ``MASK``
    unless ``include_secrets``; importing the mask keeps the stored secret."""
    settings = workspace.settings
    top = {"conversion_types": workspace.conversion_types, "currency": settings.currency}
    out = [tomli_w.dumps(top)]
    if settings.keys:
        out.append(_section("[keys]", "keys", settings.keys))
    for table in ("listener", "delivery", "storage"):
        out.append(
            _section(f"[{table}]", table, _settings_values(settings, table, include_secrets))
        )
    out += [_section("[[sinks]]", "sinks", _record_values(sink)) for sink in workspace.sinks]
    out += [
        _section("[[offer_sources]]", "offer_sources", _record_values(source))
        for source in workspace.offer_sources
    ]
    out += [
        _section("[[traffic_sources]]", "traffic_sources", _record_values(source))
        for source in workspace.traffic_sources
    ]
    for campaign in workspace.campaigns:
        out.append(_section("[[campaigns]]", "campaigns", _record_values(campaign)))
        for config in campaign.postbacks:
            values = {**_record_values(config), **masked_platform(config.platform, include_secrets)}
            out.append(_section("[[campaigns.postbacks]]", "campaigns.postbacks", values))
    return "\n".join(out)
