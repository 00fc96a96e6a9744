"""Synthetic traffic for demos: clicks, then postbacks of every kind a network sends (leads,
pending and approved deposits, declines, a mistyped type, an unknown click), at a set rate,
through real HTTP to a running listener."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp


@dataclass
class DemoStats:
    clicks: int = 0
    postbacks: int = 0
    errors: int = 0
    reached: int = 0  # clicks the listener answered with a click id
    problem: str = ""  # why the last request failed or was refused, in plain words


def _postbacks(clickid: str, rng: random.Random) -> list[dict[str, str]]:
    """The postbacks one click leads to."""
    roll = rng.random()
    lead = {"clickid": clickid, "type": "Lead", "status": "approved", "sum": "0"}
    txid = "T" + secrets.token_hex(4)
    payout = f"{rng.choice([25, 50, 75, 100, 150])}"
    if roll < 0.45:
        return [lead]
    if roll < 0.75:  # a deposit that is first pending, then approved
        return [
            lead,
            {"clickid": clickid, "type": "Deposit", "status": "2", "sum": payout, "txid": txid},
            {"clickid": clickid, "type": "Deposit", "status": "1", "txid": txid},
        ]
    if roll < 0.85:
        return [{"clickid": clickid, "type": "Deposit", "status": "3", "sum": payout}]
    if roll < 0.93:  # a network that spells the type its own way
        return [{"clickid": clickid, "type": "deposit", "status": "1", "sum": payout}]
    return [{"clickid": "unknown-" + secrets.token_hex(3), "type": "Lead"}]


async def run_demo(
    base_url: str,
    *,
    campaign: str = "sample",
    rate: float = 2.0,
    count: int | None = None,
    seed: int | None = None,
    on_event: Callable[[DemoStats], None] | None = None,
) -> DemoStats:
    """Send ``count`` clicks (forever when None), about ``rate`` requests a second, each
    followed by its postbacks. Stops when cancelled."""
    rng = random.Random(seed)
    stats = DemoStats()
    pause = 1.0 / rate if rate > 0 else 0.0
    async with aiohttp.ClientSession(base_url) as session:

        async def send(path: str, params: dict[str, str]) -> dict[str, str] | None:
            try:
                async with session.get(path, params=params, allow_redirects=False) as response:
                    data = await response.json(content_type=None)
                    if response.status >= 400:
                        stats.problem = refused(path, response.status, data)
                    return data if isinstance(data, dict) else None
            except aiohttp.ClientConnectorError as error:
                stats.errors += 1
                code = error.os_error.errno
                why = os.strerror(code) if code else str(error)
                stats.problem = (
                    f"nothing is listening at {base_url} ({why}): is its listener running?"
                )
                return None
            except (aiohttp.ClientError, ValueError) as error:
                stats.errors += 1
                stats.problem = f"{base_url}{path} did not answer in JSON ({error})"
                return None
            finally:
                if on_event is not None:
                    on_event(stats)
                await asyncio.sleep(pause)

        sent = 0
        while count is None or sent < count:
            sent += 1
            params = {"ref_id": "ext" + secrets.token_hex(4), "sub1": rng.choice(["fr", "de"])}
            if rng.random() < 0.5:
                params["fbclid"] = "IwAR" + secrets.token_hex(8)
            answer = await send(f"/click/{campaign}", params)
            stats.clicks += 1
            if not answer or "clickid" not in answer:
                if stats.reached == 0 and stats.problem:
                    break  # the first click found no listener or no campaign: say why
                continue
            stats.reached += 1
            for postback in _postbacks(answer["clickid"], rng):
                await send("/postback", postback)
                stats.postbacks += 1
    return stats


def refused(path: str, status: int, answer: object) -> str:
    """Why the listener refused a request, with its own words when it gave them."""
    said = answer.get("error") if isinstance(answer, dict) else None
    return f"the listener answered {status} to {path}" + (f": {said}" if said else "")
