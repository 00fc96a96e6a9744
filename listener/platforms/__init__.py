"""The ad-platform postback kinds: Meta Conversions API (``facebook``), Google Ads
uploadClickConversions (``google``), TikTok Events API (``tiktok``) and Microsoft UET
Conversions API (``bing``).

Each platform module is pure: ``build`` (conversion in, request out, secrets masked),
``judge`` (the platform's answer in, error sentence or None out) and ``prepare`` (the stored
attempt in, the attempt with the real secrets out, just before sending). ``listener.kinds``
registers them next to S2S.
"""

from __future__ import annotations

from collections.abc import Callable

from listener.outbound import Built, Context
from listener.platforms import bing, facebook, google, tiktok
from store.records import Attempt

BUILDERS: dict[str, Callable[[Context], Built]] = {
    "facebook": facebook.build,
    "google": google.build,
    "tiktok": tiktok.build,
    "bing": bing.build,
}
JUDGES: dict[str, Callable[[Attempt, int, str], str | None]] = {
    "facebook": facebook.judge,
    "google": google.judge,
    "tiktok": tiktok.judge,
    "bing": bing.judge,
}
PREPARERS: dict[str, Callable[[Attempt], Attempt]] = {
    "facebook": facebook.prepare,
    "google": google.prepare,
    "tiktok": tiktok.prepare,
    "bing": bing.prepare,
}
