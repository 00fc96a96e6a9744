"""Normalising and hashing user data the way each ad platform asks, before SHA-256.

A hash of a wrongly normalised value is still a valid hash: the platform accepts it and matches
nobody. So each platform's own rules are followed exactly, and tested against the examples the
platforms publish. Every function returns None for a value that cannot be normalised (empty,
not an email address, no digits), so that nothing meaningless is hashed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

Normaliser = Callable[[str], "str | None"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_SYMBOLS = re.compile(r"[\s\-().\/]")


def sha256(text: str) -> str:
    """SHA-256 of the UTF-8 text, as lowercase hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _hashed(normalised: str | None) -> str | None:
    return None if normalised is None else sha256(normalised)


def already_hashed(value: str) -> str | None:
    """A value that is already a SHA-256 hex digest, lowercased; None otherwise."""
    text = value.strip().lower()
    return text if _SHA256.match(text) else None


def _email(value: str) -> str | None:
    text = value.strip().lower()
    return text if _EMAIL.match(text) else None


def _digits(value: str) -> str | None:
    """The digits of a phone number with its country code, without '+' or leading zeros
    (an international '00' prefix included); None when anything but digits is left."""
    text = _PHONE_SYMBOLS.sub("", value.strip()).lstrip("+").lstrip("0")
    return text if text.isdigit() and 7 <= len(text) <= 15 else None


# -- Meta (Conversions API customer information parameters) ----------------------------------


def meta_email(value: str) -> str | None:
    """Meta ``em``: trimmed and lowercased."""
    return _email(value)


def meta_phone(value: str) -> str | None:
    """Meta ``ph``: digits only, with the country code, no '+' and no leading zeros."""
    return _digits(value)


# -- E.164 (Microsoft, TikTok, Google) -------------------------------------------------------


def e164_phone(value: str) -> str | None:
    """A phone number in E.164: '+', country code and number, digits only."""
    digits = _digits(value)
    return None if digits is None else "+" + digits


# -- Microsoft (UET Conversions API) ---------------------------------------------------------


def microsoft_email(value: str) -> str | None:
    """Microsoft ``em``: trimmed, dots and a '+alias' removed from the user part, lowercased."""
    text = _email(value)
    if text is None:
        return None
    user, _, domain = text.rpartition("@")
    user = user.split("+", 1)[0].replace(".", "")
    return f"{user}@{domain}" if user else None


# -- TikTok (Events API) ---------------------------------------------------------------------


def tiktok_email(value: str) -> str | None:
    """TikTok ``email``: trimmed and lowercased."""
    return _email(value)


# -- Google Ads (user identifiers) -----------------------------------------------------------


def google_email(value: str) -> str | None:
    """Google ``hashedEmail``: trimmed, lowercased, and for gmail.com / googlemail.com
    addresses the dots of the user part removed."""
    text = _email(value)
    if text is None:
        return None
    user, _, domain = text.rpartition("@")
    if domain in ("gmail.com", "googlemail.com"):
        user = user.replace(".", "")
    return f"{user}@{domain}" if user else None


def hashed(value: str, normalise: Normaliser) -> str | None:
    """SHA-256 of the value under a platform's normalisation; a value that is already a
    SHA-256 digest is kept as it is; None when the value cannot be normalised."""
    return already_hashed(value) or _hashed(normalise(value))
