"""The support actions (docs/support.md): replay a stored inbound request, enter a conversion by
hand, send a test postback.

Replay and a conversion by hand are writer jobs through the same pipeline steps as a fresh
request (``listener.pipeline``), so that a replayed postback meets the offer source's
duplicates mode and the "already fired" rule exactly as a real repeat would. Their attempts go
to this listener's outbox, which sends them only when this listener holds the outbox lease:
a delivery happens once, by the delivering listener. A test postback is sent at once, outside
the outbox, and stored apart from the deliveries of conversions.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from listener import kinds, outbound, rules
from listener.capture import body_params, form_fields
from listener.delivery import Outbox
from listener.endpoints import wrong_way
from listener.parsing import Postback, Rejection, parse_payout, resolve_status
from listener.pipeline import (
    Answer,
    Decided,
    record_click,
    record_conversion,
    record_postback,
    reject,
)
from store import events
from store.records import (
    Attempt,
    Click,
    Conversion,
    InboundRequest,
    PostbackConfig,
    Status,
    Verdict,
)
from store.snapshot import CampaignSetup, Snapshot, SnapshotCache

NOT_FIRED = "entered by hand without firing"


class ActionError(Exception):
    """A request for an action that cannot be done: an HTTP status and a sentence naming the
    value and what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- replay ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """What a replay changes: the query string and the body (None: as stored)."""

    query: str | None = None
    body: str | None = None


def edit_text(query: str, body: str) -> str:
    """A request's query and body as the text a person edits before a replay (the CLI's
    ``--edit`` in $EDITOR, the dashboard's replay form): ``[query]`` and ``[body]``, each
    followed by its value; ``parse_edited`` reads it back."""
    return f"[query]\n{query}\n[body]\n{body}\n"


def parse_edited(text: str) -> tuple[str, str]:
    """The query and body of an edited ``edit_text``: what follows ``[query]`` and ``[body]``.
    Lines starting with # are left out; the query's lines are joined (a long query may be
    broken over lines), the body's kept."""
    kept = [line for line in text.splitlines() if not line.startswith("#")]
    part, parts = "", {"query": [], "body": []}  # type: tuple[str, dict[str, list[str]]]
    for line in kept:
        if line.strip() in ("[query]", "[body]"):
            part = line.strip()[1:-1]
        elif part:
            parts[part].append(line)
    return "".join(parts["query"]).strip(), "\n".join(parts["body"]).strip("\n")


@dataclass(frozen=True)
class Replayed:
    """A replay's new inbound row and what the pipeline answered."""

    inbound_id: int
    answer: Answer


def _stored_request(conn: sqlite3.Connection, inbound_id: int) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM inbound WHERE id = ?", (inbound_id,)
    ).fetchone()
    if row is None:
        raise ActionError(
            404, f"no inbound request has id {inbound_id}: GET /api/inbound lists them"
        )
    return row


def replay_request(row: sqlite3.Row, edit: Edit, at: float) -> InboundRequest:
    """The stored request as it arrives again at ``at``: its endpoint, method, path, remote
    address and kept headers, with the edited query and body."""
    body = row["body"] if edit.body is None else edit.body
    headers = dict(json.loads(row["headers"]))
    if edit.body is not None:  # the stored length no longer describes the body
        headers.pop("Content-Length", None)
        headers.pop("Transfer-Encoding", None)
    return InboundRequest(
        received_at=at,
        endpoint=row["endpoint"],
        method=row["method"],
        path=row["path"],
        query=row["query"] if edit.query is None else edit.query.lstrip("?"),
        body=body,
        remote=row["remote"],
        headers=headers,
    )


def _params(request: InboundRequest) -> tuple[dict[str, str], Rejection | None]:
    """The request's merged parameters (the body's keys over the query's), as capture reads
    them, or the rejection of a body that cannot be read."""
    params = form_fields(request.query)
    if request.body:
        try:
            params.update(body_params(request.body, request.headers.get("Content-Type", "")))
        except ValueError as error:
            return params, Rejection(400, str(error))
    return params, None


