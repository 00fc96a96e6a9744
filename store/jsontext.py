"""JSON text of the values written on every request, without ``json.dumps``'s set-up.

``json.dumps`` makes a new C encoder on every call, which costs more than encoding the short
lists and dicts of a postback; the encoder here is made once. The text is the same as
``json.dumps``'s with its default options.
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any


def _refuse(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# None in a Python built without the C accelerator
_encode = c_make_encoder and c_make_encoder(
    None, _refuse, encode_basestring_ascii, None, ": ", ", ", False, False, True
)


# Half of the values written are empty (no warnings, no parameters): their text is known.
_EMPTY: dict[type, str] = {list: "[]", dict: "{}"}


def dumps(value: Any) -> str:
    """``json.dumps(value)`` for plain data (cycles are not checked)."""
    if not value and type(value) in _EMPTY:
        return _EMPTY[type(value)]
    if _encode is None:
        return json.dumps(value)
    return "".join(_encode(value, 0))
