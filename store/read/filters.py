"""The one filter object every list query takes.

A list is read in two steps: the ids of a page (newest first) chosen by a ``ListFilter``,
then the rows of those ids in batches. Each filter field adds one clause over an indexed
column of the listed table, so a new filter (campaign, type, status, verdict, postback
config, traffic source, free text, since/until) is one field here and one clause in
``clauses``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

LISTED = ("conversions", "inbound", "deliveries")


@dataclass(frozen=True)
class ListFilter:
    """Which rows of a list: those matching every field set (AND), newest first.

    ``outcome`` is an inbound request's (accepted, rejected) or a delivery attempt's
    (pending, retrying, delivered, failed); ``endpoint`` an inbound request's (click,
    postback). ``before`` and ``after`` bound the id; the page holds at most ``limit``."""

    outcome: str | None = None
    endpoint: str | None = None
    limit: int = 100
    before: int | None = None
    after: int | None = None

    def page(
        self, *, limit: int | None = None, before: int | None = None, after: int | None = None
    ) -> ListFilter:
        """The same filter over another page."""
        return replace(
            self, limit=self.limit if limit is None else limit, before=before, after=after
        )

    def clauses(self, table: str) -> tuple[list[str], list[Any]]:
        """The WHERE clauses (over ``table``'s own columns, without the page's bounds) and
        their values."""
        if table not in LISTED:
            raise ValueError(f"no list is read from the table {table!r}")
        where: list[str] = []
        values: list[Any] = []
        if self.outcome is not None:
            where.append("outcome = ?")
            values.append(self.outcome)
        if self.endpoint is not None:
            if table != "inbound":
                raise ValueError(f"the endpoint filter applies to inbound, not {table}")
            where.append("endpoint = ?")
            values.append(self.endpoint)
        return where, values


ALL = ListFilter()

# The dashboard's choices on the Inbound screen, in the order its key cycles through them.
INBOUND_SHOWS: dict[str, ListFilter] = {
    "all": ALL,
    "rejected": ListFilter(outcome="rejected"),
    "accepted": ListFilter(outcome="accepted"),
    "postbacks": ListFilter(endpoint="postback"),
    "clicks": ListFilter(endpoint="click"),
}

# The dashboard's choices on the Deliveries screen.
DELIVERY_SHOWS: dict[str, ListFilter] = {
    "all": ALL,
    **{
        outcome: ListFilter(outcome=outcome)
        for outcome in ("pending", "retrying", "delivered", "failed")
    },
}


def id_page(table: str, chosen: ListFilter) -> tuple[str, Sequence[Any]]:
    """The query for the ids of one page of ``table``, newest first."""
    where, values = chosen.clauses(table)
    if chosen.before is not None:
        where.append("id < ?")
        values.append(chosen.before)
    if chosen.after is not None:
        where.append("id > ?")
        values.append(chosen.after)
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT id FROM {table}{condition} ORDER BY id DESC LIMIT ?", (*values, chosen.limit)


def newer_count(table: str, after_id: int, chosen: ListFilter) -> tuple[str, Sequence[Any]]:
    """The query for how many rows of ``table`` above ``after_id`` the filter matches."""
    where, values = chosen.clauses(table)
    condition = "".join(f" AND {clause}" for clause in where)
    return f"SELECT count(*) FROM {table} WHERE id > ?{condition}", (after_id, *values)
