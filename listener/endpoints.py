"""The listener's endpoints as a person types them, for the answer to a wrong path or method."""

from __future__ import annotations

import difflib

from listener.parsing import Rejection

# The endpoints a mistyped path is matched against, as the README names them.
ENDPOINTS = {"/postback": "/postback", "/click": "/click/{campaign_key}", "/sink": "/sink/{name}"}
_USAGE = "conversions go to /postback?clickid=..., clicks to /click/{campaign_key}"


def _nearest(path: str) -> str | None:
    """The endpoint a mistyped path was probably meant for: ``/Postback``, ``/postback/``,
    ``/postbacks``, ``/click`` (no campaign key)."""
    first = "/" + path.lower().strip("/").split("/")[0]
    close = difflib.get_close_matches(first, ENDPOINTS, n=1, cutoff=0.6)
    return ENDPOINTS[close[0]] if close else None


def wrong_way(method: str, path: str, allowed: set[str]) -> Rejection:
    """Why a request that no endpoint takes is refused: 405 naming the methods when the path
    is right (``allowed`` is what it takes), else 404 naming the endpoint it was probably meant
    for."""
    if allowed:
        methods = " or ".join(sorted(allowed))
        return Rejection(405, f"{path} does not take {method}: use {methods} ({_USAGE})")
    if path.startswith("/api/"):
        return Rejection(404, f"no API endpoint is at {path}: the README lists them")
    nearest = _nearest(path)
    hint = f"did you mean {nearest}? " if nearest else ""
    return Rejection(404, f"nothing is at {path}: {hint}{_USAGE}")
