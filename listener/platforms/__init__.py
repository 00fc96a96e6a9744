"""The ad-platform postback kinds: Meta Conversions API (``facebook``), Google Ads
uploadClickConversions (``google``), TikTok Events API (``tiktok``) and Microsoft UET
Conversions API (``bing``).

Each platform module is pure and declares one ``Platform`` (``listener.platforms.common``):
its settings (declared as plain data in ``store.platforms``, which the config parser reads),
the settings it requires, the click ids it attributes by, its request, its answer judge, its
secret preparer and its sink mimic. ``PLATFORMS`` lists them; ``listener.kinds`` dispatches to
them next to S2S, and ``listener.platforms.mimic`` answers for them in a sink.
"""

from __future__ import annotations

from listener.platforms import bing, facebook, google, tiktok
from listener.platforms.common import Platform

PLATFORMS: dict[str, Platform] = {
    platform.kind: platform
    for platform in (facebook.PLATFORM, google.PLATFORM, tiktok.PLATFORM, bing.PLATFORM)
}
