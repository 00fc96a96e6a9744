"""The writer jobs of inbound traffic: a click and a postback.

Each job runs inside the store's writer transaction, so a request, its outcome and every
effect (conversion, decisions, delivery attempts) are committed together before the answer.
The configuration comes from the writer's cached snapshot (``store.snapshot``).
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

from listener import kinds, outbound, rules
from listener.parsing import (
    Postback,
    Rejection,
    parse_payout,
    parse_postback,
    resolve_status,
    type_warning,
)
from store import events
from store.records import (
    Attempt,
    Click,
    Conversion,
    DuplicateMode,
    InboundRequest,
    OfferSource,
    PostbackConfig,
    Verdict,
)
from store.snapshot import CampaignSetup, Snapshot, SnapshotCache


@dataclass
class Answer:
    """What the handler answers, and what the outbox must send."""

    status: int
    body: dict[str, Any]
    redirect: str | None = None
    attempts: list[Attempt] = field(default_factory=list)


def reject(
    conn: sqlite3.Connection,
    request: InboundRequest,
    rejection: Rejection,
    click_id: str | None = None,
) -> Answer:
    """Store a refused request with its reason and answer with the error."""
    events.insert_inbound(
        conn,
        request,
        outcome="rejected",
        reason=rejection.reason,
        http_status=rejection.status,
        click_id=click_id,
    )
    return Answer(rejection.status, {"error": rejection.reason})


def record_click(
    conn: sqlite3.Connection,
    request: InboundRequest,
    params: dict[str, str],
    oversize: Rejection | None,
    *,
    key: str,
    cache: SnapshotCache,
) -> Answer:
    snapshot = cache.get(conn)
    setup = snapshot.campaign(key)
    if setup is None:
        known = ", ".join(snapshot.campaign_ids) or "none"
        return reject(
            conn,
            request,
            Rejection(404, f"unknown campaign '{key}': known campaign keys are {known}"),
        )
    if oversize is not None:
        return reject(conn, request, oversize)
    campaign, id_param = setup.campaign, setup.traffic_source.click_id_param
    assert campaign.id is not None
    click = Click(
        id=new_click_id(request.received_at),
        campaign_id=campaign.id,
        external_id=params.get(id_param, "").strip(),
        params={name: value for name, value in params.items() if name != id_param},
        created_at=request.received_at,
    )
    inbound_id = events.insert_inbound(
        conn,
        request,
        outcome="accepted",
        reason="",
        http_status=302 if campaign.offer_url else 200,
        click_id=click.id,
    )
    events.insert_click(conn, click, inbound_id)
    body = {"clickid": click.id}
    if campaign.offer_url:
        return Answer(302, body, redirect=campaign.offer_url.replace("{clickid}", click.id))
    return Answer(200, body)


def new_click_id(at: float) -> str:
    """postwatch's own click id: 24 hex digits, the click's time in milliseconds and then 52
    random bits. An id made later sorts later, so the index of click ids takes each new click
    at its right edge (random ids land all over it: a page written for every click on a large
    database), and a postback, which mostly comes for a recent click, reads that edge too."""
    return f"{int(at * 1000):011x}{secrets.randbits(52):013x}"


def _click(
    conn: sqlite3.Connection, click_id: str, snapshot: Snapshot, at: float
) -> tuple[Click, bool]:
    """The click a postback names, or one made for it under ``unknown_clicks = attach:…``;
    and whether it was just made."""
    click = events.get_click(conn, click_id)
    if click is not None:
        return click, False
    policy = snapshot.settings.unknown_clicks
    attach = policy.startswith("attach:")
    key = policy.removeprefix("attach:")
    setup = snapshot.campaign(key) if attach else None
    if setup is not None and setup.campaign.id is not None:
        made = Click(click_id, setup.campaign.id, external_id="", params={}, created_at=at)
        made.seq = events.insert_click(conn, made, None)
        return made, True
    if not attach:
        raise Rejection(
            404,
            f"unknown click id '{click_id}': no click with this id was recorded; check that the "
            'offer link passes the click id, or set unknown_clicks = "attach:<campaign>"',
        )
    raise Rejection(
        404,
        f"unknown click id '{click_id}', and unknown_clicks names campaign '{key}', which "
        "does not exist: fix the [listener] unknown_clicks setting",
    )


def record_postback(
    conn: sqlite3.Connection,
    request: InboundRequest,
    params: dict[str, str],
    oversize: Rejection | None,
    *,
    cache: SnapshotCache,
) -> Answer:
    snapshot = cache.get(conn)
    try:
        postback = parse_postback(params)
    except Rejection as rejection:  # over the cap, the body was not read: say that first
        return reject(conn, request, oversize or rejection)
    new = False
    try:
        click, new = _click(conn, postback.click_id, snapshot, request.received_at)
        payout = None if postback.payout is None else parse_payout(postback.payout)
        if oversize is not None:
            raise oversize
    except Rejection as rejection:
        if new:  # the click was made for this postback, which is refused: keep only the log
            events.delete_click(conn, click)
        return reject(conn, request, rejection, postback.click_id)
    return record_conversion(conn, request, postback, payout, click, snapshot, new_click=new)


# What a postback does with the conversion it repeats.
Repeat = Literal["create", "update", "ignore"]


def repeat_policy(
    existing: Conversion | None, postback: Postback, offer_source: OfferSource
) -> Repeat:
    """What a postback does with the conversion it repeats (same click and txid, or without a
    txid the same click and type): ``create`` a conversion (none yet, or the offer source's
    duplicates are ``new``), ``update`` it, or ``ignore`` the repeat."""
    if existing is None:
        return "create"
    if postback.txid is not None or offer_source.duplicates == DuplicateMode.UPDATE:
        return "update"
    return "ignore" if offer_source.duplicates == DuplicateMode.IGNORE else "create"


def merge(
    existing: Conversion | None,
    postback: Postback,
    status: str,
    payout: float | None,
    click: Click,
    currency: str,
) -> tuple[Conversion, str | None]:
    """The conversion as this postback leaves it: a new one (``existing`` None), or the
    existing one where what the postback does not say stays as it was. Also the sentence for
    a kept status (an update sent without one), else None."""
    conversion = Conversion(
        id=0,
        click_id=click.id,
        campaign_id=click.campaign_id,
        type=postback.type,
        status=status,
        raw_status=postback.raw_status,
        payout=payout,
        currency=postback.currency or currency,
        txid=postback.txid,
    )
    if existing is None:
        return conversion, None
    conversion.id = existing.id
    conversion.type = postback.type or existing.type
    conversion.payout = existing.payout if payout is None else payout
    conversion.currency = postback.currency or existing.currency
    conversion.txid = postback.txid or existing.txid
    if postback.raw_status is not None:
        return conversion, None
    conversion.status, conversion.raw_status = existing.status, existing.raw_status
    return conversion, f"no status was sent: the conversion keeps '{existing.status}'"


class Decided(NamedTuple):
    """One postback config's decision for a conversion event, and what it sends."""

    config: PostbackConfig
    decision: rules.Decision
    built: outbound.Built | None  # the request, when it fired (or was built but not sent)


