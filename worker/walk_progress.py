"""Walk and initial-sync progress of snapshot pollers, read from their cursors into metrics.

The Illuminate snapshot and scores pollers keep their place in the cursor they commit
(``phase``, ``page``, ``num_pages``, ``completed_walks``); a walk of a large district takes minutes,
and the first one is the initial sync. Other pollers' cursors lack these keys and are ignored.
"""

from __future__ import annotations

from typing import Any

from worker.metrics import INITIAL_SYNC, WALK_PAGE, WALK_PAGES, WALKS_COMPLETED

_KEYS = ("phase", "page", "num_pages", "completed_walks")


def record_walk(tenant: str, poller: str, cursor: Any) -> None:
    """Set the walk gauges of one poller from the cursor it just committed (or restored)."""
    if not isinstance(cursor, dict) or not all(key in cursor for key in _KEYS):
        return
    walking = cursor["phase"] != "idle"
    completed = int(cursor["completed_walks"] or 0)
    WALK_PAGE.labels(tenant, poller).set(int(cursor["page"] or 0) if walking else 0)
    WALK_PAGES.labels(tenant, poller).set(int(cursor["num_pages"] or 0) if walking else 0)
    WALKS_COMPLETED.labels(tenant, poller).set(completed)
    INITIAL_SYNC.labels(tenant, poller).set(1 if completed == 0 else 0)
