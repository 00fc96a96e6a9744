"""The trace built once (``store.read.queries.trace``) and rendered three ways: plain lines,
a Markdown ticket with secrets masked (the CLI's --markdown and the API's
?format=markdown), and styled text for the dashboard, styled from the structure."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from listener.cli import cli
from listener.story import markdown, story
from store import db
from store.read import queries
from tests.helpers import BASE_CONFIG, Listener
from tui import format as fmt

SECRET = "s3cr3t-value-of-the-source"
SECRET_CONFIG = BASE_CONFIG.replace("payout={payout}", "payout={payout}&token=" + SECRET)


@pytest.fixture
def conn(pw: Listener) -> Iterator[sqlite3.Connection]:
    connection = db.connect(pw.store.path)
    yield connection
    connection.close()


async def traced(pw: Listener) -> str:
    """A click with a pending then approved deposit, delivered to the sink with a token in
    its URL, and a password among the postback's parameters."""
    await pw.configure(SECRET_CONFIG)
    clickid = await pw.click(ref_id="ext-1", sub1="FIRED delivered")
    await pw.postback(clickid=clickid, type="Deposit", status="2", sum="50", txid="T-1")
    await pw.postback(clickid=clickid, status="1", txid="T-1", password="hunter2hunter2")
    await pw.delivered(clickid)
    return clickid


async def test_the_plain_story_is_the_same_from_the_trace_and_from_its_json(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    clickid = await traced(pw)
    lines = story(queries.trace(conn, clickid))
    assert lines == story(await pw.trace(clickid))
    assert any(
        "FILTERED postback 'paid deposits' (s2s): status 'pending' is not one of: approved" in line
        for line in lines
    )


async def test_the_markdown_ticket_tells_the_story_with_secrets_masked(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    clickid = await traced(pw)
    ticket = markdown(queries.trace(conn, clickid), "T-1")
    assert ticket.startswith("# postwatch trace of `T-1`\n")
    for part in (
        "## Click",
        f"- click id: `{clickid}`",
        "## Requests received",
        "#### FILTERED: `paid deposits` (s2s)",
        "- status 'pending' is not one of: approved",
        "#### FIRED: `paid deposits` (s2s)",
        "**delivered**",
        "Answer:",
        "token=s3cr****",
        "password=hunt****",
    ):
        assert part in ticket, part
    assert SECRET not in ticket and "hunter2hunter2" not in ticket
    assert "/sink/propeller?visitor_id=ext-1&payout=50&token=s3cr****" in ticket


async def test_the_api_answers_markdown_when_asked(pw: Listener, conn: sqlite3.Connection) -> None:
    clickid = await traced(pw)
    async with pw.session.get(f"{pw.base}/api/trace/{clickid}?format=markdown") as answer:
        assert answer.status == 200
        assert answer.content_type == "text/markdown"
        assert await answer.text() == markdown(queries.trace(conn, clickid), clickid)
    status, body = await pw.get(f"/api/trace/{clickid}", format="xml")
    assert status == 400
    assert body == {"error": "format must be json or markdown, not 'xml'"}
    status, body = await pw.get(f"/api/trace/{clickid}", format="json")
    assert status == 200 and body == await pw.trace(clickid)


async def test_the_cli_prints_the_markdown_ticket(pw: Listener, conn: sqlite3.Connection) -> None:
    clickid = await traced(pw)
    path = str(pw.store.path)
    result = CliRunner().invoke(cli, ["trace", "ext-1", "--markdown", "--db", path])
    assert result.exit_code == 0, result.output
    assert result.output == markdown(queries.trace(conn, "ext-1"), "ext-1")
    unknown = CliRunner().invoke(cli, ["trace", "nobody", "--markdown", "--db", path])
    assert unknown.exit_code == 1
    assert "Nothing is known about this id" in unknown.output
    both = CliRunner().invoke(cli, ["trace", clickid, "--markdown", "--json", "--db", path])
    assert both.exit_code == 2
    assert "give one of them" in both.output


async def test_a_captured_backtick_fence_cannot_close_the_ticket_code_block(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    clickid = await pw.click(ref_id="ext-1")
    status, _ = await pw.post(
        "/postback", json={"clickid": clickid, "type": "Lead", "note": "``` # not a heading"}
    )
    assert status == 200
    ticket = markdown(queries.trace(conn, clickid), clickid)
    # the fence is longer than any backtick run inside
    assert '````\n{\n  "clickid": ' in ticket
    assert '"note": "``` # not a heading"\n}\n````' in ticket


async def test_the_dashboard_styles_the_trace_from_its_structure(
    pw: Listener, conn: sqlite3.Connection
) -> None:
    clickid = await traced(pw)
    found = queries.trace(conn, clickid)
    text = fmt.trace_text(found)
    assert text.plain == "\n".join(story(found))
    styled = {(text.plain[span.start : span.end], str(span.style)) for span in text.spans}
    assert ("FIRED", "bold green") in styled
    assert ("FILTERED", "bold magenta") in styled
    assert ("delivered", "green") in styled
    # A captured value that holds the same words is shown as sent, not styled: the styles
    # come from the pieces' roles, not from the words.
    params = next(line for line in text.plain.splitlines() if "params:" in line)
    start = text.plain.index(params)
    assert not [s for s in text.spans if start <= s.start < start + len(params)]
