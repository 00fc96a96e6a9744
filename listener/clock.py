"""The listener's one wall clock.

Every time the listener stores or logs (a request's arrival, an attempt's sending, when a retry
is due, the outbox lease) is read from one ``Clock`` handed to ``create_app``/``start`` and kept
in the application's state, so that a test can pass a clock it controls. Durations and
intervals (how long an attempt took, how often the poller runs) use the monotonic clocks, which
a wall clock must not drive.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

Clock = Callable[[], float]  # Unix seconds, as time.time gives them

SYSTEM: Clock = time.time

CLOCK: web.AppKey[Clock] = web.AppKey("clock")