class Decide(Protocol):
    """How one postback config is decided for a conversion event (``decide``)."""

    def __call__(
        self,
        config: PostbackConfig,
        conversion: Conversion,
        *,
        fired_at: float | None,
        click: Click,
        setup: CampaignSetup,
        at: float,
    ) -> Decided: ...


def decide(
    config: PostbackConfig,
    conversion: Conversion,
    *,
    fired_at: float | None,
    click: Click,
    setup: CampaignSetup,
    at: float,
) -> Decided:
    """The rule's verdict; a fired one is built, and skipped when its request cannot be
    made or sent (say, no external id, no access token)."""
    decision = rules.decide(config, conversion, fired_at=fired_at)
    if decision.verdict != Verdict.FIRED:  # only what would fire is built
        return Decided(config, decision, None)
    context = outbound.Context(config, conversion, click, setup.campaign, setup.traffic_source, at)
    built = kinds.build(context)
    if built.missing is not None:
        decision = rules.Decision(Verdict.SKIPPED, [built.missing])
    return Decided(config, decision, built)


def record_conversion(
    conn: sqlite3.Connection,
    request: InboundRequest,
    postback: Postback,
    payout: float | None,
    click: Click,
    snapshot: Snapshot,
    *,
    new_click: bool,
    decide_each: Decide | None = None,
) -> Answer:
    """Create or update the conversion of an accepted postback, and decide every postback
    config of its campaign (with ``decide``, or ``decide_each`` when given)."""
    decide_each = decide_each or decide
    setup = snapshot.campaigns[click.campaign_id]
    offer_source = setup.offer_source
    status = resolve_status(postback.raw_status, offer_source)
    warnings = list(postback.warnings)
    if status.warning:
        warnings.append(status.warning)
    unknown_type = type_warning(postback.type, snapshot.conversion_types)
    if unknown_type:
        warnings.append(unknown_type)
    parsed = {"aliases": postback.aliases, "status": status.how}
    inbound: dict[str, Any] = dict(
        outcome="accepted", http_status=200, warnings=warnings, parsed=parsed, click_id=click.id
    )

    existing = (
        None
        if new_click  # a click made just now has no conversion yet
        else events.find_conversion(conn, click, txid=postback.txid, type_=postback.type)
    )
    policy = repeat_policy(existing, postback, offer_source)
    if policy == "ignore":
        assert existing is not None
        reason = (
            f"duplicate of conversion {existing.id} (same click and type, no txid): offer "
            f"source '{offer_source.name}' ignores duplicates"
        )
        events.insert_inbound(conn, request, reason=reason, conversion_id=existing.id, **inbound)
        body = {"ok": True, "ignored": reason, "conversion_id": existing.id}
        return Answer(200, body | {"warnings": warnings})
    updated = existing if policy == "update" else None
    conversion, kept = merge(
        updated, postback, status.status, payout, click, snapshot.settings.currency
    )
    if kept is not None:
        parsed["status"] = kept

    at = request.received_at
    conversion.id = events.save_conversion(conn, conversion, click, at)
    inbound_id = events.insert_inbound(
        conn, request, reason="", conversion_id=conversion.id, **inbound
    )
    change = "updated" if updated else "created"
    event_id = events.insert_event(conn, conversion, inbound_id, change, at)
    answer = Answer(
        200,
        {
            "ok": True,
            "conversion_id": conversion.id,
            "change": change,
            "status": conversion.status,
            "warnings": warnings,
            "decisions": [],
        },
    )
    for config in setup.campaign.postbacks:
        assert config.id is not None
        fired_at = events.last_fired_at(conn, conversion.id, config.id) if updated else None
        decided = decide_each(
            config, conversion, fired_at=fired_at, click=click, setup=setup, at=at
        )
        _record(conn, decided, answer, conversion.id, event_id, setup, at)
    return answer


