"""Periodic full reconciles of the standards flow, as events in each document's partition.

Every ``interval`` seconds this poller asks AB Connect which documents it delivers (one request)
and publishes one ``edusync.abconnect.reconcile.requested.v1`` per document, keyed like the
document's other events so the handler reconciles it in order with them. The handler then
compares the whole document with Canvas, reading Canvas, and repairs what was changed there by
hand. The cursor is the time of the last round, so a restart does not reconcile early or twice.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from schemas.abconnect import RECONCILE_REQUESTED, ReconcileRequestedV1
from schemas.envelope import make_event
from worker.clients.abconnect import ABConnectClient
from worker.poller_frame import Outbound, PollResult
from worker.topics import ABCONNECT_EVENTS

POLLER_NAME = "abconnect.reconcile"


class StandardsReconcilePoller:
    """Requests a reconcile of every delivered document once per ``interval`` seconds."""

    name = POLLER_NAME

    def __init__(self, tenant: str, partner_id: str, client: ABConnectClient, *, interval: float,
                 clock: Any = time.time) -> None:
        self.tenant = tenant
        self.partner_id = partner_id
        self.client = client
        self.interval = interval
        self.source = f"abconnect:partner/{partner_id}"
        self._clock = clock

    async def poll(self, cursor: Any) -> PollResult:
        """Nothing until the interval since the last round has passed; then one event per document.
        The first round comes one interval after the flow first starts (the initial sync is fresh)."""
        now = self._clock()
        if cursor is None:
            return PollResult(events=[], cursor={"last_round": now})
        if now - float(cursor["last_round"]) < self.interval:
            return PollResult(events=[], cursor=cursor)
        at = datetime.fromtimestamp(now, UTC)
        events = [
            Outbound(ABCONNECT_EVENTS, make_event(
                tenant=self.tenant, source=self.source, type=RECONCILE_REQUESTED,
                subject=f"{self.tenant}/document/{guid.lower()}", version=f"reconcile@{int(now)}",
                data=ReconcileRequestedV1(partner_id=self.partner_id, document_guid=guid, requested_at=at),
                time=at, upstreamcursor=f"reconcile@{int(now)}",
            ))
            for guid in await self.client.document_guids()
        ]
        return PollResult(events=events, cursor={"last_round": now})
