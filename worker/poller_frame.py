"""The generic poller loop a concrete poller plugs into.

read cursor -> fetch -> publish events and new cursor in ONE transaction -> sleep -> repeat.
A failed fetch publishes nothing and leaves the cursor where it was; a failed
transaction leaves both unchanged, so no event is lost and none is published twice.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from schemas.envelope import CloudEvent
from worker.backoff import Backoff
from worker.clients.errors import UpstreamError
from worker.kafka.producer import TransactionalProducer
from worker.metrics import COMPONENT_UP, CURSOR_LAG, EVENTS_PUBLISHED, POLL_DURATION, POLL_ERRORS
from worker.shutdown import StopToken
from worker.state_store import StateStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outbound:
    """One event and the topic it goes to."""

    topic: str
    event: CloudEvent


@dataclass(frozen=True)
class StateWrite:
    """A state-store write that must commit with the events (snapshot hashes, for example)."""

    store: StateStore
    key: str
    value: Any


@dataclass
class PollResult:
    """What one poll produced: the events, the cursor that covers them, and whether to poll
    again at once (``more``) rather than after the interval."""

    events: list[Outbound]
    cursor: Any
    more: bool = False
    newest_time: datetime | None = None
    state: list[StateWrite] = field(default_factory=list)


class Poller(Protocol):
    """A change signal of one tenant. ``poll`` must not have side effects beyond reading
    upstream: everything it wants kept goes into the returned ``PollResult``."""

    name: str
    tenant: str

    async def poll(self, cursor: Any) -> PollResult: ...


def idle_interval(interval: float, quiet_polls: int) -> float:
    """The wait before the next poll: doubles with each empty poll, up to 4x the interval.
    An idle poller thus spends a quarter of the upstream budget it would at a fixed pace
    (AB Connect's poller and handler share one account's 5 requests/s)."""
    return interval * float(min(4, 2 ** max(0, quiet_polls - 1)))


def cursor_key(tenant: str, poller: str) -> str:
    """The key of a poller's cursor in ``edusync._cursors``."""
    return f"{tenant}/{poller}"


class PollerRunner:
    """Runs one ``Poller`` until stopped, committing events and cursor atomically."""

    def __init__(
        self, poller: Poller, producer: TransactionalProducer, cursors: StateStore, *,
        interval: float = 5.0, backoff: Backoff | None = None, idle_backoff: bool = False,
    ) -> None:
        self.poller = poller
        self.producer = producer
        self.cursors = cursors
        self.interval = interval
        self.idle_backoff = idle_backoff
        self.backoff = backoff or Backoff(base=0.5, cap=60.0)
        self.key = cursor_key(poller.tenant, poller.name)
        self._labels = (poller.tenant, poller.name)

    async def run_once(self) -> PollResult:
        """One poll and its transaction. Upstream errors propagate with nothing published."""
        started = time.monotonic()
        result = await self.poller.poll(self.cursors.get(self.key))
        async with self.producer.transaction() as txn:
            for out in result.events:
                await txn.send_event(out.topic, out.event)
            for write in result.state:
                await write.store.put(txn, write.key, write.value)
            await self.cursors.put(txn, self.key, result.cursor)
        for topic, count in Counter(out.topic for out in result.events).items():
            EVENTS_PUBLISHED.labels(*self._labels, topic).inc(count)
        POLL_DURATION.labels(*self._labels).observe(time.monotonic() - started)
        if result.newest_time is not None:
            CURSOR_LAG.labels(*self._labels).set(
                max(0.0, (datetime.now(UTC) - result.newest_time).total_seconds())
            )
        elif not result.more:
            CURSOR_LAG.labels(*self._labels).set(0.0)
        return result

    async def run(self, stop: StopToken) -> None:
        """Poll until ``stop``; upstream failures back off and retry from the same cursor."""
        component = f"poller:{self.key}"
        COMPONENT_UP.labels(component).set(1)
        failures = 0
        quiet = 0
        try:
            while not stop.stopping:
                try:
                    result = await self.run_once()
                except UpstreamError as exc:
                    failures += 1
                    POLL_ERRORS.labels(*self._labels, type(exc).__name__).inc()
                    delay = self.backoff.delay(failures)
                    log.warning("poll failed; cursor not moved", poller=self.poller.name,
                                tenant=self.poller.tenant, error=str(exc), retry_in=round(delay, 2))
                    await stop.sleep(delay)
                    continue
                failures = 0
                if result.events:
                    quiet = 0
                    log.info("published", poller=self.poller.name, tenant=self.poller.tenant,
                             events=len(result.events), cursor=result.cursor)
                elif not result.more and self.idle_backoff:
                    quiet += 1  # a whole cycle with nothing new: wait longer next time
                if not result.more:
                    await stop.sleep(idle_interval(self.interval, quiet))
        finally:
            COMPONENT_UP.labels(component).set(0)
