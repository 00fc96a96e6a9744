"""The ids of the clicks attached to postbacks, as the listener's writer knows them: a Bloom
filter.

Under ``unknown_clicks = "attach:…"`` nearly every postback names a click id postwatch never
saw. Those ids are a network's and random, so they are indexed by blocks of sequence numbers
(schema step 19), where finding that an id is *not* there takes a seek in every block. The
filter tells it at once: an id it does not hold is in no block; one it holds (or a false
positive, 1 id in 1,000) is looked up.

The listener ``learn``s every attached id as it starts (under a second a million). Then, at
the start of each of the writer's transactions, which hold the database's write lock,
``refresh`` reads the attached clicks that any process added since the sequence number it
saw last (they are AUTOINCREMENT, never given twice); until the transaction ends no other
process adds one, and the clicks its own jobs attach are ``note``d. So the filter is trusted
from ``refresh`` to ``end`` only; a connection that never learnt reads the blocks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from operator import itemgetter

from rbloom import Bloom

FALSE_POSITIVES = 0.001  # of a full layer
FIRST_ROOM = 1 << 16  # ids the smallest layer takes; each new layer takes twice the last's


class _Layer:
    """A Bloom filter of a fixed room (rbloom's, hashing with the process's own seeded
    ``hash``: the filter lives in one process), and how many ids it holds."""

    def __init__(self, room: int) -> None:
        self.room = max(room, FIRST_ROOM)
        self.bloom = Bloom(self.room, FALSE_POSITIVES)
        self.held = 0

    def update(self, ids: Iterable[str], count: int) -> None:
        self.bloom.update(ids)
        self.held += count


class AttachedIds:
    """The attached click ids one writer connection has seen."""

    def __init__(self) -> None:
        self._layers: list[_Layer] = []
        self._noted: set[str] = set()  # attached in this transaction (read again at the next)
        self.seen = 0  # the highest sequence number read
        self.trusted = False

    def __len__(self) -> int:
        return sum(layer.held for layer in self._layers)

    def _add(self, click_id: str) -> None:
        layer = self._layers[-1]
        if layer.held >= layer.room:
            layer = _Layer(layer.room * 2)
            self._layers.append(layer)
        layer.update((click_id,), 1)

    def learn(self, conn: sqlite3.Connection) -> None:
        """Read every attached click's id (outside a transaction: those added after the
        first statement are the next ``refresh``'s)."""
        (top,) = conn.execute("SELECT coalesce(max(seq), 0) FROM clicks").fetchone()
        attached = "FROM clicks INDEXED BY clicks_attached WHERE inbound_id IS NULL AND seq <= ?"
        (count,) = conn.execute(f"SELECT count(*) {attached}", (top,)).fetchone()
        layer = _Layer(2 * count)  # half full: new ids have room before the next layer
        layer.update(map(itemgetter(0), conn.execute(f"SELECT id {attached}", (top,))), count)
        self._layers, self.seen = [layer], top

    def may_hold(self, click_id: str) -> bool:
        """False only when no attached click has this id; always True while not trusted."""
        if not self.trusted:
            return True
        return any(click_id in layer.bloom for layer in self._layers)

    def note(self, click_id: str) -> None:
        """A click this transaction attached."""
        if self.trusted:
            self._add(click_id)
            self._noted.add(click_id)

    def refresh(self, conn: sqlite3.Connection) -> None:
        """At the start of a write transaction: read the attached clicks added since."""
        if not self._layers:
            return  # never learnt: not trusted
        (top,) = conn.execute("SELECT coalesce(max(seq), 0) FROM clicks").fetchone()
        if top > self.seen:
            rows = conn.execute(
                "SELECT id FROM clicks WHERE seq > ? AND seq <= ? AND inbound_id IS NULL",
                (self.seen, top),
            )
            for (click_id,) in rows:
                if click_id not in self._noted:
                    self._add(click_id)
            self.seen = top
        self._noted.clear()
        self.trusted = True

    def end(self) -> None:
        """The transaction is over: trust nothing until the next refresh."""
        self.trusted = False
