"""A database row read into a record: each field from the column of its name.

One way for every record read from SQLite (the read model's views and rows, the outbox's
attempts, the rule engine's conversions): a field added to a record is read with no change to
its query's code, as long as the query selects a column of that name. A field's metadata may
say how its stored value becomes the record's (``read``: a JSON text becomes a dict, a 0/1
flag a bool) and which column holds it when the names differ (``column``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import fields
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def _json_list(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text))


def _json_or_none(text: str) -> Any:
    return json.loads(text) if text else None


# Field metadata: how a stored value is read (a NULL stays None and is never converted).
FLAG: Mapping[str, Any] = {"read": bool}  # stored as 0/1
JSON: Mapping[str, Any] = {"read": json.loads}  # a JSON text: an object, a list
JSON_LIST: Mapping[str, Any] = {"read": _json_list}  # a JSON list, read as a tuple
JSON_OR_NONE: Mapping[str, Any] = {"read": _json_or_none}  # a JSON text, or '' for none


def column(name: str, **more: Any) -> Mapping[str, Any]:
    """Metadata of a field read from the column ``name`` (say, ``event_id`` from ``id``)."""
    return {"column": name, **more}


Reader = tuple[str, int, Callable[[Any], Any] | None]


@cache
def _plan(record: type, columns: tuple[str, ...]) -> tuple[Reader, ...]:
    """For each field of ``record`` that a row of these columns holds: its name, the
    column's position (the first of that name, as ``row[name]`` reads) and its reader."""
    position: dict[str, int] = {}
    for index, name in enumerate(columns):
        position.setdefault(name, index)
    plan = []
    for item in fields(record):
        source = item.metadata.get("column", item.name)
        if source in position:
            plan.append((item.name, position[source], item.metadata.get("read")))
    return tuple(plan)


def field_values(row: sqlite3.Row, record: type) -> dict[str, Any]:
    """The values of ``record``'s fields that ``row`` has a column of, by name. The fields
    the row has no column of are the caller's to give (or their defaults)."""
    found: dict[str, Any] = {}
    for name, index, read in _plan(record, tuple(row.keys())):
        value = row[index]
        found[name] = value if read is None or value is None else read(value)
    return found


def record_of(row: sqlite3.Row, record: type[T], **more: Any) -> T:
    """``record`` filled from ``row`` (``field_values``), and from ``more`` for the fields
    the row has no column of."""
    return record(**field_values(row, record), **more)