def _oversize(request: InboundRequest, max_body: int) -> Rejection | None:
    if len(request.body.encode()) <= max_body:
        return None
    return Rejection(
        413,
        f"the body is over the limit of {max_body} bytes: send the values in the "
        "query string or a smaller body",
    )


def replay(
    conn: sqlite3.Connection,
    inbound_id: int,
    edit: Edit,
    *,
    cache: SnapshotCache,
    max_body: int,
    at: float,
    listener_key: bool = False,
) -> Replayed:
    """Writer job: send stored inbound request ``inbound_id`` (edited by ``edit``) through the
    pipeline again, as a click or a postback, and link the new inbound row to it. The access
    checks (key, allowed addresses) are not made again: a replay is asked for through the
    API, with its token; with ``listener_key`` the (masked) key is left out of the parameters,
    as for a fresh request."""
    request = replay_request(_stored_request(conn, inbound_id), edit, at)
    params, unreadable = _params(request)
    if listener_key:
        params.pop("key", None)
    oversize = _oversize(request, max_body)
    if unreadable is not None:
        answer = reject(conn, request, unreadable)
    elif request.endpoint == "postback":
        answer = record_postback(conn, request, params, oversize, cache=cache)
    elif request.endpoint == "click":
        key = unquote(request.path.removeprefix("/click/"))
        answer = record_click(conn, request, params, oversize, key=key, cache=cache)
    else:  # a wrong path or method is refused again, for the same reason
        answer = reject(conn, request, wrong_way(request.method, request.path, set()))
    new_id = events.latest_inbound_id(conn)
    events.mark_replay(conn, new_id, inbound_id)
    return Replayed(new_id, answer)


# -- a conversion entered by hand ------------------------------------------------------------


@dataclass(frozen=True)
class ManualEntry:
    """A conversion as a person enters it (``POST /api/conversions``)."""

    click_id: str
    type: str | None = None
    status: str | None = None
    payout: str | None = None
    txid: str | None = None
    currency: str | None = None
    fire: bool = True


def _text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ActionError(400, f"{name} must be a string or a number, not {value!r}")
    return str(value)


def manual_entry(data: Any) -> ManualEntry:
    """The entry a JSON body asks for, or an ``ActionError`` naming the wrong value."""
    if not isinstance(data, dict):
        raise ActionError(400, 'send a JSON object: {"click_id": "...", "type": "Deposit", ...}')
    click_id = _text(data, "click_id")
    if click_id is None:
        raise ActionError(400, "click_id is missing: name the click the conversion belongs to")
    fire = data.get("fire", True)
    if not isinstance(fire, bool):
        raise ActionError(400, f"fire must be true or false, not {fire!r}")
    return ManualEntry(
        click_id=click_id,
        type=_text(data, "type"),
        status=_text(data, "status"),
        payout=_text(data, "payout"),
        txid=_text(data, "txid"),
        currency=_text(data, "currency"),
        fire=fire,
    )


def _manual_request(entry: ManualEntry, remote: str, at: float) -> InboundRequest:
    """The entry as an inbound row (endpoint ``manual``): a conversion event names the
    request that made it, and the trace shows who entered what."""
    body = {name: value for name, value in vars(entry).items() if value is not None}
    return InboundRequest(
        received_at=at,
        endpoint="manual",
        method="POST",
        path="/api/conversions",
        query="",
        body=json.dumps(body),
        remote=remote,
        headers={},
    )


def _checked(conn: sqlite3.Connection, entry: ManualEntry, snapshot: Snapshot) -> Click:
    """The entry's click, after checking every value; an ``ActionError`` names a wrong one."""
    click = events.get_click(conn, entry.click_id)
    if click is None:
        raise ActionError(
            404,
            f"unknown click id '{entry.click_id}': no click with this id was recorded; "
            "postwatch trace finds a click by its external id or a txid",
        )
    if entry.payout is not None:
        try:
            parse_payout(entry.payout)
        except Rejection as rejection:
            raise ActionError(400, rejection.reason) from None
    if entry.status is not None:
        offer_source = snapshot.campaigns[click.campaign_id].offer_source
        if resolve_status(entry.status, offer_source).warning:
            known = ", ".join(status.value for status in Status)
            raise ActionError(
                400,
                f"status '{entry.status}' is not one of: {known} (nor a status alias of offer "
                f"source '{offer_source.name}')",
            )
    return click


