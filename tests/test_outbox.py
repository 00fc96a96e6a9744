"""The outbox's pure parts as tables: the retry schedule, Retry-After, the lease rule, the
target host, the URL as sent and the masking of secrets."""

from __future__ import annotations

import email.utils
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from listener import kinds
from listener.delivery import (
    RETRY_AFTER_CAP,
    next_step,
    retry_after_seconds,
    target_host,
    wire_url,
)
from store.db import connect
from store.events import OutboxLease, current_lease, lease_is_free, release_lease, take_lease
from store.records import Attempt
from store.schema import migrate

NOW = 1_800_000_000.0
SCHEDULE = [10.0, 60.0, 300.0]
HTTP_DATE_IN_2_MIN = email.utils.formatdate(NOW + 120, usegmt=True)
HTTP_DATE_PAST = email.utils.formatdate(NOW - 3600, usegmt=True)


@pytest.mark.parametrize(
    ("number", "error", "status", "retry_after", "expected"),
    [
        (1, None, 200, None, ("delivered", None)),
        (3, None, 204, "120", ("delivered", None)),  # delivered: Retry-After means nothing
        (1, "HTTP 500", 500, None, ("retrying", NOW + 10)),
        (2, "timeout", None, None, ("retrying", NOW + 60)),
        (3, "HTTP 500", 500, None, ("retrying", NOW + 300)),
        (4, "HTTP 500", 500, None, ("failed", None)),  # the schedule ran out
        (1, "HTTP 503", 503, "120", ("retrying", NOW + 120)),  # the target's wait wins
        (1, "HTTP 429", 429, "2", ("retrying", NOW + 2)),  # shorter than the schedule too
        (1, "HTTP 429", 429, HTTP_DATE_IN_2_MIN, ("retrying", NOW + 120)),
        (1, "HTTP 429", 429, "0", ("retrying", NOW + 1)),  # floor: 1 s
        (1, "HTTP 429", 429, HTTP_DATE_PAST, ("retrying", NOW + 1)),
        (1, "HTTP 503", 503, "999999", ("retrying", NOW + RETRY_AFTER_CAP)),  # cap: 6 h
        (1, "HTTP 503", 503, "soon", ("retrying", NOW + 10)),  # unreadable: the schedule
        (1, "HTTP 500", 500, "120", ("retrying", NOW + 10)),  # only 429 and 503 are obeyed
        (4, "HTTP 503", 503, "5", ("failed", None)),  # Retry-After uses up a step too
    ],
)
def test_next_step(
    number: int,
    error: str | None,
    status: int | None,
    retry_after: str | None,
    expected: tuple[str, float | None],
) -> None:
    got = next_step(
        number, SCHEDULE, error=error, http_status=status, retry_after=retry_after, now=NOW
    )
    assert got[0] == expected[0]
    if expected[1] is None:
        assert got[1] is None
    else:
        assert got[1] == pytest.approx(expected[1], abs=0.01)


def test_a_resend_has_no_schedule_and_fails_on_its_one_error() -> None:
    assert next_step(1, [], error="HTTP 500", http_status=500, retry_after=None, now=NOW) == (
        "failed",
        None,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("  7 ", 7.0), ("1.5", 1.5), ("-3", 1.0), ("nan", None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value, NOW) == expected


HOST = "box"
LEASE = OutboxLease("other", 4242, HOST, NOW - 2)


@pytest.mark.parametrize(
    ("lease", "holder", "alive", "free"),
    [
        (None, "me", True, True),  # nobody delivers
        (LEASE, "other", True, True),  # its own: renewed
        (LEASE, "me", True, False),  # held and renewed 2 s ago
        (OutboxLease("other", 4242, HOST, NOW - 16), "me", True, True),  # stale after 15 s
        (LEASE, "me", False, True),  # its process is gone (killed): at once
        (OutboxLease("other", 4242, "elsewhere", NOW - 2), "me", False, False),
    ],
)
def test_lease_is_free(lease: OutboxLease | None, holder: str, alive: bool, free: bool) -> None:
    assert (
        lease_is_free(lease, holder=holder, host=HOST, now=NOW, stale_after=15.0, alive=alive)
        is free
    )


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:9000/pb?x=1", "127.0.0.1:9000"),
        ("http://Example.com/pb", "example.com:80"),
        ("https://graph.facebook.com/v24.0/1/events", "graph.facebook.com:443"),
    ],
)
def test_target_host(url: str, host: str) -> None:
    assert target_host(url) == host


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://h/pb?a=x%2Fy%3Az%40w%2Cv%27u&b=%2F", "/pb?a=x%2Fy%3Az%40w%2Cv%27u&b=%2F"),
        ("http://h/p%2Fq?a=1+2", "/p%2Fq?a=1+2"),
        ("http://h/pb?a=b c&d=é", "/pb?a=b%20c&d=%C3%A9"),  # not URL characters: encoded
    ],
)
def test_the_url_is_sent_as_recorded(url: str, sent: str) -> None:
    assert wire_url(url).raw_path_qs == sent


def _attempt(url: str, platform: dict[str, object]) -> Attempt:
    return Attempt(
        id=1,
        decision_id=1,
        attempt=1,
        resend_of=None,
        kind="facebook",
        method="POST",
        url=url,
        headers={},
        body="",
        success_body="",
        failure_body="",
        platform=dict(platform),
    )


def test_secrets_are_masked_in_any_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_TEST_DEV", "DEVtoken/ABC+DEF")
    wire = _attempt(
        "http://h/events?access_token=EAABsecretTOKEN0123&token=s2sTOKENvalue",
        {"access_token": "EAABsecretTOKEN0123", "developer_token": "env:PW_TEST_DEV"},
    )
    secrets = kinds.secrets_of(wire)
    text = (
        "failed: http://h/events?access_token=EAABsecretTOKEN0123&token=s2sTOKENvalue; "
        "dev DEVtoken/ABC+DEF or DEVtoken%2FABC%2BDEF"
    )
    scrubbed = kinds.scrub(text, secrets)
    assert scrubbed == (
        "failed: http://h/events?access_token=EAAB****&token=s2sT****; dev DEVt**** or DEVt****"
    )
    # a masked token (as stored) is no secret; short values are left alone
    stored = _attempt("http://h/e?access_token=EAAB****&token=ab", {"access_token": ""})
    assert kinds.secrets_of(stored) == []


def test_the_lease_in_the_database(tmp_path: Path) -> None:
    conn = connect(tmp_path / "pw.db")
    migrate(conn)
    me = os.getpid()
    take = partial(take_lease, conn, pid=me, host="box", stale_after=15.0)
    assert take(holder="a", now=100.0).holder == "a"
    assert take(holder="b", now=110.0).holder == "a"  # renewed 10 s ago, its process lives
    assert take(holder="a", now=111.0).heartbeat == 111.0  # renewed
    assert take(holder="b", now=127.0).holder == "b"  # not renewed for 16 s: taken over
    release_lease(conn, "a")  # not a's any more: nothing happens
    assert current_lease(conn) == OutboxLease("b", me, "box", 127.0)
    release_lease(conn, "b")
    assert current_lease(conn) is None

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = int(gone.stdout)
    take_lease(conn, holder="killed", pid=dead, host="box", now=200.0, stale_after=15.0)
    assert take(holder="c", now=201.0).holder == "c"  # its process is gone: at once
