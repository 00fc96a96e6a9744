"""What the dashboard's actions do through the listener's JSON API: replay an inbound request
(as it was, or edited in a form first), recover failed deliveries, enter a conversion by hand,
re-evaluate conversions. Each builds its form (``tui.widgets.forms``) or calls the API, and
says what happened in a notification; the screens only bind the keys. The API decides
everything: duplicates, "already fired", what is failed and not yet resent, so nothing here
can send a delivery twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from listener.actions import edit_text, parse_edited
from listener.recover import TimeError, parse_time
from listener.words import plural
from store.read.model import InboundView
from tui.context import ApiError, Dash
from tui.widgets.forms import FormField, FormScreen, Values

Notify = Callable[..., object]  # a screen's ``notify``

RECOVER_SINCE = "24h"  # the recover form's default: the failed deliveries of the last day


def decisions_summary(decisions: list[dict[str, Any]]) -> str:
    """An answer's decisions in a few words: "all events fired, paid deposits filtered"."""
    return ", ".join(f"{one['postback']} {one['verdict']}" for one in decisions)


# -- replay ----------------------------------------------------------------------------------


async def replay(dash: Dash, inbound_id: int, edit: dict[str, str] | None = None) -> str:
    """Replay inbound request ``inbound_id``, with ``edit``'s ``query`` and ``body`` in place
    of the stored ones; the sentence saying what came of it. Raises ``ApiError`` with the
    API's sentence."""
    status, answer = await dash.api("POST", f"/api/inbound/{inbound_id}/replay", edit or None)
    if status == 404:
        raise ApiError(answer.get("error", f"no inbound request has id {inbound_id}"))
    return replayed_sentence(answer, edited=bool(edit))


def replayed_sentence(answer: dict[str, Any], *, edited: bool = False) -> str:
    """What a replay did, from the API's answer: the new row, its outcome, the decisions."""
    row = answer["inbound"]
    how = " edited" if edited else ""
    sentence = f"Replayed #{answer['replay_of']}{how} as #{row['id']}: {row['outcome']}"
    if row.get("reason"):
        sentence += f" ({row['reason']})"
    body = answer["answer"].get("body", {})
    decisions = decisions_summary(body.get("decisions", []))
    if decisions:
        sentence += f"; {decisions}"
    return sentence


def replay_form(dash: Dash, request: InboundView, notify: Notify) -> FormScreen:
    """The form that edits a stored request's query and body before replaying it, in the
    text the command line's ``postwatch replay ID --edit`` opens in $EDITOR."""

    async def submit(values: Values) -> str | None:
        query, body = parse_edited(values["request"])
        # only what was changed is sent: an unchanged body keeps its stored headers
        edit = {
            name: value
            for name, value, stored in (
                ("query", query, request.query),
                ("body", body, request.body),
            )
            if value != stored
        }
        notify(await replay(dash, request.id, edit), markup=False, timeout=8)
        return None

    target = f"{request.method} {request.path}"
    return FormScreen(
        f"Replay inbound #{request.id} edited ({target})",
        [
            FormField(
                "request",
                "[query]: the query string (on one or more lines); [body]: the body",
                edit_text(request.query, request.body),
                kind="text",
            )
        ],
        submit,
        action="replay",
    )


# -- recover ---------------------------------------------------------------------------------


def recover_scope(values: Values) -> str:
    """Which failed deliveries, in words: "of 'Propeller' for postback config 'all events'"."""
    words = []
    if values.get("traffic_source"):
        words.append(f"of '{values['traffic_source']}'")
    if values.get("postback"):
        words.append(f"for postback config '{values['postback']}'")
    return " ".join(words)


def since_words(since: str, now: float) -> str:
    """A recover's ``since`` as the time it stands for: "since 10:00 UTC" today, with the
    date before today; as typed when it cannot be read (the API then says why)."""
    try:
        at = parse_time(since, now)
    except TimeError:
        return f"since {since}"
    same_day = time.gmtime(at)[:3] == time.gmtime(now)[:3]
    shown = time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", time.gmtime(at))
    return f"since {shown} UTC"


def _failed(count: int) -> str:
    return plural(count, "failed delivery", "failed deliveries")