def enter_conversion(
    conn: sqlite3.Connection,
    entry: ManualEntry,
    *,
    cache: SnapshotCache,
    remote: str,
    at: float,
) -> Answer:
    """Writer job: record a conversion entered by hand for a known click, marked manual. With
    ``fire`` its postback configs are decided and fired as for a real postback (a repeat of
    the same click and txid updates that conversion); without, each decision is ``skipped``
    saying it was entered by hand without firing."""
    snapshot = cache.get(conn)
    click = _checked(conn, entry, snapshot)
    payout = None if entry.payout is None else parse_payout(entry.payout)
    postback = Postback(
        click_id=click.id,
        payout=entry.payout,
        type=entry.type,
        raw_status=entry.status,
        txid=entry.txid,
        currency=entry.currency,
    )
    request = _manual_request(entry, remote, at)
    if entry.fire:
        answer = record_conversion(
            conn, request, postback, payout, click, snapshot, new_click=False
        )
    else:
        answer = _record_only(conn, request, postback, payout, click, snapshot)
    conversion_id = answer.body.get("conversion_id")
    if isinstance(conversion_id, int) and "ignored" not in answer.body:
        events.mark_manual(conn, conversion_id)
    answer.body["manual"] = True
    answer.body["fire"] = entry.fire
    return answer


def not_fired(decision: rules.Decision) -> rules.Decision:
    """The decision of a conversion entered without firing: skipped, saying what the rule
    would have done."""
    if decision.verdict == Verdict.FIRED:
        return rules.Decision(Verdict.SKIPPED, [f"{NOT_FIRED} (its rule would fire it)"])
    return rules.Decision(Verdict.SKIPPED, [NOT_FIRED, *decision.reasons])


def _record_only(
    conn: sqlite3.Connection,
    request: InboundRequest,
    postback: Postback,
    payout: float | None,
    click: Click,
    snapshot: Snapshot,
) -> Answer:
    """A conversion entered by hand without firing: created (or, same click and txid,
    updated) as a postback is, with one skipped decision per postback config."""
    return record_conversion(
        conn, request, postback, payout, click, snapshot, new_click=False, decide_each=_unfired
    )


def _unfired(
    config: PostbackConfig,
    conversion: Conversion,
    *,
    fired_at: float | None,
    click: Click,
    setup: CampaignSetup,
    at: float,
) -> Decided:
    """The decision of a config for a conversion entered without firing (see ``not_fired``):
    nothing is built, nothing sent."""
    return Decided(config, not_fired(rules.decide(config, conversion, fired_at=fired_at)), None)


# -- a test postback -------------------------------------------------------------------------

# Sample values of a test postback: a fake click and conversion whose macros fill the URL.
SAMPLE = {
    "external_id": "test-external-id",
    "payout": "1.00",
    "status": "approved",
    "raw_status": "approved",
}
_CONVERSION_VALUES = frozenset(outbound.MACROS)  # the other values are click parameters


@dataclass(frozen=True)
class ConfigUnderTest:
    """The postback config a test postback is for, with its campaign and sources."""

    config: PostbackConfig
    setup: CampaignSetup
    timeout: float
    currency: str


def find_config(snapshot: Snapshot, name_or_id: str, campaign: str | None) -> ConfigUnderTest:
    """The postback config named (or numbered) ``name_or_id``, in ``campaign`` when given;
    an ``ActionError`` when none or several match."""
    found = [
        (config, setup)
        for setup in snapshot.campaigns.values()
        if campaign is None or setup.campaign.key == campaign
        for config in setup.campaign.postbacks
        if config.name == name_or_id or str(config.id) == name_or_id
    ]
    where = f" in campaign '{campaign}'" if campaign else ""
    if campaign is not None and snapshot.campaign(campaign) is None:
        known = ", ".join(snapshot.campaign_ids) or "none"
        raise ActionError(404, f"unknown campaign '{campaign}': known campaign keys are {known}")
    if not found:
        raise ActionError(404, f"no postback config is named or numbered '{name_or_id}'{where}")
    if len(found) > 1:
        keys = ", ".join(sorted(setup.campaign.key for _, setup in found))
        raise ActionError(
            409,
            f"postback config '{name_or_id}' is in several campaigns ({keys}): name one, "
            '{"campaign": "<key>"} (--campaign KEY on the command line)',
        )
    config, setup = found[0]
    return ConfigUnderTest(config, setup, snapshot.settings.timeout, snapshot.settings.currency)


