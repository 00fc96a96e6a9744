"""The ad-platform postback kinds: Meta Conversions API (``facebook``), Google Ads
uploadClickConversions (``google``), TikTok Events API (``tiktok``) and Microsoft UET
Conversions API (``bing``).

Each kind that ``store.platforms`` declares (its settings, as plain data the config parser
reads) has a module here named after it, which declares one ``Platform``
(``listener.platforms.common``): those settings, the settings it requires, the click ids it
attributes by, its request, its answer judge, its secret preparer and its sink mimic. Each
module is pure. ``PLATFORMS`` holds them; ``listener.kinds`` dispatches to them next to S2S,
and ``listener.platforms.mimic`` answers for them in a sink.
"""

from __future__ import annotations

import importlib

from listener.platforms.common import Platform
from store.platforms import SETTINGS


def declared_platform(kind: str) -> Platform:
    """The ``PLATFORM`` of ``listener/platforms/{kind}.py``; ImportError, saying what to
    write, when that module is missing or declares none for this kind."""
    wanted = (
        f"store.platforms declares the kind '{kind}': listener/platforms/{kind}.py must declare "
        f"PLATFORM = Platform(settings=store.platforms.{kind.upper()}, ...)"
    )
    name = f"{__name__}.{kind}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as missing:
        if missing.name != name:
            raise
        raise ImportError(wanted) from missing
    platform = getattr(module, "PLATFORM", None)
    if not isinstance(platform, Platform) or platform.kind != kind:
        raise ImportError(wanted)
    return platform


# One module per declared kind, so adding a platform is its settings in store.platforms and
# its module here; nothing else lists the kinds.
PLATFORMS: dict[str, Platform] = {kind: declared_platform(kind) for kind in SETTINGS}