def recover_form(dash: Dash, notify: Notify) -> FormScreen:
    """The form that resends every failed delivery since a time, once each: the first
    ctrl+s counts what would be queued (a dry run), the second, with the same values,
    queues it."""
    counted: list[Values] = []  # the values of the last dry run that found some

    async def submit(values: Values) -> str | None:
        since = values["since"] or RECOVER_SINCE
        payload = {
            "since": since,
            "traffic_source": values["traffic_source"] or None,
            "postback": values["postback"] or None,
        }
        scope = recover_scope(values)
        what = (scope + " " if scope else "") + since_words(since, dash.options.clock())
        path = "/api/deliveries/recover"
        if values not in counted:
            _, found = await dash.api("POST", path, payload | {"dry_run": True})
            counted.clear()
            count = int(found["count"])
            if not count:
                return f"No failed delivery {what} to resend: nothing to queue."
            counted.append(values)
            return f"Would queue {_failed(count)} {what}: press ctrl+s again to queue them."
        _, found = await dash.api("POST", path, payload)
        where = " for the serving listener's outbox" if dash.attached else ""
        notify(f"Queued {_failed(int(found['count']))} {what}{where}", markup=False, timeout=8)
        return None

    return FormScreen(
        "Recover: resend every failed delivery since a time, once each",
        [
            FormField("since", "since", RECOVER_SINCE, placeholder="30m, 2h, 7d or ISO 8601"),
            FormField("traffic_source", "traffic source", placeholder="any (or a name)"),
            FormField("postback", "postback config", placeholder="any (or a name or id)"),
        ],
        submit,
        action="count, then queue",
        intro="A delivery resent already, or retried since, is left alone.",
    )


# -- a conversion entered by hand ------------------------------------------------------------


def manual_form(dash: Dash, click_id: str, notify: Notify) -> FormScreen:
    """The form that enters a conversion by hand for a known click, marked manual; its
    postbacks decided and sent, or only recorded."""

    async def submit(values: Values) -> str | None:
        payload = {name: value for name, value in values.items() if value != ""}
        status, answer = await dash.api("POST", "/api/conversions", payload)
        if status == 404:
            raise ApiError(str(answer.get("error", answer)))
        notify(manual_sentence(answer), markup=False, timeout=8)
        return None

    return FormScreen(
        "Enter a conversion by hand (marked manual)",
        [
            FormField("click_id", "click id", click_id, placeholder="the click it belongs to"),
            FormField("type", "type", placeholder="optional, e.g. Deposit"),
            FormField("status", "status", placeholder="optional: approved, pending, declined…"),
            FormField("payout", "payout", placeholder="optional, e.g. 12.50"),
            FormField("currency", "currency", placeholder="optional (default: the settings')"),
            FormField("txid", "txid", placeholder="optional; one of the click's updates it"),
            FormField("fire", "fire its postbacks (off: only record it)", True, kind="check"),
        ],
        submit,
        action="enter the conversion",
    )


def manual_sentence(answer: dict[str, Any]) -> str:
    """What entering a conversion by hand did, from the API's answer."""
    if "ignored" in answer:
        return f"Nothing entered: {answer['ignored']}"
    how = "postbacks decided and sent" if answer.get("fire") else "only recorded, nothing sent"
    sentence = f"Conversion #{answer['conversion_id']} {answer['change']} by hand ({how})"
    decisions = decisions_summary(answer.get("decisions", []))
    return sentence + (f": {decisions}" if decisions else "")


# -- re-evaluation ---------------------------------------------------------------------------


async def reevaluate(
    dash: Dash, selection: dict[str, Any], *, dry_run: bool, fire: bool
) -> dict[str, Any]:
    """Run the conversions ``selection`` chooses (``campaign`` and ``since``, or ``ids``)
    through the current rules: the API's answer. Raises ``ApiError`` with its sentence."""
    payload = {**selection, "dry_run": dry_run, "fire": fire}
    status, answer = await dash.api("POST", "/api/reevaluate", payload)
    if status == 404:
        raise ApiError(str(answer.get("error", answer)))
    return dict(answer)


async def reevaluation_dry_runs(
    dash: Dash, selection: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both dry runs of ``selection``: without fire (what recording records) and with it
    (what recording and firing records: also the decisions an earlier run recorded without
    sending, which now would be sent)."""
    answer = await reevaluate(dash, selection, dry_run=True, fire=False)
    fired = await reevaluate(dash, selection, dry_run=True, fire=True)
    return answer, fired


def reevaluated_sentence(answer: dict[str, Any], what: str) -> str:
    """What a recorded re-evaluation of ``what`` did: "Re-evaluated 'casino-fr': recorded 2
    changed decisions, queued 1 delivery"."""
    changed = plural(len(answer["changes"]), "changed decision", "changed decisions")
    words = f"Re-evaluated {what}: recorded {changed}"
    if answer["fire"]:
        words += f", queued {plural(len(answer['deliveries']), 'delivery', 'deliveries')}"
    return words
