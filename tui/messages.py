"""What flows to the UI: data changes noticed in the database, header figures, demo state.

Data reaches widgets only through these messages (and the messages of the widgets that load
rows), so every change to the screen happens in a message handler on the UI's event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from store.read.model import FailedAttempt


@dataclass
class Stats:
    """The header's figures."""

    clicks: int = 0
    conversions: int = 0
    inbound: int = 0
    rejected: int = 0
    postbacks: int = 0
    rate: float = 0.0  # postbacks per second, over the last few seconds
    size: int = 0  # bytes on disk: the database file and its WAL
    failed: int = 0  # delivery attempts that ended failed (all time)
    retrying: int = 0  # deliveries waiting for an automatic retry now


@dataclass
class DataChanged(Message, bubble=False):
    """Something was committed to the database (by the listener, another process or us)."""

    version: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DataChanged)


@dataclass
class StatsUpdated(Message, bubble=False):
    stats: Stats = field(default_factory=Stats)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StatsUpdated)


@dataclass
class DeliveriesFailed(Message, bubble=False):
    """Delivery attempts ended failed since the last poll: how many, and the newest."""

    count: int
    newest: FailedAttempt | None


@dataclass
class DemoChanged(Message, bubble=False):
    """Demo traffic started or stopped."""

    running: bool


@dataclass
class WorkFailed(Message, bubble=False):
    """Background work failed; the app shows it and keeps running."""

    doing: str  # what it was doing, as a verb phrase: "read the delivery's detail"
    group: str
    error: BaseException
