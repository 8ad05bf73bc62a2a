"""What each poller last committed and last failed with, for the ops port's ``/status``.

Pollers write here as they commit (the cursor is the one they just published with their events)
and as they fail; ``/status`` reads it. One board per process, like the Prometheus registry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass
class PollerProgress:
    """One poller's cursor, how far behind upstream it is, and its latest success and failure."""

    cursor: Any = None
    lag_seconds: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None


class StatusBoard:
    """Poller progress by ``tenant/poller``."""

    def __init__(self) -> None:
        self.pollers: dict[str, PollerProgress] = {}

    def started(self, key: str, cursor: Any) -> None:
        """A poller started from ``cursor`` (the restored one)."""
        self.pollers.setdefault(key, PollerProgress()).cursor = cursor

    def committed(self, key: str, cursor: Any, lag_seconds: float | None) -> None:
        """A poll's transaction committed ``cursor``; ``lag_seconds`` if the poll knows it."""
        progress = self.pollers.setdefault(key, PollerProgress())
        progress.cursor, progress.last_success = cursor, time.time()
        if lag_seconds is not None:
            progress.lag_seconds = lag_seconds

    def failed(self, key: str, error: str) -> None:
        """A poll failed with ``error``; the cursor stayed where it was."""
        progress = self.pollers.setdefault(key, PollerProgress())
        progress.last_error, progress.last_error_at = error, time.time()

    def forget(self, key: str) -> None:
        """The poller no longer runs here (its tenant moved to another replica)."""
        self.pollers.pop(key, None)


BOARD = StatusBoard()
