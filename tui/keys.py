"""Key bindings by id, for the config's ``[keys]`` table: which ids exist, and the words for
one that does not (with the known ids nearest to it, as a typo usually is).

Importing this module does not import Textual: ``postwatch config import`` gets
``binding_ids`` from the command line's context and calls it only when a file has ``[keys]``."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any


def binding_ids() -> frozenset[str]:
    """Every binding id of the dashboard: the app's, its screens' and their widgets'."""
    from textual.binding import Binding

    from tui.app import SCREENS, PostwatchApp
    from tui.widgets.rows import RowTable

    owners: list[Any] = [PostwatchApp, *SCREENS.values(), RowTable]
    return frozenset(
        binding.id
        for owner in owners
        for binding in owner.BINDINGS
        if isinstance(binding, Binding) and binding.id
    )


def flatten_keys(keys: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """The ``[keys]`` table as binding id -> keys. A TOML dotted key (``live.follow = "F"``)
    arrives as a nested table, so nested tables are joined back with dots."""
    flat: dict[str, str] = {}
    for name, value in keys.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten_keys(value, f"{key}."))
        elif isinstance(value, list):
            flat[key] = ",".join(str(item) for item in value)
        else:
            flat[key] = str(value)
    return flat


def unknown_ids(keymap: Iterable[str], known: frozenset[str]) -> list[str]:
    """The ids of ``keymap`` that name no binding, in the order given."""
    return [binding_id for binding_id in keymap if binding_id not in known]


def nearest(binding_id: str, known: frozenset[str]) -> list[str]:
    """The known ids closest to ``binding_id`` (at most three, closest first)."""
    return difflib.get_close_matches(binding_id, sorted(known), n=3, cutoff=0.6)


def unknown_binding(binding_id: str, known: frozenset[str]) -> str:
    """The words for an id that names no binding, with the nearest known ones."""
    near = nearest(binding_id, known)
    if near:
        hint = "nearest: " + ", ".join(near)
    else:
        scopes = sorted({known_id.split(".")[0] + ".*" for known_id in known})
        hint = f"ids start with {', '.join(scopes)}; the ? panel lists them"
    return f"unknown key binding id '{binding_id}' in [keys] ({hint})"


def line_of(text: str, binding_id: str) -> int | None:
    """The line of a config file's text where ``binding_id`` is given, for error messages."""
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines) if re.match(r"^\s*\[\s*keys\b", line)), None)
    if start is None:
        return None
    last = binding_id.rsplit(".", 1)[-1]
    for pattern in (re.escape(binding_id), re.escape(last)):
        for number in range(start, len(lines)):
            if re.match(rf'^\s*"?{pattern}"?\s*=', lines[number]):
                return number + 1
    return start + 1
