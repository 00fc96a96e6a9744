"""Exports (docs/support.md): conversions, decisions, delivery attempts or inbound requests, with a
list's filters, as CSV or JSON Lines, read in pages by id and written as they come, so that
an export of any size holds one page in memory.

Rows come newest first, as in the lists. The columns of each kind are fixed: the fields of
its record (``COLUMNS``), in order. Times are ISO 8601 UTC; in CSV a nested value (headers,
reasons, warnings, how a request was read) is its JSON text and a missing value is empty; in
JSON Lines each row is one JSON object with nested values as JSON.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from store.read import queries
from store.read.filters import FILTER_PARAMETERS, FilterError, ListFilter, from_parameters
from store.read.model import AttemptRow, ConversionValues, DecisionRow, InboundView
from store.reads import iso

KINDS = ("conversions", "decisions", "deliveries", "inbound")
FORMATS = ("csv", "jsonl")

# Rows read at a time: what an export holds in memory.
PAGE = 500

COLUMNS: dict[str, tuple[str, ...]] = {
    kind: tuple(item.name for item in fields(record))
    for kind, record in (
        ("conversions", ConversionValues),
        ("decisions", DecisionRow),
        ("deliveries", AttemptRow),
        ("inbound", InboundView),
    )
}

# The list whose filter chooses an export's rows: decisions are those of the conversions
# chosen (and, with a verdict or a postback in the filter, only the decisions that have it).
LISTED_BY = {
    "conversions": "conversions",
    "decisions": "conversions",
    "deliveries": "deliveries",
    "inbound": "inbound",
}

CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


@dataclass(frozen=True)
class Export:
    """What to export: the kind, the format, the filter (its limit is the page size) and
    at most how many rows (None: all)."""

    kind: str
    format: str
    chosen: ListFilter
    total: int | None = None


def export_request(kind: str, given: Mapping[str, Any]) -> Export:
    """The export that a kind and the query parameters (or CLI options) ask for: ``format``
    (csv, the default, or jsonl), the filters of the kind's list, ``limit`` (rows at most)
    and ``before``. Raises ``FilterError`` on a value that cannot be used."""
    if kind not in KINDS:
        raise FilterError(f"kind {kind!r} is not one of: {', '.join(KINDS)}")
    shape = str(given.get("format") or "csv")
    if shape not in FORMATS:
        raise FilterError(f"format {shape!r} is not one of: {', '.join(FORMATS)}")
    total = None
    if given.get("limit"):
        total = from_parameters(LISTED_BY[kind], {"limit": given["limit"]}, max_limit=2**62).limit
    names = (*FILTER_PARAMETERS, "endpoint")
    values = {name: given[name] for name in names if name != "limit" and name in given}
    chosen = from_parameters(LISTED_BY[kind], values, default_limit=PAGE, max_limit=PAGE)
    return Export(kind=kind, format=shape, chosen=chosen, total=total)


@dataclass(frozen=True)
class Page:
    """One page of an export: its rows as JSON-ready data, and where the next page starts
    (None: this was the last)."""

    rows: list[dict[str, Any]]
    next_before: int | None


def _records(
    conn: sqlite3.Connection, kind: str, ids: Sequence[int], chosen: ListFilter
) -> Sequence[Any]:
    if kind == "conversions":
        return queries.conversion_values(conn, ids)
    if kind == "decisions":
        return queries.decision_rows(conn, ids, chosen)
    if kind == "deliveries":
        return queries.attempt_rows(conn, ids)
    return queries.inbound_by_id(conn, ids)


def read_page(conn: sqlite3.Connection, export: Export, before: int | None) -> Page:
    """The page of ``export`` below the id ``before`` (None: from the newest)."""
    chosen = export.chosen.page(limit=export.chosen.limit, before=before)
    ids = queries.page_ids(conn, LISTED_BY[export.kind], chosen)
    rows = [_row(record) for record in _records(conn, export.kind, ids, chosen)]
    return Page(rows=rows, next_before=min(ids) if len(ids) == chosen.limit else None)


_SHAPES: dict[type, tuple[tuple[str, bool], ...]] = {}


def _shape(cls: type) -> tuple[tuple[str, bool], ...]:
    """A record class's field names, each with whether it is a time (found once a class)."""
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = tuple((item.name, bool(item.metadata.get("time"))) for item in fields(cls))
        _SHAPES[cls] = shape
    return shape


def _row(record: object) -> dict[str, Any]:
    """A record of the read model as JSON-ready data, as ``store.reads.as_json`` writes it
    (times ISO 8601 UTC), for the flat records an export holds (their nested values are
    JSON already: mappings and tuples of plain values)."""
    row: dict[str, Any] = {}
    for name, is_time in _shape(type(record)):
        value = getattr(record, name)
        if is_time:
            value = iso(value)
        elif isinstance(value, tuple):
            value = list(value)
        row[name] = value
    return row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # as in the JSON Lines
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def header(export: Export) -> str:
    """What an export starts with: the CSV header line (nothing for JSON Lines)."""
    if export.format != "csv":
        return ""
    return _csv_text([list(COLUMNS[export.kind])])


def _csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def text(export: Export, rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of ``export`` as the text of its format."""
    columns = COLUMNS[export.kind]
    if export.format == "csv":
        return _csv_text([[_cell(row[name]) for name in columns] for row in rows])
    return "".join(
        json.dumps({name: row[name] for name in columns}, ensure_ascii=False) + "\n" for row in rows
    )


def chunks(conn: sqlite3.Connection, export: Export) -> Iterator[str]:
    """The whole export as text, a page at a time (for the CLI, on its own connection)."""
    yield header(export)
    before: int | None = export.chosen.before
    left = export.total
    while True:
        page = read_page(conn, export, before)
        rows = page.rows if left is None else page.rows[:left]
        yield text(export, rows)
        if left is not None:
            left -= len(rows)
        if page.next_before is None or left == 0:
            return
        before = page.next_before