def _record(
    conn: sqlite3.Connection,
    decided: Decided,
    answer: Answer,
    conversion_id: int,
    event_id: int,
    setup: CampaignSetup,
    at: float,
) -> None:
    """Store a decision; a fired one's first attempt goes to the answer, for the outbox."""
    config, decision, built = decided
    assert config.id is not None
    fired = decision.verdict == Verdict.FIRED
    # Built but not sent (say, no access token): kept, secrets masked, for the trace.
    unsent = asdict(built.request) if built and not fired and built.request else None
    decision_id = events.insert_decision(
        conn,
        conversion_id=conversion_id,
        event_id=event_id,
        config_id=config.id,
        postback=config.name,
        kind=config.kind,
        verdict=decision.verdict,
        reasons=decision.reasons,
        warnings=built.warnings if built and fired else [],
        at=at,
        request=unsent,
    )
    answer.body["decisions"].append(
        {"postback": config.name, "verdict": decision.verdict, "reasons": decision.reasons}
    )
    if built and fired and built.request is not None:
        answer.attempts.append(_first_attempt(conn, decision_id, config, setup, built, at))


def insert_first_attempt(
    conn: sqlite3.Connection, decision_id: int, request: outbound.Outbound, at: float
) -> int:
    """Store the first attempt of a fired decision, due ``at``; its id."""
    return events.insert_attempt(
        conn,
        decision_id=decision_id,
        attempt=1,
        method=request.method,
        url=request.url,
        headers=request.headers,
        body=request.body,
        due_at=at,
    )


def _first_attempt(
    conn: sqlite3.Connection,
    decision_id: int,
    config: Any,
    setup: CampaignSetup,
    built: outbound.Built,
    at: float,
) -> Attempt:
    assert built.request is not None
    request = built.request
    delivery_id = insert_first_attempt(conn, decision_id, request, at)
    return Attempt(
        id=delivery_id,
        decision_id=decision_id,
        attempt=1,
        resend_of=None,
        kind=config.kind,
        method=request.method,
        url=request.url,
        headers=request.headers,
        body=request.body,
        success_body=setup.traffic_source.success_body,
        failure_body=setup.traffic_source.failure_body,
        platform=config.platform,
        due_at=at,
    )
