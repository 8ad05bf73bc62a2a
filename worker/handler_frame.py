"""The generic handler loop a concrete handler plugs into.

consume (read_committed) -> handler reads the target, writes only the difference ->
ledger entries, dead letters and consumer offsets commit in ONE transaction per batch.
Transient failures retry with jittered backoff and never skip an event; permanent
failures go to ``edusync.dlq.<handler>`` with the reason, and the partition moves on.
A crash before the commit replays the batch; handlers read the target before writing,
so a replayed event is a no-op.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from schemas.dead_letter import DeadLetter, OriginalRecord
from schemas.envelope import CloudEvent, EnvelopeError
from worker.backoff import Backoff
from worker.clients.errors import PermanentUpstreamError, UpstreamError
from worker.kafka.errors import BrokerUnavailableError, require_broker
from worker.kafka.producer import TransactionalProducer
from worker.metrics import COMPONENT_UP, END_TO_END_LATENCY, HANDLER_EVENTS, Outcome
from worker.shutdown import StopToken
from worker.state_store import StateStore
from worker.topics import dlq_topic

log = structlog.get_logger(__name__)


class PermanentFailure(Exception):
    """Raised by a handler for an event that retrying cannot fix; it is dead-lettered."""


class TransientFailure(Exception):
    """Raised by a handler for a failure that may pass on retry."""


class Ledger:
    """A handler's view of ``edusync._ledger``: what it last wrote to each target entity.
    Writes are staged and commit with the batch's offsets."""

    def __init__(self, store: StateStore, handler: str) -> None:
        self._store = store
        self._prefix = f"{handler}/"

    def get(self, key: str) -> Any:
        """The entry for ``key`` (``target/entity``), or None."""
        return self._store.get(self._prefix + key)

    def put(self, key: str, value: Any) -> None:
        """Record what was written for ``key``; ``None`` forgets it."""
        self._store.stage(self._prefix + key, value)

    def items(self, prefix: str = "") -> list[tuple[str, Any]]:
        """Entries under ``prefix``, keys without the handler prefix."""
        n = len(self._prefix)
        return [(k[n:], v) for k, v in self._store.items(self._prefix + prefix)]


class Handler(Protocol):
    """Applies events from ``topics`` to a target. Returns the outcome, or raises
    ``TransientFailure``/``TransientUpstreamError`` to retry and ``PermanentFailure``/
    ``PermanentUpstreamError`` to dead-letter.

    A no-op must still bring the ledger up to what the target holds: after a crash between
    a write and its commit, the replay finds the write done and only the ledger behind."""

    name: str

    @property
    def topics(self) -> Sequence[str]:
        """The topics this handler consumes."""
        ...

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome: ...


@dataclass
class _DeadLetterOut:
    key: bytes | None
    value: bytes


