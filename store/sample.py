"""The sample workspace a new database gets when it is given no config."""

from __future__ import annotations

from store.records import Campaign, OfferSource, PostbackConfig, Settings, TrafficSource, Workspace


def sample_workspace(port: int = 8080) -> Workspace:
    """One offer source, one traffic source posting to the built-in sink, and one campaign
    with an unconditional and a conditional postback."""
    settings = Settings(port=port)
    settings.given = frozenset({"port"})  # the other settings (a stored token) stay
    return Workspace(
        conversion_types=["Lead", "Deposit"],
        settings=settings,
        offer_sources=[
            OfferSource(
                name="Sample Network",
                default_status="pending",
                duplicates="update",
                status_aliases={"1": "approved", "2": "pending", "3": "declined"},
            )
        ],
        traffic_sources=[
            TrafficSource(
                name="Sample Traffic",
                click_id_param="ref_id",
                postback_url=(
                    f"http://127.0.0.1:{port}/sink/sample-traffic"
                    "?visitor={external_id}&event={type}&status={status}&payout={payout}"
                ),
            )
        ],
        campaigns=[
            Campaign(
                key="sample",
                name="Sample Campaign",
                traffic_source="Sample Traffic",
                offer_source="Sample Network",
                postbacks=[
                    PostbackConfig(name="all events"),
                    PostbackConfig(
                        name="paid deposits",
                        conditional=True,
                        types=["Deposit"],
                        statuses=["approved"],
                    ),
                ],
            )
        ],
    )
