"""What a postback config of each ad-platform kind may hold (README, "Ad-platform postbacks"),
as plain data.

The config parser needs these settings and ``store`` must not import the listener, so they are
declared here, once; each platform module in ``listener.platforms`` names its declaration in
its ``Platform``, and a registry test fails when the two sides do not match.
"""

from __future__ import annotations

from dataclasses import dataclass

# Settings every ad-platform kind accepts.
COMMON = ("base_url", "event_names", "currency")


@dataclass(frozen=True)
class PlatformSettings:
    """The settings one ad-platform kind reads from its ``[[campaigns.postbacks]]`` table."""

    kind: str
    keys: tuple[str, ...]  # its own settings, besides COMMON
    secrets: tuple[str, ...] = ("access_token",)  # masked when stored, shown or exported

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every platform setting a postback config of this kind may give."""
        return (*self.keys, *COMMON)


FACEBOOK = PlatformSettings(
    "facebook", ("pixel_id", "access_token", "api_version", "test_event_code", "action_source")
)
GOOGLE = PlatformSettings(
    "google",
    (
        "customer_id",
        "conversion_action",
        "developer_token",
        "login_customer_id",
        "access_token",
        "api_version",
    ),
    secrets=("access_token", "developer_token"),
)
TIKTOK = PlatformSettings("tiktok", ("pixel_code", "access_token", "test_event_code"))
BING = PlatformSettings("bing", ("tag_id", "access_token"))

# Every ad-platform kind, in the order the config's error sentences list them.
SETTINGS: dict[str, PlatformSettings] = {p.kind: p for p in (FACEBOOK, GOOGLE, TIKTOK, BING)}