@dataclass
class _Progress:
    """What a handler has done since its last commit."""

    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    dead: list[_DeadLetterOut] = field(default_factory=list)
    applied_times: list[datetime] = field(default_factory=list)
    tally: dict[Outcome, int] = field(default_factory=dict)
    count: int = 0
    started: float = field(default_factory=time.monotonic)

    def done(self, rec: ConsumerRecord[bytes, bytes], outcome: Outcome, event_time: datetime | None) -> None:
        """Record one processed event; its offset commits with the next transaction."""
        self.offsets[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
        self.tally[outcome] = self.tally.get(outcome, 0) + 1
        if outcome is Outcome.APPLIED and event_time is not None:
            self.applied_times.append(event_time)
        self.count += 1

    def age(self) -> float:
        """Seconds since this progress began."""
        return time.monotonic() - self.started


def _classify(exc: BaseException) -> str:
    """'transient' or 'permanent' for an exception raised while handling."""
    if isinstance(exc, PermanentFailure | PermanentUpstreamError | ValidationError | EnvelopeError):
        return "permanent"
    if isinstance(exc, TransientFailure | UpstreamError | TimeoutError | ConnectionError):
        return "transient"
    return "permanent"  # a bug: dead-letter it with the traceback rather than block the partition


class HandlerRunner:
    """Consumes a handler's topics in a consumer group and applies each event once."""

    def __init__(
        self, handler: Handler, *, bootstrap: str, producer: TransactionalProducer,
        ledger_store: StateStore, backoff: Backoff | None = None, max_records: int = 500,
        group_id: str | None = None, broker_patience: float = 60.0, commit_every: int = 500,
        commit_seconds: float = 5.0,
    ) -> None:
        self.handler = handler
        self.bootstrap = bootstrap
        self.producer = producer
        self.ledger_store = ledger_store
        self.ledger = Ledger(ledger_store, handler.name)
        self.backoff = backoff or Backoff(base=0.2, cap=30.0)
        self.max_records = max_records
        self.commit_every = commit_every
        self.commit_seconds = commit_seconds
        self.group_id = group_id or group_id_for(handler.name)
        self.broker_patience = broker_patience
        self.dlq = dlq_topic(handler.name)
        self.started = anyio.Event()

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            *self.handler.topics,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # A target can be slow; do not get thrown out of the group mid-batch.
            max_poll_interval_ms=600_000,
            client_id=f"edusync-{self.handler.name}",
        )

    async def run(self, stop: StopToken, *, until_caught_up: bool = False) -> None:
        """Consume until ``stop``; the in-flight event finishes and its batch commits first.
        With ``until_caught_up`` it also returns once every assigned partition is read to its end."""
        consumer = self._consumer()
        # start() waits forever for a broker that is not there; joining a group can take
        # several seconds even when it is, hence the floor.
        start_patience = max(30.0, self.broker_patience)
        try:
            with anyio.fail_after(start_patience):
                await consumer.start()
        except TimeoutError as exc:
            await _stop_quietly(consumer)
            raise BrokerUnavailableError(
                f"Kafka broker {self.bootstrap} unreachable: consumer group not joined in {start_patience:.0f}s"
            ) from exc
        component = f"handler:{self.handler.name}"
        COMPONENT_UP.labels(component).set(1)
        self.started.set()
        last_contact = time.monotonic()
        try:
            while not stop.stopping:
                batch = {}
                # getmany can block while the group has no coordinator (broker gone), so bound it.
                with anyio.move_on_after(5):
                    batch = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                if batch:
                    last_contact = time.monotonic()
                    await self._process_batch(batch, stop)
                elif until_caught_up and await _caught_up(consumer):
                    return
                elif time.monotonic() - last_contact > 10:
                    await self._check_broker(consumer)
                    last_contact = time.monotonic()
        finally:
            COMPONENT_UP.labels(component).set(0)
            await _stop_quietly(consumer)

    async def _check_broker(self, consumer: AIOKafkaConsumer) -> None:
        """An idle consumer cannot tell a quiet topic from a dead broker; ask for metadata."""
        await require_broker(consumer, self.bootstrap, self.broker_patience)

    async def _process_batch(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], stop: StopToken
    ) -> None:
        """Process a fetched batch, committing every ``commit_every`` events or ``commit_seconds``:
        a fast target commits once per fetch (each transaction costs milliseconds, bench/frames),
        a slow one still commits every few seconds and never nears the group's poll interval."""
        progress = _Progress()
        for records in batch.values():
            for rec in records:
                result = await self._process_one(rec, stop, progress.dead)
                if result is None:  # stop requested while retrying: leave it for the next run
                    break
                progress.done(rec, *result)
                if progress.count >= self.commit_every or progress.age() >= self.commit_seconds:
                    await self._commit(progress)
                    progress = _Progress()
                if stop.stopping:
                    break
            if stop.stopping:
                break
        await self._commit(progress)

    async def _commit(self, progress: _Progress) -> None:
        """Ledger entries, dead letters and offsets in one transaction; then the metrics."""
        if not progress.offsets:
            return
        async with self.producer.transaction() as txn:
            await self.ledger_store.flush(txn)
            for d in progress.dead:
                await txn.send(self.dlq, d.key or b"", d.value)
            await txn.send_offsets(progress.offsets, self.group_id)
        now = datetime.now(UTC)
        for outcome, n in progress.tally.items():
            HANDLER_EVENTS.labels(self.handler.name, outcome.value).inc(n)
        for t in progress.applied_times:
            END_TO_END_LATENCY.labels(self.handler.name).observe(max(0.0, (now - t).total_seconds()))

    async def _process_one(
        self, rec: ConsumerRecord[bytes, bytes], stop: StopToken, dead: list[_DeadLetterOut]
    ) -> tuple[Outcome, datetime | None] | None:
        attempts = 0
        event: CloudEvent | None = None
        while True:
            attempts += 1
            try:
                event = CloudEvent.from_bytes(rec.value)
                return await self.handler.handle(event, self.ledger), event.time
            except Exception as exc:  # classified below; nothing escapes unhandled
                if _classify(exc) == "permanent":
                    dead.append(self._dead_letter(rec, event, exc, attempts))
                    return Outcome.DEAD_LETTERED, None
                HANDLER_EVENTS.labels(self.handler.name, Outcome.RETRIED.value).inc()
                delay = self.backoff.delay(attempts - 1)
                log.warning("transient failure; will retry", handler=self.handler.name,
                            subject=event.subject if event else None, attempt=attempts,
                            error=str(exc), retry_in=round(delay, 2))
                if await stop.sleep(delay):
                    return None

    def _dead_letter(
        self, rec: ConsumerRecord[bytes, bytes], event: CloudEvent | None, exc: BaseException,
        attempts: int,
    ) -> _DeadLetterOut:
        reason = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, PermanentFailure | UpstreamError | ValidationError | EnvelopeError):
            reason += "\n" + "".join(traceback.format_exception(exc)[-3:])
        log.error("dead-lettered", handler=self.handler.name, topic=rec.topic, partition=rec.partition,
                  offset=rec.offset, reason=reason.splitlines()[0], attempts=attempts)
        letter = DeadLetter(
            handler=self.handler.name, reason=reason, error_type=type(exc).__name__,
            attempts=attempts, failed_at=datetime.now(UTC), event_id=event.id if event else None,
            original=OriginalRecord.from_bytes(
                rec.topic, rec.partition, rec.offset, rec.key, rec.value, rec.headers
            ),
        )
        return _DeadLetterOut(rec.key, orjson.dumps(letter.model_dump(mode="json")))


async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
    """True when the consumer has partitions and has read each to its last stable offset."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    for tp in assigned:
        end = consumer.last_stable_offset(tp)
        if end is None or await consumer.position(tp) < end:
            return False
    return True


async def _stop_quietly(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer, also after a failed start or a lost broker, when aiokafka's internal
    tasks re-raise their own cancellation from ``stop()``."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(5):
        try:
            await consumer.stop()
        except (asyncio.CancelledError, KafkaError) as exc:
            log.debug("consumer stop after failed start", error=repr(exc))


def group_id_for(handler: str, prefix: str = "edusync") -> str:
    """The consumer group of a handler."""
    return f"{prefix}.{handler}"
