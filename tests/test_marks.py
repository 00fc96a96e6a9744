"""Where a postback config stands for a whole conversion (``summary_of``), as a table of
cases: the marks of its decisions at each event, oldest first, and the one Live shows."""

from __future__ import annotations

import pytest

from store.read.model import FailedAttempt, summary_of

CASES = [
    # delivered at pending, then "already fired" at the approval: still delivered (not skipped)
    (["delivered", "skipped"], "delivered"),
    # filtered at pending, fired and delivered at the approval
    (["filtered", "delivered"], "delivered"),
    (["filtered", "filtered"], "filtered"),
    (["filtered"], "filtered"),
    (["skipped"], "skipped"),
    # never fired: the latest verdict (filtered at pending, disabled since)
    (["filtered", "skipped"], "skipped"),
    (["skipped", "filtered"], "filtered"),
    # fired at some event: where that delivery stands, what needs a look first
    (["fired"], "fired"),
    (["fired", "skipped"], "fired"),
    (["retrying", "skipped"], "retrying"),
    (["failed", "skipped"], "failed"),
    # refire on update: delivered at pending, the approval's delivery still retrying, failed
    (["delivered", "retrying"], "retrying"),
    (["delivered", "failed"], "failed"),
    (["failed", "delivered"], "failed"),
    (["delivered", "fired"], "fired"),
    (["retrying", "failed"], "failed"),
    (["filtered", "fired", "delivered"], "fired"),
    # no decision: the config was added after the conversion's events
    ([], "none"),
]


@pytest.mark.parametrize(("marks", "summary"), CASES)
def test_a_configs_summary_over_a_conversions_events(marks: list[str], summary: str) -> None:
    assert summary_of(marks) == summary


@pytest.mark.parametrize(
    ("attempt", "answer"),
    [
        (FailedAttempt(1, "all events", 500, "HTTP 500: only a 2xx answer counts"), "HTTP 500"),
        (
            FailedAttempt(2, "all events", None, "connection refused; retry in 10 s"),
            "connection refused",
        ),
        (FailedAttempt(3, "all events", None, None), "no answer"),
    ],
)
def test_a_failed_attempts_answer_in_a_few_words(attempt: FailedAttempt, answer: str) -> None:
    assert attempt.answer == answer
