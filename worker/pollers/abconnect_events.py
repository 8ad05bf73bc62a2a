"""The AB Connect events feed as change events on ``edusync.abconnect.events``.

Cursor: the last published ``seq``. Events are keyed by tenant and document, so every change
to one document (its delivery, its sections, its standards) lands in one partition in feed
order, and a removal is handled before anything that follows it.

A page whose seq jumps further than ``max_seq_jump`` past the one before (the cursor, or the
previous event) is refused as implausible: one hostile or corrupt event must not move the
cursor past everything that will ever come.
"""

from __future__ import annotations

from typing import Any

from schemas.abconnect import OTHER_CHANGED, TYPE_BY_TARGET, ABConnectChangeV1, AffectedPropertyV1
from schemas.envelope import CloudEvent, make_event
from worker.clients.abconnect import ABConnectClient
from worker.clients.abconnect_models import SYSTEM, ABEvent
from worker.clients.errors import ImplausibleDataError
from worker.poller_frame import Outbound, PollResult
from worker.topics import ABCONNECT_EVENTS

POLLER_NAME = "abconnect.events"


def event_subject(tenant: str, event: ABEvent) -> str:
    """The entity key: the document when the event names one, else the standard or the event."""
    if event.document_guid:
        return f"{tenant}/document/{event.document_guid.lower()}"
    if event.standard_guid:
        return f"{tenant}/standard/{event.standard_guid.lower()}"
    return f"{tenant}/event/{event.id}"


class ABConnectEventsPoller:
    """Reads one page (up to 100 events) after the cursor's ``seq`` per poll."""

    name = POLLER_NAME

    def __init__(
        self, tenant: str, partner_id: str, client: ABConnectClient, *, start_seq: int = 0,
        max_seq_jump: int = 1_000_000,
    ) -> None:
        self.tenant = tenant
        self.partner_id = partner_id
        self.client = client
        self.start_seq = start_seq
        self.max_seq_jump = max_seq_jump
        self.source = f"abconnect:partner/{partner_id}"

    def _seq(self, cursor: Any) -> int:
        if cursor is None:
            return self.start_seq
        return int(cursor["seq"])

    async def poll(self, cursor: Any) -> PollResult:
        """Fetch the next page; the new cursor is the last seq on it."""
        after = self._seq(cursor)
        page = await self.client.events(after_seq=after)
        self._check_jumps(after, page.events, first_poll=cursor is None)
        outbound = [Outbound(ABCONNECT_EVENTS, self._event(e)) for e in page.events]
        last = page.last_seq if page.last_seq is not None else after
        newest = page.events[-1].date_utc if page.events else None
        return PollResult(events=outbound, cursor={"seq": last}, more=page.has_more, newest_time=newest)

    def _check_jumps(self, after: int, events: list[ABEvent], *, first_poll: bool) -> None:
        previous = None if first_poll else after  # the feed may start anywhere on the first poll
        for event in events:
            if previous is not None and event.seq - previous > self.max_seq_jump:
                raise ImplausibleDataError(
                    SYSTEM, f"events: seq jumps from {previous} to {event.seq} (event {event.id}), more than "
                    f"max_seq_jump={self.max_seq_jump}; cursor left at {after}")
            previous = event.seq

    def _event(self, event: ABEvent) -> CloudEvent:
        payload = ABConnectChangeV1(
            partner_id=self.partner_id, event_id=event.id, seq=event.seq, date_utc=event.date_utc,
            change_type=event.change_type, target=event.target, document_guid=event.document_guid,
            section_guid=event.section_guid, standard_guid=event.standard_guid,
            standard_relationship=event.standard_relationship,
            affected_properties=[AffectedPropertyV1(**p.model_dump()) for p in event.affected_properties],
        )
        return make_event(
            tenant=self.tenant, source=self.source, type=TYPE_BY_TARGET.get(event.target, OTHER_CHANGED),
            subject=event_subject(self.tenant, event), version=str(event.seq), data=payload,
            time=event.date_utc, upstreamcursor=str(event.seq),
        )
