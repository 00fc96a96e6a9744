"""What the dashboard says when deliveries fail: the first failure after a quiet spell by
name ("Delivery #812 to 'traffic source' failed: HTTP 500"), and the ones that follow it
within ``QUIET`` seconds together, once, when the spell ends ("3 more deliveries failed"), so
that a target down under a flood of postbacks is one notification, not a thousand."""

from __future__ import annotations

import math

from store.read.model import FailedAttempt

QUIET = 10.0  # seconds after a notification during which further failures are only counted


def failed_text(attempt: FailedAttempt) -> str:
    """One failure in a sentence: the attempt, its postback config and the answer."""
    return f"Delivery #{attempt.id} to '{attempt.postback}' failed: {attempt.answer}"


def more_text(count: int) -> str:
    return f"{count} more delivery failed" if count == 1 else f"{count} more deliveries failed"


class FailureNotices:
    """Turns failures as they are noticed into the few sentences to show (``failed``; then
    ``due`` once ``wait`` has passed, for the failures held meanwhile)."""

    def __init__(self, quiet: float = QUIET) -> None:
        self.quiet = quiet
        self.held = 0  # failures noticed since the last sentence, not told yet
        self._said_at = -math.inf

    def failed(self, count: int, newest: FailedAttempt | None, now: float) -> str | None:
        """``count`` new failures, ``newest`` the latest: the sentence to show now, or None
        when they are held for ``due``."""
        if count <= 0:
            return None
        if self.held or now - self._said_at < self.quiet or newest is None:
            self.held += count
            return None
        self._said_at = now
        text = failed_text(newest)
        return text if count == 1 else f"{text} ({more_text(count - 1)})"

    def wait(self, now: float) -> float:
        """Seconds until the held failures are due (0: now)."""
        return max(0.0, self._said_at + self.quiet - now)

    def due(self, now: float) -> str | None:
        """The sentence for the failures held, once the quiet spell is over; else None."""
        if not self.held or self.wait(now) > 0:
            return None
        text = more_text(self.held)
        self.held = 0
        self._said_at = now
        return text