def given_values(values: Any) -> dict[str, str]:
    """The given values of a test postback (``{"values": {...}}``) as text."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ActionError(400, f'values must be an object, {{"payout": "5"}}, not {values!r}')
    return {str(name): "" if value is None else str(value) for name, value in values.items()}


def sample_context(target: ConfigUnderTest, given: dict[str, str], at: float) -> outbound.Context:
    """A fake click and conversion for a test postback: the sample values, with ``given``
    over them; a value whose name is no conversion field is a click parameter."""
    values = SAMPLE | given
    config, setup = target.config, target.setup
    assert setup.campaign.id is not None
    payout_text = values["payout"]
    try:
        payout = parse_payout(payout_text) if payout_text else None
    except Rejection as rejection:
        raise ActionError(400, rejection.reason) from None
    click = Click(
        id=values.get("clickid") or "test-" + secrets.token_hex(6),
        campaign_id=setup.campaign.id,
        external_id=values.get("external_id") or values.get("externalid") or "",
        params={k: v for k, v in values.items() if k not in _CONVERSION_VALUES},
        created_at=at,
    )
    conversion = Conversion(
        id=0,
        click_id=click.id,
        campaign_id=setup.campaign.id,
        type=values.get("type") or (config.types[0] if config.types else "Lead"),
        status=values["status"],
        raw_status=values.get("raw_status") or values["status"],
        payout=payout,
        currency=values.get("currency") or target.currency,
        txid=values.get("txid") or "test-" + secrets.token_hex(6),
    )
    return outbound.Context(config, conversion, click, setup.campaign, setup.traffic_source, now=at)


async def send_test(
    outbox: Outbox, target: ConfigUnderTest, given: dict[str, str], at: float
) -> events.TestPostback:
    """Build one test postback of the config and send it to its real target, once (never
    retried); the attempt with the target's answer, judged by the traffic source's success
    and failure bodies."""
    context = sample_context(target, given, at)
    built = kinds.build(context)
    if built.request is None or built.missing is not None:
        raise ActionError(
            400,
            f"postback config '{target.config.name}' cannot build its request: "
            f"{built.missing or 'no request'}",
        )
    request = built.request
    traffic_source = target.setup.traffic_source
    attempt = Attempt(
        id=0,
        decision_id=0,
        attempt=1,
        resend_of=None,
        kind=target.config.kind,
        method=request.method,
        url=request.url,
        headers=request.headers,
        body=request.body,
        success_body=traffic_source.success_body,
        failure_body=traffic_source.failure_body,
        platform=target.config.platform,
        due_at=at,
    )
    result = await outbox.send(attempt, target.timeout)
    assert target.config.id is not None
    return events.TestPostback(
        postback_config_id=target.config.id,
        postback=target.config.name,
        campaign=target.setup.campaign.key,
        kind=target.config.kind,
        macro_values=outbound.macro_values(context),
        method=request.method,
        url=kinds.scrub(request.url, kinds.secrets_of(attempt)) or request.url,
        headers=request.headers,
        body=request.body,
        outcome="delivered" if result.error is None else "failed",
        sent_at=result.sent_at,
        duration_ms=result.duration_ms,
        http_status=result.http_status,
        response=result.response,
        error=result.error,
    )


def attempt_json(test_id: int, test: events.TestPostback) -> dict[str, Any]:
    """A test postback's attempt as the API answers it, marked ``test``."""
    from store.reads import iso

    body = {name: value for name, value in vars(test).items() if name != "headers"}
    return {"id": test_id, "test": True, **body, "sent_at": iso(test.sent_at)}
