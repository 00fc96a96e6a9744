"""The writer jobs of inbound traffic: a click, a postback, a sink request.

Each job runs inside the store's writer transaction, so a request, its outcome and every
effect (conversion, decisions, delivery attempts) are committed together before the answer.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from listener import kinds, outbound, rules
from listener.parsing import (
    Rejection,
    parse_payout,
    parse_postback,
    raw_payout,
    resolve_status,
    type_warning,
)
from store import events, workspace
from store.records import Campaign, Click, Conversion, InboundRequest


@dataclass
class Answer:
    """What the handler answers, and what the outbox must send."""

    status: int
    body: dict[str, Any]
    redirect: str | None = None
    attempts: list[tuple[int, float]] = field(default_factory=list)


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


def _too_large(max_body: int) -> Rejection:
    return Rejection(
        413,
        f"the body is over the limit of {max_body} bytes: send the values in the query string "
        "or a smaller body",
    )


def record_click(
    conn: sqlite3.Connection,
    request: InboundRequest,
    params: dict[str, str],
    too_large: bool,
    *,
    key: str,
) -> Answer:
    row = workspace.campaign_row(conn, key)
    if row is None:
        known = ", ".join(r[0] for r in conn.execute("SELECT key FROM campaigns ORDER BY id"))
        return reject(
            conn,
            request,
            Rejection(404, f"unknown campaign '{key}': known campaign keys are {known or 'none'}"),
        )
    if too_large:
        return reject(conn, request, _too_large(workspace.load_settings(conn).max_body))
    source = workspace.traffic_source(conn, row["traffic_source_id"])
    click = Click(
        id=secrets.token_hex(12),
        campaign_id=row["id"],
        external_id=params.get(source.click_id_param, "").strip(),
        params={name: value for name, value in params.items() if name != source.click_id_param},
        created_at=request.received_at,
    )
    inbound_id = events.insert_inbound(
        conn,
        request,
        outcome="accepted",
        reason="",
        http_status=302 if row["offer_url"] else 200,
        click_id=click.id,
    )
    events.insert_click(conn, click, inbound_id)
    body = {"clickid": click.id}
    if row["offer_url"]:
        return Answer(302, body, redirect=row["offer_url"].replace("{clickid}", click.id))
    return Answer(200, body)


def _attach(conn: sqlite3.Connection, click_id: str, policy: str, at: float) -> Click:
    """The click a postback names, or one made for it under ``unknown_clicks = attach:…``."""
    click = events.get_click(conn, click_id)
    if click is not None:
        return click
    if not policy.startswith("attach:"):
        raise Rejection(
            404,
            f"unknown click id '{click_id}': no click with this id was recorded; check that the "
            'offer link passes the click id, or set unknown_clicks = "attach:<campaign>"',
        )
    key = policy.removeprefix("attach:")
    row = workspace.campaign_row(conn, key)
    if row is None:
        raise Rejection(
            404,
            f"unknown click id '{click_id}', and unknown_clicks names campaign '{key}', which "
            "does not exist: fix the [listener] unknown_clicks setting",
        )
    click = Click(id=click_id, campaign_id=row["id"], external_id="", params={}, created_at=at)
    events.insert_click(conn, click, None)
    return click


def record_postback(
    conn: sqlite3.Connection, request: InboundRequest, params: dict[str, str], too_large: bool
) -> Answer:
    settings = workspace.load_settings(conn)
    try:
        postback = parse_postback(params)
    except Rejection as rejection:
        return reject(conn, request, rejection)
    try:
        click = _attach(conn, postback.click_id, settings.unknown_clicks, request.received_at)
        payout_text = raw_payout(params)
        payout = None if payout_text is None else parse_payout(payout_text)
        if too_large:
            raise _too_large(settings.max_body)
    except Rejection as rejection:
        return reject(conn, request, rejection, postback.click_id)

    at = request.received_at
    campaign_row = conn.execute(
        "SELECT * FROM campaigns WHERE id = ?", (click.campaign_id,)
    ).fetchone()
    offer_source = workspace.offer_source(conn, campaign_row["offer_source_id"])
    traffic_source = workspace.traffic_source(conn, campaign_row["traffic_source_id"])
    status = resolve_status(postback.raw_status, offer_source)
    existing = events.find_conversion(conn, click.id, txid=postback.txid, type_=postback.type)
    warnings = list(postback.warnings)
    if status.warning:
        warnings.append(status.warning)
    unknown_type = type_warning(postback.type, workspace.conversion_types(conn))
    if unknown_type:
        warnings.append(unknown_type)
    parsed = {"aliases": postback.aliases, "status": status.how}

    if existing is not None and postback.txid is None and offer_source.duplicates != "update":
        if offer_source.duplicates == "ignore":
            reason = (
                f"duplicate of conversion {existing.id} (same click and type, no txid): offer "
                f"source '{offer_source.name}' ignores duplicates"
            )
            inbound_id = events.insert_inbound(
                conn,
                request,
                outcome="accepted",
                reason=reason,
                http_status=200,
                warnings=warnings,
                parsed=parsed,
                click_id=click.id,
            )
            events.link_inbound(conn, inbound_id, existing.id, reason)
            return Answer(
                200,
                {"ok": True, "ignored": reason, "conversion_id": existing.id, "warnings": warnings},
            )
        existing = None  # duplicates = "new"

    conversion = Conversion(
        id=0,
        click_id=click.id,
        campaign_id=click.campaign_id,
        type=postback.type,
        status=status.status,
        raw_status=postback.raw_status,
        payout=payout,
        currency=postback.currency or settings.currency,
        txid=postback.txid,
    )
    if existing is not None:  # an update: what this postback does not say stays as it was
        conversion.id = existing.id
        conversion.type = postback.type or existing.type
        conversion.payout = existing.payout if payout is None else payout
        conversion.currency = postback.currency or existing.currency
        if postback.raw_status is None:
            conversion.status, conversion.raw_status = existing.status, existing.raw_status
            parsed["status"] = f"no status was sent: the conversion keeps '{existing.status}'"

    inbound_id = events.insert_inbound(
        conn,
        request,
        outcome="accepted",
        reason="",
        http_status=200,
        warnings=warnings,
        parsed=parsed,
        click_id=click.id,
    )
    conversion.id = events.save_conversion(conn, conversion, at)
    change = "updated" if existing else "created"
    event_id = events.insert_event(conn, conversion, inbound_id, change, at)
    events.link_inbound(conn, inbound_id, conversion.id)

    campaign = Campaign(
        id=campaign_row["id"],
        key=campaign_row["key"],
        name=campaign_row["name"],
        traffic_source=traffic_source.name,
        offer_source=offer_source.name,
        offer_url=campaign_row["offer_url"],
    )
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
    for config in workspace.postback_configs(conn, click.campaign_id):
        assert config.id is not None
        built = kinds.build(
            outbound.Context(config, conversion, click, campaign, traffic_source, at)
        )
        verdict = rules.decide(
            config,
            conversion,
            fired_at=events.last_fired_at(conn, conversion.id, config.id) if existing else None,
            missing=built.missing,
        )
        decision_warnings = built.warnings if verdict.verdict == "fired" else []
        # Built but not sent (say, no access token): keep it, secrets masked, for the trace.
        unsent = built.request is not None and built.missing in verdict.reasons
        decision_id = events.insert_decision(
            conn,
            request=asdict(built.request) if unsent and built.request else None,
            conversion_id=conversion.id,
            event_id=event_id,
            config_id=config.id,
            postback=config.name,
            kind=config.kind,
            verdict=verdict.verdict,
            reasons=verdict.reasons,
            warnings=decision_warnings,
            at=at,
        )
        answer.body["decisions"].append(
            {"postback": config.name, "verdict": verdict.verdict, "reasons": verdict.reasons}
        )
        if verdict.verdict == "fired" and built.request is not None:
            request_ = built.request
            delivery_id = events.insert_attempt(
                conn,
                decision_id=decision_id,
                attempt=1,
                method=request_.method,
                url=request_.url,
                headers=request_.headers,
                body=request_.body,
                due_at=at,
            )
            answer.attempts.append((delivery_id, at))
    return answer
