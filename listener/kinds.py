"""What each postback kind builds, how its answers are judged, and how its secrets are
filled in at send time. S2S is here from the start; each ad platform adds its own entries."""

from __future__ import annotations

from collections.abc import Callable

from listener import platforms
from listener.outbound import Built, Context, build_s2s, judge_s2s
from store.records import Attempt

Builder = Callable[[Context], Built]
Judge = Callable[[Attempt, int, str], "str | None"]
Preparer = Callable[[Attempt], Attempt]

BUILDERS: dict[str, Builder] = {"s2s": build_s2s, **platforms.BUILDERS}
JUDGES: dict[str, Judge] = {"s2s": judge_s2s, **platforms.JUDGES}
# Stored attempts hold masked secrets; a preparer puts the real ones back just before sending.
PREPARERS: dict[str, Preparer] = {**platforms.PREPARERS}


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
