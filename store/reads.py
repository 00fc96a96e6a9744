"""The JSON edge of the read model: records of ``store.read.model`` as the JSON of the API
(README, "JSON API").

The read model keeps times as Unix seconds; here, and only here, they become ISO 8601 UTC.
A record's JSON is its fields in order, by name: a field marked ``TIME`` is written with
``iso``, and a ``history`` that was not read (None) is left out, as the lists of the API
have none.
"""

from __future__ import annotations

import sqlite3
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from store.read import queries
from store.read.filters import ListFilter
from store.read.model import Trace

T = TypeVar("T")

Row = dict[str, Any]
# A list of the API: rows of one page chosen by a filter.
ListRead = Callable[[sqlite3.Connection, ListFilter], list[Row]]

# Fields left out of the JSON when they hold None (not read, rather than empty).
_OMITTED_WHEN_NONE = frozenset({"history"})


def iso(at: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC with milliseconds."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_json(value: Any) -> Any:
    """A record (or a list, tuple or mapping of them) as JSON-ready data."""
    if is_dataclass(value) and not isinstance(value, type):
        out: Row = {}
        for item in fields(value):
            held = getattr(value, item.name)
            if held is None and item.name in _OMITTED_WHEN_NONE:
                continue
            out[item.name] = iso(held) if item.metadata.get("time") else as_json(held)
        return out
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if isinstance(value, Mapping):
        return {key: as_json(item) for key, item in value.items()}
    return value


def unix(text: str | None) -> float | None:
    """An ISO 8601 time of ``iso`` back as Unix seconds."""
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_json(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):  # X | None: the X
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _from_json(hint, value)
    if origin is tuple:
        return tuple(_from_json(typing.get_args(hint)[0], item) for item in value)
    if isinstance(hint, type) and is_dataclass(hint):
        return from_json(hint, value)
    return value


def from_json(cls: type[T], data: Mapping[str, Any]) -> T:
    """A record read back from its JSON (``as_json``'s inverse)."""
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for item in fields(cls):  # type: ignore[arg-type]
        if item.name not in data:
            continue  # left out (a history that was not read): the field's default
        held = data[item.name]
        values[item.name] = (
            unix(held) if item.metadata.get("time") else _from_json(hints[item.name], held)
        )
    return cls(**values)


def trace_from_json(data: Mapping[str, Any]) -> Trace:
    """A trace read back from the JSON of ``GET /api/trace/{id}``."""
    return from_json(Trace, data)


def trace(conn: sqlite3.Connection, any_id: str) -> Row:
    """``GET /api/trace/{id}``: the trace of a click id, an external id or a transaction id."""
    return dict(as_json(queries.trace(conn, any_id)))


def inbound_request(conn: sqlite3.Connection, inbound_id: int) -> Row | None:
    """``GET /api/inbound/{id}``: one inbound request as the list shows it, with ``replays``,
    the ids of the requests that replayed it (oldest first); None when no request has the
    id."""
    found = queries.inbound_by_id(conn, [inbound_id])
    if not found:
        return None
    replays = [replay.id for replay in queries.replays_of(conn, [inbound_id])]
    return {**as_json(found[0]), "replays": replays}


def conversions(
    conn: sqlite3.Connection,
    limit: int = 100,
    before: int | None = None,
    chosen: ListFilter | None = None,
) -> list[Row]:
    """``GET /api/conversions``: conversions newest first, each with the decisions of its
    latest event; ``chosen`` (with its own page) replaces ``limit`` and ``before``."""
    chosen = chosen or ListFilter(limit=limit, before=before)
    return list(as_json(queries.conversions(conn, chosen)))


def inbound(
    conn: sqlite3.Connection,
    limit: int = 100,
    before: int | None = None,
    chosen: ListFilter | None = None,
) -> list[Row]:
    """``GET /api/inbound``: inbound requests newest first."""
    chosen = chosen or ListFilter(limit=limit, before=before)
    return list(as_json(queries.inbound(conn, chosen)))


def deliveries(conn: sqlite3.Connection, chosen: ListFilter) -> list[Row]:
    """``GET /api/deliveries``: every attempt newest first, each in the shape of a trace's
    attempt with its postback config, decision and conversion."""
    return list(as_json(queries.attempt_row_page(conn, chosen)))


def sink_records(conn: sqlite3.Connection, name: str, limit: int = 100) -> list[Row]:
    """``GET /api/sink/{name}``: what a sink received, newest first."""
    return list(as_json(queries.sink_records(conn, name, limit)))
