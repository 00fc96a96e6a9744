"""The one filter object every list query takes.

A list is read in two steps: the ids of a page (newest first) chosen by a ``ListFilter``,
then the rows of those ids in batches. Each filter field adds one clause in ``clauses``, over
an indexed column of the listed table or of the rows it belongs to (schema step 9), so a
new filter is one field here and one clause there.

How each list is walked, so that a page costs about its ``limit`` rows:
- a filter on the listed table's own column walks an index ``(column, id)`` newest first, or
  for a status or an endpoint the partial index of that value's ids (schema step 12); an
  inbound request's outcome reads the partial index of rejected requests, and for accepted,
  which nearly all are, checks each request of a newest-first walk;
- on conversions, a filter on its decisions (``verdict``, ``postback``) walks a decisions
  index newest first, the verdict's partial index ``(conversion_id)`` or
  ``(postback, conversion_id)``, and checks the other terms on each (``_decision_page``);
- on conversions, ``outcome`` (one of its attempts') reads every attempt with that outcome
  through ``deliveries(outcome, id)`` for failed, retrying and pending, which are few, and
  for delivered, which most are, checks each conversion of a newest-first walk;
- a filter on the rows a delivery attempt or an inbound request belongs to (campaign, type,
  status, verdict, postback config, traffic source) is checked on each row of a newest-first
  walk, by primary-key look-ups: such a statement carries ``WALK``, and costs in proportion
  to the rows walked before ``limit`` match (all of them when almost none match; none when
  it looks for a type, status or postback name that no row holds: ``texts_sought``);
- ``since``/``until`` become id bounds: by bisection over the id on conversions and inbound,
  whose time grows with the id (``store.timeline``), through the time index on deliveries;
- ``q`` is an exact match on the id columns through their indexes, plus a substring match
  over the ``Q_SCAN`` newest rows of the table (for conversions, and the newest clicks'
  external ids and parameters) only: a plain index cannot find a substring, and an FTS5
  trigram index would cost every inbound write about 30 times what the row itself costs;
- conversion events (Live's recent changes) are read from their stored table: the event's
  own type and status by the id of their interned text, its conversion's campaign by
  primary key and its decisions through the decisions index, each on every event of a
  newest-first walk; ``q`` reads the events of the conversions it names through the events'
  conversion index; ``since``/``until`` are id bounds by bisection, as on conversions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from store.read import links
from store.records import STATUSES, Outcome, Verdict
from store.schema import BY_TXID, STORED, by_click_id, by_external_id, text_column
from store.timeline import TIME_ORDERED, first_id

LISTED = ("conversions", "inbound", "deliveries", "conversion_events")

# What a list's rows are called in a sentence, where its table's name is not the word.
NOUNS = {"conversion_events": "changes"}

# How many of a table's newest rows a free-text ``q`` searches for a substring; exact ids
# (click id, external id, txid, conversion id, row id) are found at any age.
Q_SCAN = 20_000

# Marks a statement that walks its table newest first, checking each row (see the module
# docstring); tests/test_query_plans.py allows a scan of the listed table only in these.
WALK = "/* newest-first walk */"

# Each listed table's time column: what since/until compare.
TIME_COLUMN = {
    "conversions": "created_at",
    "inbound": "received_at",
    "deliveries": "due_at",
    "conversion_events": "at",
}

ENDPOINTS = ("click", "postback")
INBOUND_OUTCOMES = ("accepted", "rejected")
OUTCOMES = tuple(Outcome)
VERDICTS = tuple(Verdict)


class FilterError(ValueError):
    """A filter value that cannot be used; the message names the parameter, the value and
    what is accepted."""


@dataclass(frozen=True)
class ListFilter:
    """Which rows of a list: those matching every field set (AND), newest first.

    ``outcome`` is an inbound request's (accepted, rejected) or a delivery attempt's
    (pending, retrying, delivered, failed; on conversions: one of its attempts');
    ``endpoint`` an inbound request's (click, postback). ``campaign`` is a campaign's key or
    name, ``traffic_source`` and ``postback`` names; ``verdict`` a decision's (of the
    conversion, with ``postback``: of that postback config; of a conversion event: one of
    that event's). A conversion event's ``type`` and ``status`` are those it set. ``q`` is a
    free-text match on any id or parameter (of a conversion event: of its conversion).
    ``since``/``until`` are Unix times (inclusive). ``before`` and ``after`` bound the id;
    the page holds at most ``limit`` (with ``oldest``: the oldest ``limit`` rows, rather than
    the newest). ``campaign_ids`` is what ``campaign`` and ``traffic_source`` name, filled in
    by ``queries.resolve``."""

    outcome: str | None = None
    endpoint: str | None = None
    limit: int = 100
    before: int | None = None
    after: int | None = None
    campaign: str | None = None
    type: str | None = None
    status: str | None = None
    verdict: str | None = None
    postback: str | None = None
    traffic_source: str | None = None
    q: str | None = None
    since: float | None = None
    until: float | None = None
    campaign_ids: tuple[int, ...] | None = None
    oldest: bool = False

    def page(
        self, *, limit: int | None = None, before: int | None = None, after: int | None = None
    ) -> ListFilter:
        """The same filter over another page."""
        return replace(
            self, limit=self.limit if limit is None else limit, before=before, after=after
        )

    def both(self, other: ListFilter) -> ListFilter | None:
        """The rows both filters pick (this one's page); None when they ask for different
        values of one field, which no row can have."""
        values: dict[str, Any] = {}
        for name in (*TERMS, "campaign_ids"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None and mine != theirs:
                return None
            if mine is None and theirs is not None:
                values[name] = theirs
        return replace(self, **values) if values else self

    @property
    def filters_rows(self) -> bool:
        """Whether the filter leaves rows out (any term set, rather than only a page)."""
        return any(getattr(self, name) is not None for name in (*TERMS, "campaign_ids"))

    @property
    def names_campaigns(self) -> bool:
        """Whether the filter names a campaign or a traffic source (to be resolved)."""
        return self.campaign is not None or self.traffic_source is not None

    @property
    def on_decisions(self) -> bool:
        """Whether a conversions page walks the decisions index (verdict or postback set)."""
        return self.verdict is not None or self.postback is not None

    def walks(self, table: str) -> bool:
        """Whether a page of ``table`` is a newest-first walk that checks each row."""
        if table == "conversions":
            several = self.campaign_ids is not None and len(self.campaign_ids) > 1
            return (self.outcome == "delivered" or several) and not self.on_decisions
        if table == "conversion_events":  # (its own type and status have no index)
            return self.campaign_ids is not None or self.related(table)
        # nearly every request is accepted: only rejected ones have an index (schema step 12)
        accepted = table == "inbound" and self.outcome == "accepted"
        return accepted or self.related(table)

    def texts_sought(self, table: str) -> tuple[str, ...]:
        """The values a newest-first walk of ``table`` looks for as interned texts (an
        event's type and status, a decision's postback name: schema step 8). A text that no
        row holds is not in ``texts``, so ``queries`` answers such a page without walking
        (on conversions, their own indexes find a missing value at once)."""
        if table == "conversions" or not self.walks(table):
            return ()
        # a delivery's type and status are its conversion's own columns, not interned
        names = ("postback",) if table == "deliveries" else ("type", "status", "postback")
        return tuple(value for value in (getattr(self, name) for name in names) if value)

    def related(self, table: str) -> bool:
        """Whether the filter checks the rows that ``table``'s rows belong to (conversions,
        decisions, clicks: a walk of ``table``)."""
        if table == "conversions":
            return False
        terms = (self.type, self.status, self.verdict, self.postback)
        return self.names_campaigns or any(term is not None for term in terms)

    def clauses(self, table: str) -> tuple[list[str], list[Any]]:
        """The WHERE clauses (over ``table``'s own columns, qualified by its name where a
        join could make them ambiguous, without the page's bounds) and their values."""
        if table not in LISTED:
            raise ValueError(f"no list is read from the table {table!r}")
        where: list[str] = []
        values: list[Any] = []

        def add(clause: str, *given: Any) -> None:
            where.append(clause)
            values.extend(given)

        if self.outcome is not None:
            if table == "conversion_events":
                raise ValueError("the outcome filter applies to conversions, not their events")
            if table == "conversions" and self.outcome == "delivered":
                # most attempts are delivered: check each conversion of a walk instead
                add(
                    "EXISTS (SELECT 1 FROM decisions k JOIN deliveries a ON a.decision_id = k.id"
                    " WHERE k.conversion_id = conversions.id AND a.outcome = ?)",
                    self.outcome,
                )
            elif table == "conversions":
                add(
                    "conversions.id IN (SELECT k.conversion_id FROM deliveries a"
                    " JOIN decisions k ON k.id = a.decision_id WHERE a.outcome = ?)",
                    self.outcome,
                )
            elif table == "inbound" and self.outcome not in INBOUND_OUTCOMES:
                # no request has it: the few rows of the rejected ones' index say so (only
                # rejected requests have an index, schema step 12; accepted ones, nearly all,
                # are walked, see ``walks``)
                add("outcome = 'rejected' AND outcome = ?", self.outcome)
            else:
                add("outcome = ?", self.outcome)
        if self.endpoint is not None:
            if table != "inbound":
                raise ValueError(f"the endpoint filter applies to inbound, not {table}")
            add("endpoint = ?", self.endpoint)
        if table == "conversions":
            self._conversion_clauses("conversions", add)
        elif table == "conversion_events":
            self._event_clauses(add)
        elif self.related(table):
            inner: list[str] = []
            inner_values: list[Any] = []

            def add_inner(clause: str, *given: Any) -> None:
                inner.append(clause)
                inner_values.extend(given)

            self._conversion_clauses("c", add_inner, "e" if table == "inbound" else None)
            self._decision_clauses("k", add_inner)
            condition = " AND ".join(inner) or "1"
            if table == "deliveries":
                add(
                    "EXISTS (SELECT 1 FROM decisions k JOIN conversions c ON c.id = k.conversion_id"
                    f" WHERE k.id = deliveries.decision_id AND {condition})",
                    *inner_values,
                )
            else:
                add(self._inbound_related(condition), *inner_values)
        self._time_clauses(table, add)
        if self.q is not None:
            sql, given = q_clause(table, self.q)
            add(sql, *given)
        return where, values

    def _inbound_related(self, condition: str) -> str:
        """A request's campaign is its click's (a click, or a postback for a known click);
        its type and status those of the conversion event it made, its decisions that
        event's (``condition`` is over ``c``: the click or the conversion, ``e``: the event
        and ``k``: a decision)."""
        if self.type is None and self.status is None and not self.on_decisions:
            clicked = links.click_of("inbound", "c")
            return f"EXISTS (SELECT 1 FROM clicks c WHERE {clicked} AND {condition})"
        decisions = (
            " JOIN decisions k ON k.conversion_id = e.conversion_id AND k.event_id = e.id"
            if self.on_decisions
            else ""
        )
        conversion = (
            " JOIN conversions c ON c.id = e.conversion_id" if self.campaign_ids is not None else ""
        )
        return (
            f"EXISTS (SELECT 1 FROM conversion_events e{decisions}{conversion}"
            " WHERE e.conversion_id = inbound.conversion_id AND e.inbound_id = inbound.id"
            f" AND {condition})"
        )

    def _event_clauses(self, add: Any) -> None:
        """Clauses over a conversion event's stored row: its own type and status (by the id
        of their interned text), its conversion's campaign (by primary key) and its own
        decisions (through the decisions' conversion index)."""
        events = read_from("conversion_events")
        for name in ("type", "status"):
            value = getattr(self, name)
            if value is not None:
                add(f"{events}.{text_column(name)} = (SELECT id FROM texts WHERE value = ?)", value)
        if self.campaign_ids is not None:
            of_campaign = replace(self, type=None, status=None)._conversion_clauses
            campaign, given = _joined(of_campaign, "c")
            add(
                f"EXISTS (SELECT 1 FROM conversions c WHERE c.id = {events}.conversion_id"
                f" AND {campaign})",
                *given,
            )
        if self.on_decisions:
            decision, given = _joined(partial(self._decision_clauses, stored=True), "k")
            add(
                f"EXISTS (SELECT 1 FROM {STORED['decisions']} k"
                f" WHERE k.conversion_id = {events}.conversion_id AND k.event_id = {events}.id"
                f" AND {decision})",
                *given,
            )

    def _conversion_clauses(self, alias: str, add: Any, values_alias: str | None = None) -> None:
        """Clauses over a conversion's own columns (or a click's: both have campaign_id),
        with type and status read from ``values_alias`` (an event's) when given."""
        if self.campaign_ids is not None:
            if not self.campaign_ids:  # a traffic source with no campaign, say
                add("0")
            elif len(self.campaign_ids) == 1:
                add(f"{alias}.campaign_id = ?", self.campaign_ids[0])
            else:
                # several campaigns (a traffic source's): the index would read every match of
                # each and sort them; a newest-first walk checks each row instead (the +)
                marks = ", ".join("?" for _ in self.campaign_ids)
                add(f"+{alias}.campaign_id IN ({marks})", *self.campaign_ids)
        if self.type is not None:
            add(f"{values_alias or alias}.type = ?", self.type)
        if self.status is not None:
            add(f"{values_alias or alias}.status = ?", self.status)

    def _decision_clauses(self, alias: str, add: Any, *, stored: bool = False) -> None:
        """``alias`` is a decision: of the ``decisions`` view, or with ``stored`` of its
        stored table, whose interned postback name is matched by its text id (an index)."""
        if self.verdict is not None:
            add(f"{alias}.verdict = ?", self.verdict)
        if self.postback is not None:
            if stored:
                column = text_column("postback")
                add(f"{alias}.{column} = (SELECT id FROM texts WHERE value = ?)", self.postback)
            else:
                add(f"{alias}.postback = ?", self.postback)

    def _time_clauses(self, table: str, add: Any) -> None:
        """since/until: the exact condition (the unary + keeps SQLite from reading a time
        index for the page), and id bounds that let the page start and stop at the right
        rows: found by bisection over the id where the time grows with it (conversions, their
        events, inbound: store/timeline.py), else through the table's time index. A row written
        while the clock stepped back may fall outside the bounds."""
        column = TIME_COLUMN[table]
        ordered = table in TIME_ORDERED
        table = read_from(table)
        if self.since is not None:
            if ordered:
                add(f"{table}.id >= {first_id(table, column, '>=')}", self.since, self.since)
            else:
                add(
                    f"{table}.id >= coalesce((SELECT id FROM {table} WHERE {column} >= ?"
                    f" ORDER BY {column} LIMIT 1), 1e18)",
                    self.since,
                )
            add(f"+{table}.{column} >= ?", self.since)
        if self.until is not None:
            if ordered:
                add(f"{table}.id < {first_id(table, column, '>')}", self.until, self.until)
            else:
                add(
                    f"{table}.id <= coalesce((SELECT id FROM {table} WHERE {column} <= ?"
                    f" ORDER BY {column} DESC LIMIT 1), 0)",
                    self.until,
                )
            add(f"+{table}.{column} <= ?", self.until)


def _joined(clauses: Callable[[str, Any], None], alias: str) -> tuple[str, list[Any]]:
    """The clauses that ``clauses`` adds over ``alias``, joined with AND, and their values."""
    where: list[str] = []
    values: list[Any] = []

    def add(clause: str, *given: Any) -> None:
        where.append(clause)
        values.extend(given)

    clauses(alias, add)
    return " AND ".join(where), values


def read_from(table: str) -> str:
    """The table a list's page reads: for conversion events their stored table, whose type
    and status are matched by the id of their text (the view would look up each row's)."""
    return STORED["conversion_events"] if table == "conversion_events" else table


def q_clause(table: str, q: str) -> tuple[str, list[Any]]:
    """The free-text match of ``q`` on ``table``: its rows that an id equal to ``q`` names
    (found through the id indexes: a row id, a conversion id, a click id, an external id, a
    txid) or, among its ``Q_SCAN`` newest rows, whose ids or captured parameters contain it."""
    number = int(q) if q.isdigit() and len(q) < 19 else None
    # The conversions an id names: by id, by txid, by click id, by its click's external id.
    conversions = (
        "SELECT id FROM conversions WHERE id = ?"
        f" UNION SELECT id FROM conversions WHERE {BY_TXID}"
        " UNION SELECT n.id FROM clicks l JOIN conversions n ON n.click_seq = l.seq"
        f" WHERE {by_click_id('l')}"
        " UNION SELECT n.id FROM clicks l JOIN conversions n ON n.click_seq = l.seq"
        f" WHERE {by_external_id('l')}"
    )
    named: list[Any] = [number, q, q, q, q]
    listed = "conversions" if table == "conversion_events" else table
    recent = f"SELECT id FROM {listed} WHERE id > (SELECT coalesce(max(id), 0) FROM {listed}) - ?"
    if table in ("conversions", "conversion_events"):
        # the newest clicks' external ids and parameters, read by rowid (clicks are
        # written in time order), rather than a look-up of each recent conversion's click;
        # a conversion event's are its conversion's (read through the events' index)
        column = "conversions.id" if table == "conversions" else f"{read_from(table)}.conversion_id"
        sql = (
            f"{column} IN ({conversions}"
            f" UNION {recent} AND (instr(click_id, ?) OR instr(coalesce(txid, ''), ?))"
            " UNION SELECT n.id FROM clicks l JOIN conversions n ON n.click_seq = l.seq"
            " WHERE l.rowid > (SELECT coalesce(max(rowid), 0) FROM clicks) - ?"
            " AND (instr(l.external_id, ?) OR instr(l.params, ?)))"
        )
        return sql, [*named, Q_SCAN, q, q, Q_SCAN, q, q]
    if table == "inbound":
        # the requests of the click q names (as its id or its external id), of the
        # conversions whose txid it is, and the requests that named it as a click id
        sql = (
            "inbound.id IN (WITH named_clicks(id) AS (SELECT ? UNION SELECT id FROM clicks"
            f" WHERE {by_external_id()}),"
            f" named_conversions(id) AS (SELECT id FROM conversions WHERE {BY_TXID})"
            " SELECT id FROM inbound WHERE id = ?"
            f" UNION {links.of_clicks('named_clicks')}"
            f" UNION {links.of_conversions('named_conversions')}"
            f" UNION {recent} AND (instr(query, ?) OR instr(body, ?) OR instr(path, ?)))"
        )
        return sql, [q, q, q, number, Q_SCAN, q, q, q]
    sql = (
        "deliveries.id IN (SELECT id FROM deliveries WHERE id = ?"
        " UNION SELECT a.id FROM decisions k JOIN deliveries a ON a.decision_id = k.id"
        f" WHERE k.conversion_id IN ({conversions})"
        f" UNION {recent} AND (instr(url, ?) OR instr(body, ?)"
        " OR instr(coalesce(response, ''), ?)))"
    )
    return sql, [number, *named, Q_SCAN, q, q, q]


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


def _bounds(id_column: str, chosen: ListFilter) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    values: list[Any] = []
    if chosen.before is not None:
        where.append(f"{id_column} < ?")
        values.append(chosen.before)
    if chosen.after is not None:
        where.append(f"{id_column} > ?")
        values.append(chosen.after)
    return where, values


def _condition(where: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(where)}" if where else ""


def _decision_page(chosen: ListFilter) -> tuple[str, list[Any]]:
    """A conversions page walked through the decisions index: the FROM and WHERE of the
    distinct conversion ids of matching decisions, newest first."""
    where: list[str] = []
    values: list[Any] = []

    def add(clause: str, *given: Any) -> None:
        where.append(clause)
        values.extend(given)

    chosen._decision_clauses("k", add, stored=True)
    own, own_values = replace(chosen, verdict=None, postback=None).clauses("conversions")
    bounds, bound_values = _bounds("k.conversion_id", chosen)
    # CROSS JOIN: the decisions index drives the walk (SQLite keeps that order)
    join = " CROSS JOIN conversions ON conversions.id = k.conversion_id" if own else ""
    return (
        f"FROM {STORED['decisions']} k{join}{_condition([*where, *own, *bounds])}",
        [*values, *own_values, *bound_values],
    )


def id_page(table: str, chosen: ListFilter) -> tuple[str, Sequence[Any]]:
    """The query for the ids of one page of ``table``, newest first (with ``oldest``: the
    oldest page, oldest first)."""
    order = "ASC" if chosen.oldest else "DESC"
    if table == "conversions" and chosen.on_decisions:
        body, values = _decision_page(chosen)
        return (
            f"SELECT DISTINCT k.conversion_id {body} ORDER BY k.conversion_id {order} LIMIT ?",
            (*values, chosen.limit),
        )
    where, values = chosen.clauses(table)
    bounds, bound_values = _bounds("id", chosen)
    walk = f"{WALK} " if chosen.walks(table) else ""
    source = read_from(table)
    return (
        f"{walk}SELECT id FROM {source}{_condition([*where, *bounds])} ORDER BY id {order} LIMIT ?",
        (*values, *bound_values, chosen.limit),
    )


def newer_count(table: str, after_id: int, chosen: ListFilter) -> tuple[str, Sequence[Any]]:
    """The query for how many rows of ``table`` above ``after_id`` the filter matches."""
    chosen = chosen.page(after=after_id)
    if table == "conversions" and chosen.on_decisions:
        body, values = _decision_page(chosen)
        return f"SELECT count(DISTINCT k.conversion_id) {body}", values
    where, values = chosen.clauses(table)
    bounds, bound_values = _bounds("id", chosen)
    walk = f"{WALK} " if chosen.walks(table) else ""
    return (
        f"{walk}SELECT count(*) FROM {read_from(table)}{_condition([*where, *bounds])}",
        (*values, *bound_values),
    )


# -- from query parameters --------------------------------------------------------------------

FILTER_PARAMETERS = (
    "campaign",
    "type",
    "status",
    "verdict",
    "outcome",
    "postback",
    "traffic_source",
    "q",
    "since",
    "until",
    "limit",
    "before",
)


# The fields of ListFilter that choose rows, by their query parameter names (the others are
# the page and what resolve fills in).
TERMS = (*(name for name in FILTER_PARAMETERS if name not in ("limit", "before")), "endpoint")


def terms_of(table: str) -> tuple[str, ...]:
    """The terms the list read from ``table`` takes, in the order the filter bar offers them:
    endpoint only on inbound requests (after outcome), and no outcome on changes (a change's
    decisions have verdicts; its conversion's attempts have the outcomes)."""
    names = [name for name in TERMS if name != "endpoint"]
    if table == "inbound":
        names.insert(names.index("outcome") + 1, "endpoint")
    if table == "conversion_events":
        names.remove("outcome")
    return tuple(names)


def parameters(chosen: ListFilter) -> dict[str, str]:
    """The query parameters of a filter's terms (what ``from_parameters`` reads back), in
    the order of ``FILTER_PARAMETERS``; times as Unix seconds."""
    given: dict[str, str] = {}
    for name in TERMS:
        value = getattr(chosen, name)
        if value is not None:
            if isinstance(value, float):
                given[name] = str(int(value)) if value.is_integer() else repr(value)
            else:
                given[name] = str(value)
    return given


def _choice(name: str, value: str, accepted: Sequence[str]) -> str:
    if value not in accepted:
        raise FilterError(f"{name} {value!r} is not one of: {', '.join(accepted)}")
    return value


def _whole(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise FilterError(f"{name} must be a whole number, not {value!r}") from None
    if number < 0:
        raise FilterError(f"{name} must be a whole number of 0 or more, not {value!r}")
    return number


def parse_time(name: str, value: str, now: float | None = None) -> float:
    """A time given as Unix seconds or ISO 8601 (a date, or a date and time; UTC unless it
    names its offset) as Unix seconds; with ``now``, also an age before it (``30m``, ``2h``,
    ``7d``, as ``prune --older-than`` reads one)."""
    from datetime import UTC, datetime

    from store.retention import AGE_UNITS, parse_age

    try:
        return float(value)
    except ValueError:
        pass
    if now is not None and value[-1:].lower() in AGE_UNITS:
        try:
            return now - parse_age(value)
        except ValueError:
            pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        ages = ", or an age such as 30m, 2h or 7d" if now is not None else ""
        raise FilterError(
            f"{name} {value!r} is not a time: give ISO 8601 (2026-01-31 or "
            f"2026-01-31T12:00:00Z) or Unix seconds{ages}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def from_parameters(
    table: str,
    given: Any,
    *,
    default_limit: int = 100,
    max_limit: int = 1000,
    now: float | None = None,
) -> ListFilter:
    """The filter of a list's query parameters (a mapping of name -> text); empty values
    are not set; with ``now``, since and until may be ages (``1h``: an hour before it).
    Raises ``FilterError`` on a value that cannot be used."""
    if table not in LISTED:
        raise ValueError(f"no list is read from the table {table!r}")
    values: dict[str, str] = {
        name: str(given[name]) for name in (*FILTER_PARAMETERS, "endpoint") if given.get(name)
    }
    outcomes = INBOUND_OUTCOMES if table == "inbound" else OUTCOMES
    limit = _whole("limit", values["limit"]) if "limit" in values else default_limit
    until = parse_time("until", values["until"], now) if "until" in values else None
    since = parse_time("since", values["since"], now) if "since" in values else None
    taken = terms_of(table)
    if "endpoint" in values and "endpoint" not in taken:
        raise FilterError(f"endpoint filters inbound requests, not {NOUNS.get(table, table)}")
    if "outcome" in values and "outcome" not in taken:
        raise FilterError(
            "outcome filters conversions, deliveries and inbound requests, not changes"
            " (verdict= and postback= filter a change's decisions)"
        )
    return ListFilter(
        campaign=values.get("campaign"),
        type=values.get("type"),
        status=_choice("status", values["status"], STATUSES) if "status" in values else None,
        verdict=_choice("verdict", values["verdict"], VERDICTS) if "verdict" in values else None,
        outcome=(_choice("outcome", values["outcome"], outcomes) if "outcome" in values else None),
        endpoint=(
            _choice("endpoint", values["endpoint"], ENDPOINTS) if "endpoint" in values else None
        ),
        postback=values.get("postback"),
        traffic_source=values.get("traffic_source"),
        q=values.get("q"),
        since=since,
        until=until,
        limit=min(limit or default_limit, max_limit),
        before=_whole("before", values["before"]) if "before" in values else None,
    )
