"""A cached read of the configuration for the writer's hot path.

Every postback needs its campaign, both sources, the postback configs, the known types and the
settings. Reading them costs more than the rest of the postback, and they rarely change, so
the writer keeps one snapshot and reloads it only when ``config_version`` moved (triggers bump
it on every change to the configuration, from this process or another one). It looks once per
batch, before the batch's jobs (``Store.before_each_batch``): a change applies from the next
batch on, a few milliseconds later.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from store import workspace
from store.records import Campaign, OfferSource, Settings, TrafficSource


@dataclass(frozen=True)
class CampaignSetup:
    """A campaign with its postback configs and both of its sources."""

    campaign: Campaign
    offer_source: OfferSource
    traffic_source: TrafficSource


@dataclass(frozen=True)
class Snapshot:
    version: int
    settings: Settings
    conversion_types: list[str]
    campaigns: dict[int, CampaignSetup]
    campaign_ids: dict[str, int]  # key -> id

    def campaign(self, key: str) -> CampaignSetup | None:
        campaign_id = self.campaign_ids.get(key)
        return None if campaign_id is None else self.campaigns[campaign_id]


def config_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT n FROM config_version").fetchone()[0])


def load(conn: sqlite3.Connection) -> Snapshot:
    version = config_version(conn)
    offer_sources = {source.name: source for source in workspace.offer_sources(conn)}
    traffic_sources = {source.name: source for source in workspace.traffic_sources(conn)}
    campaigns = {
        campaign.id: CampaignSetup(
            campaign, offer_sources[campaign.offer_source], traffic_sources[campaign.traffic_source]
        )
        for campaign in workspace.campaigns(conn)
        if campaign.id is not None
    }
    return Snapshot(
        version=version,
        settings=workspace.load_settings(conn),
        conversion_types=workspace.conversion_types(conn),
        campaigns=campaigns,
        campaign_ids={setup.campaign.key: campaign_id for campaign_id, setup in campaigns.items()},
    )


class SnapshotCache:
    """The configuration snapshot of one database, reloaded when it changed."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Reload the snapshot if the configuration changed since it was read. A failure is
        left to the jobs that need the snapshot (``get`` tries again and raises), so that the
        batch's other jobs, such as storing a rejected request, still run."""
        try:
            if self._snapshot is None or self._snapshot.version != config_version(conn):
                self._snapshot = load(conn)
        except Exception:
            self._snapshot = None

    def get(self, conn: sqlite3.Connection) -> Snapshot:
        """The snapshot as of the last refresh (the first call reads it)."""
        if self._snapshot is None:
            self._snapshot = load(conn)
        return self._snapshot
