"""One cursor record per feed for a poller that walks many feeds (the grade-change poller's courses).

FLOWS.md 2.2: "Keep one cursor per course (``tenant/canvas-grades/<course>``), not one large record".
The records live on ``edusync._cursors`` under ``<tenant>/<poller>/<feed>`` and are written as
``StateWrite``s, so each commits with the events of its window. The store is read lazily on the
first poll. Memory is trusted only while the ``seq`` the frame hands back is the one the poller
returned last; any other means the last transaction did not commit (or the process restarted),
and the records are read from Kafka again, exactly as the Illuminate snapshot pollers do.
"""

from __future__ import annotations

from typing import Any

import structlog

from worker.kafka.connection import Kafka
from worker.poller_frame import StateWrite
from worker.state_store import StateStore
from worker.topics import CURSORS

log = structlog.get_logger(__name__)


class FeedCursorStore:
    """Per-feed cursor records of one poller of one tenant."""

    def __init__(self, kafka: Kafka, tenant: str, poller: str) -> None:
        self.store = StateStore(kafka, CURSORS, prefix=f"{tenant}/{poller}/", tenant=tenant)
        self._loaded = False
        self._expected_seq: int | None = None

    def key(self, feed: str) -> str:
        """The record key of ``feed``."""
        return f"{self.store.prefix}{feed}"

    async def sync(self, committed_seq: int | None) -> None:
        """Read the records from Kafka unless memory matches what was committed last."""
        if self._loaded and committed_seq == self._expected_seq:
            return
        if self._loaded:
            log.warning("previous poll result was not committed; reloading the feed cursors",
                        prefix=self.store.prefix, committed_seq=committed_seq, expected_seq=self._expected_seq)
        await self.store.restore()
        self._loaded = True
        self._expected_seq = committed_seq

    def get(self, feed: str) -> Any:
        """The committed (or staged) record of ``feed``."""
        return self.store.get(self.key(feed))

    def write(self, feed: str, value: Any) -> StateWrite:
        """A write of ``feed``'s record that commits with the poll's events."""
        return StateWrite(self.store, self.key(feed), value)

    def returned(self, seq: int) -> None:
        """Note the ``seq`` of the cursor just handed to the frame."""
        self._expected_seq = seq
