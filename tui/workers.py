"""What the dashboard does when background work fails: it says so and keeps running.

Textual's default is to quit the whole app when a worker raises. Every worker here is started
with ``exit_on_error=False`` instead, and its failure arrives as a ``Worker.StateChanged``
message. That message goes to the node that started the worker and does not bubble, so each
node that starts workers hands it on with ``report_failure``, and the app shows it."""

from __future__ import annotations

import sqlite3

from textual.message_pump import MessagePump
from textual.worker import Worker, WorkerState

from tui.messages import WorkFailed


def report_failure(node: MessagePump, event: Worker.StateChanged) -> None:
    """Tell the app that a worker of ``node`` failed (call from its ``on_worker_state_changed``)."""
    worker = event.worker
    if event.state == WorkerState.ERROR and worker.error is not None:
        node.app.post_message(WorkFailed(worker.name, worker.group, worker.error))


def describe(error: BaseException) -> str:
    """An error in plain words: its own message, and what kind of error when that is bare."""
    text = str(error).strip()
    if isinstance(error, sqlite3.Error):
        return f"the database says: {text}" if text else "the database failed"
    return text or type(error).__name__


def failure_message(doing: str, error: BaseException) -> str:
    """The notification's line: what the dashboard was doing, and why it could not."""
    return f"Could not {doing or 'finish background work'}: {describe(error)}"
