"""`postwatch demo`, a real process sending to a real listener: it says why it reached nothing
and exits non-zero, and sends its traffic when it can."""

from __future__ import annotations

import asyncio
import sys

from tests.helpers import BASE_CONFIG, Listener, free_port


async def demo(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui",
        "demo",
        "--rate",
        "50",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_with_nothing_listening_the_demo_says_so_and_fails() -> None:
    code, out, err = await demo("--url", f"http://127.0.0.1:{free_port()}", "--count", "5")
    assert code == 1 and out == ""
    assert "the demo reached nothing: nothing is listening at http://127.0.0.1:" in err
    assert "(Connection refused): is its listener running?" in err and "--url" in err


async def test_an_unknown_campaign_is_named_with_the_listeners_answer(pw: Listener) -> None:
    await pw.configure(BASE_CONFIG)
    code, _, err = await demo("--url", pw.base, "--campaign", "nope", "--count", "5")
    assert code == 1
    assert "the demo reached nothing: the listener answered 404 to /click/nope" in err
    status, inbound = await pw.get("/api/inbound")
    assert status == 200 and len(inbound) == 1  # it stopped at the first refusal


async def test_a_demo_that_reaches_the_listener_sends_clicks_and_postbacks(pw: Listener) -> None:
    await pw.configure(BASE_CONFIG)
    code, out, err = await demo("--url", pw.base, "--campaign", "casino-fr", "--count", "3")
    assert code == 0, err
    assert out.startswith("sent 3 clicks and ")
    status, conversions = await pw.get("/api/conversions")
    assert status == 200 and conversions
