"""What each postback kind builds, how its answers are judged, and how its secrets are
filled in at send time: S2S here, each ad platform as its ``Platform`` declares
(``listener.platforms.PLATFORMS``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from listener.outbound import Built, Context, build_s2s, judge_s2s
from listener.platforms import PLATFORMS, common
from listener.platforms.common import Judge, Preparer
from store.records import Attempt

Builder = Callable[[Context], Built]

BUILDERS: dict[str, Builder] = {"s2s": build_s2s, **{k: p.build for k, p in PLATFORMS.items()}}
JUDGES: dict[str, Judge] = {"s2s": judge_s2s, **{k: p.judge for k, p in PLATFORMS.items()}}
# Stored attempts hold masked secrets; a preparer puts the real ones back just before sending.
PREPARERS: dict[str, Preparer] = {k: p.prepare for k, p in PLATFORMS.items()}


def build(ctx: Context) -> Built:
    """The outbound request of ``ctx.config`` for ``ctx.conversion``."""
    builder = BUILDERS.get(ctx.config.kind)
    if builder is None:
        return Built(None, f"postback kind '{ctx.config.kind}' is not supported yet")
    return builder(ctx)


def judge(attempt: Attempt, status: int, body: str) -> str | None:
    """Why an answer does not count as delivered, or None when it does."""
    return JUDGES.get(attempt.kind, judge_s2s)(attempt, status, body)


def prepare(attempt: Attempt) -> Attempt:
    """The attempt as it must go on the wire (secrets filled in)."""
    preparer = PREPARERS.get(attempt.kind)
    return attempt if preparer is None else preparer(attempt)


# Query parameters whose value is a credential, whatever the kind (an S2S template may carry
# a traffic source's token too).
TOKEN_PARAMS = ("access_token", "token")
_SHORTEST_SECRET = 4  # shorter values would mask ordinary words


def secrets_of(attempt: Attempt) -> list[str]:
    """Every secret value a (prepared) attempt carries, longest first: the platform settings'
    secrets and any ``access_token`` or ``token`` query value. Masked values are not secrets."""
    found: set[str] = set()
    for key in common.SECRET_KEYS:
        raw = attempt.platform.get(key)
        if raw is None or not str(raw).strip():
            continue
        try:
            found.add(common.resolve(raw, key))
        except common.Missing:
            continue
    try:
        query = urlsplit(attempt.url).query
    except ValueError:
        query = attempt.url.partition("?")[2]
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in TOKEN_PARAMS:
            found.add(value)
    shown = {s for s in found if len(s) >= _SHORTEST_SECRET and not s.endswith("****")}
    return sorted(shown, key=len, reverse=True)


def scrub(text: str | None, secrets: Sequence[str]) -> str | None:
    """``text`` with every secret, as it is or URL-encoded, replaced by its masked form."""
    if text is None:
        return None
    for secret in secrets:
        forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret, safe="*")}
        for form in forms:
            text = text.replace(form, common.mask(secret))
    return text
