"""Counts in sentences: ``1 click``, ``2 clicks``."""

from __future__ import annotations


def plural(count: int, one: str, many: str) -> str:
    """``1 failed delivery``, ``2 failed deliveries``."""
    return f"{count:,} {one if count == 1 else many}"
