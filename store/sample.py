"""The sample workspace a new database gets when it is given no config."""

from __future__ import annotations

import re
import sqlite3

from store.records import Campaign, OfferSource, PostbackConfig, Settings, TrafficSource, Workspace
from store.workspace import update_postback_url

SAMPLE_TRAFFIC = "Sample Traffic"
SINK_QUERY = "?visitor={external_id}&event={type}&status={status}&payout={payout}"


def sample_url(port: int) -> str:
    """The sample traffic source's postback URL: the built-in sink of the listener on
    ``port``."""
    return f"http://127.0.0.1:{port}/sink/sample-traffic{SINK_QUERY}"


def follow_port(conn: sqlite3.Connection, port: int) -> bool:
    """Point the sample traffic source at the sink of ``port`` when it still posts, as made,
    to the sink of another port (a database served on a new port at each start, as
    ``--port 0`` does); True when it moved. A URL the user changed is left as it is."""
    row = conn.execute(
        "SELECT postback_url FROM traffic_sources WHERE name = ?", (SAMPLE_TRAFFIC,)
    ).fetchone()
    pattern = r"http://127\.0\.0\.1:(\d+)/sink/sample-traffic" + re.escape(SINK_QUERY)
    made = None if row is None else re.fullmatch(pattern, row[0] or "")
    if made is None or int(made.group(1)) == port:
        return False
    update_postback_url(conn, SAMPLE_TRAFFIC, sample_url(port))
    return True


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
                name=SAMPLE_TRAFFIC,
                click_id_param="ref_id",
                postback_url=sample_url(port),
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
