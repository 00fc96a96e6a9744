"""The typed keys of the listener application's state."""

from aiohttp import web

from listener.access import Access
from listener.delivery import Outbox
from store.db import Store
from store.records import Settings
from store.snapshot import SnapshotCache

STORE = web.AppKey("store", Store)
OUTBOX = web.AppKey("outbox", Outbox)
SETTINGS = web.AppKey("settings", Settings)
ACCESS = web.AppKey("access", Access)  # allow-list, trusted proxies, key: parsed once
TOKEN = web.AppKey("token", str)
SNAPSHOT = web.AppKey("snapshot", SnapshotCache)  # the writer's cached configuration
