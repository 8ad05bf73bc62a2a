"""The generic handler loop a concrete handler plugs into.

consume (read_committed) -> one lane per partition hands the handler that partition's records,
in order, a batch at a time -> the handler reads the target and writes only the difference ->
ledger entries, dead letters, parked events and consumer offsets commit in ONE transaction.

- Partitions run concurrently (at most ``concurrency`` at once per handler), each in order, so a
  slow or retrying partition never holds up the others.
- A handler is per event (``handle``) or per batch (``handle_batch``: one partition's records at
  once, to merge reads and writes); both get the handler's ``Ledger``.
- Failures are classified once (``worker.errors.classify``): retriable ones retry that partition
  with backoff and never skip; rejected credentials pause it (state ``paused``, one log line a
  minute, a retry every ``paused_retry`` seconds); ``PrerequisiteMissing`` parks the event
  durably (``worker.deferrals``) and the partition moves on; everything else is dead-lettered to
  ``edusync.dlq.<handler>`` with the reason.
- Commits gather many events: every ``commit_every`` events, ``commit_interval_seconds`` after
  the first uncommitted one, or as soon as every lane is idle. A crash before a commit replays
  those events; handlers read the target (or the ledger) first, so a replay writes nothing.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import anyio
import anyio.abc
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.dead_letter import DeadLetter, OriginalRecord
from schemas.envelope import CloudEvent, EnvelopeError
from worker.backoff import Backoff
from worker.concurrency import task_group
from worker.controls import Gate
from worker.deferrals import DeferralStore, DueEvent
from worker.errors import EdusyncError, PermanentFailure, PrerequisiteMissing, Verdict, classify
from worker.health import Health, State
from worker.kafka.connection import Kafka, connect
from worker.kafka.errors import BrokerUnavailableError, require_broker
from worker.kafka.producer import TransactionalProducer
from worker.kafka.reader import topic_partitions
from worker.ledger import Ledger, LedgerView
from worker.metrics import (
    COMPONENT_UP,
    END_TO_END_LATENCY,
    HANDLER_BACKLOG,
    HANDLER_DEFERRED,
    HANDLER_EVENTS,
    HANDLER_PARTITIONS_BUSY,
    UNATTRIBUTED,
    Kind,
    Outcome,
    current_tenant,
    mark_started,
    mark_success,
    prime_handler,
    tenant_label,
)
from worker.recovery import marking, recovery
from worker.shutdown import StopToken
from worker.tables import TopicTable
from worker.topics import dlq_topic, redrive_topic
from worker.upstream_retries import tenant_scope

log = structlog.get_logger(__name__)

# Settings of every handler's consumer (benchmarks use them for the raw baseline).
CONSUMER_SETTINGS: dict[str, object] = {
    "isolation_level": "read_committed",
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    # A target can be slow; do not get thrown out of the group mid-batch.
    "max_poll_interval_ms": 600_000,
    "max_partition_fetch_bytes": 4 * 1024 * 1024,
}
PAUSED_LOG_EVERY = 60.0
OPERATOR_PAUSE = "operator"  # the pause reason of every lane while an operator pauses the handler
REVOKE_PATIENCE = 30.0
BACKLOG_EVERY = 2.0  # seconds between two backlog measurements
Result = Outcome | BaseException


class HandlerSettings(BaseModel):
    """How the frame runs one handler (process-wide, for every tenant): ``handlers.<name>`` in the file."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(8, ge=1, le=64, description="partitions processed at once (a topic has 6)")
    batch_size: int = Field(500, ge=1, le=10_000, description="events of one partition handed over at once")
    commit_every: int = Field(5000, ge=1, description="commit after this many events ...")
    commit_interval_seconds: float = Field(1.0, gt=0, description="... or this long after the first uncommitted one")
    max_defer_seconds: float = Field(
        6 * 3600.0, gt=0, description="a parked event whose prerequisite never appears is dead-lettered after this")


class _HandlerBase(Protocol):
    name: str

    @property
    def topics(self) -> Sequence[str]:
        """The topics this handler consumes."""
        ...


@runtime_checkable
class Handler(_HandlerBase, Protocol):
    """Applies one event to a target and returns the outcome; raises to retry, pause, park or
    dead-letter (``worker.errors``). A no-op must still bring the ledger up to what the target
    holds: after a crash between a write and its commit, the replay finds the write done.

    Optional members the frame uses when present: ``tables`` (``TopicTable`` reference data,
    restored before consuming and followed), ``partitions_changed()`` (after a rebalance)."""

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome: ...


@runtime_checkable
class BatchHandler(_HandlerBase, Protocol):
    """Applies the events of one partition's batch at once, in order, and returns one result per
    event: an ``Outcome``, or the exception that event met (``PrerequisiteMissing`` parks it, a
    permanent error dead-letters it, a retriable one stops the batch there to be retried). An
    exception raised for the whole batch retries or pauses it, or, if permanent, has the events
    handled one at a time. A handler that parks an event must also park later events of the same
    subject in the batch (return ``PrerequisiteMissing`` for them)."""

    async def handle_batch(self, events: Sequence[CloudEvent], ledger: Ledger) -> Sequence[Result]: ...


AnyHandler = Handler | BatchHandler


@dataclass(frozen=True)
class _Behind:
    """An event parked behind an earlier parked event of the same subject."""

    head: str


@dataclass
class _Pending:
    """What the handler has done since its last commit."""

    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    dead: list[tuple[bytes, bytes]] = field(default_factory=list)
    applied_times: list[datetime] = field(default_factory=list)
    tally: Counter[tuple[str, Outcome]] = field(default_factory=Counter)  # by (tenant label, outcome)
    count: int = 0
    since: float = field(default_factory=time.monotonic)

    def age(self) -> float:
        """Seconds since the first uncommitted result."""
        return time.monotonic() - self.since


@dataclass
class _Lane:
    """One assigned partition: records fetched and not yet handed to the handler."""

    tp: TopicPartition
    buffer: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)
    wake: anyio.Event = field(default_factory=anyio.Event)
    busy: bool = False
    closed: bool = False
    fetch_paused: bool = False
    finished: anyio.Event = field(default_factory=anyio.Event)

    def close(self) -> None:
        """Stop after the chunk in hand; drop what is buffered (the next owner re-reads it)."""
        self.closed = True
        self.buffer.clear()
        self.wake.set()


class HandlerRunner:
    """Consumes a handler's topics in a consumer group and applies each event once."""

    def __init__(
        self, handler: AnyHandler, *, kafka: Kafka, producer: TransactionalProducer, view: LedgerView,
        settings: HandlerSettings | None = None, group_id: str | None = None, broker_patience: float = 60.0,
        backoff: Backoff | None = None, health: Health | None = None, paused_retry: float = 60.0,
        assign_all: bool = False, scope: str | None = None, gate: Gate | None = None, redrive: bool = False,
    ) -> None:
        """``assign_all`` reads every partition of the topics without joining ``group_id`` (which
        then only keeps the offsets): the mode of a tenant slot's handler, which the ownership
        group gives one replica. ``scope`` names that slot: its deferrals and its component.
        ``gate`` holds the lanes while an operator pauses the handler; ``redrive`` also consumes
        the dead letters sent back to it (``edusync dlq redrive``)."""
        self.handler = handler
        self.kafka = connect(kafka)
        self.producer = producer
        self.view = view
        self.settings = settings or HandlerSettings()
        self.ledger = Ledger(view, handler.name)
        self.assign_all = assign_all
        # A slot runner's events up to each partition's end at start, and the parked events it
        # restored, may have been applied by a runner that died before committing (worker/recovery.py).
        self._recover_until: dict[TopicPartition, int] = {}
        self._recover_parked: set[str] = set()
        scoped = f"{handler.name}.{scope}" if scope else handler.name
        self.deferrals = DeferralStore(self.kafka, scoped, self.settings.max_defer_seconds)
        self.backoff = backoff or Backoff(base=0.2, cap=30.0)
        self.health = health or Health()
        self.paused_retry = paused_retry
        self.group_id = group_id or group_id_for(handler.name)
        self.broker_patience = broker_patience
        self.dlq = dlq_topic(handler.name)
        self.topics = [*handler.topics, redrive_topic(handler.name)] if redrive else list(handler.topics)
        self.gate = gate
        self.component = f"handler:{scoped}"
        self.started = anyio.Event()
        self._batch_handler = handler if isinstance(handler, BatchHandler) else None
        self._event_handler = handler if isinstance(handler, Handler) else None
        if self._batch_handler is None and self._event_handler is None:
            raise TypeError(f"{handler!r} has neither handle() nor handle_batch()")
        self._limiter = anyio.CapacityLimiter(self.settings.concurrency)
        self._lanes: dict[TopicPartition, _Lane] = {}
        self._pending = _Pending()
        self._commit_lock = anyio.Lock()
        self._commit_wake = anyio.Event()
        self._deferral_wake = anyio.Event()
        self._paused: set[str] = set()
        self._paused_logged = 0.0
        self._drained = True  # the last fetch returned nothing
        self._consumer: AIOKafkaConsumer | None = None
        self._lane_group: anyio.abc.TaskGroup | None = None
        self._stop = StopToken()
        # The tenants a slot's runner serves (worker/tenant_slots.py); none for a bare handler.
        self.tenants: frozenset[str] = frozenset(getattr(handler, "tenants", ()))
        prime_handler(handler.name, self.tenants)
        for tenant in self.tenants:
            mark_started(Kind.HANDLER, tenant, handler.name)
        self._fresh_at = 0.0
        self._backlog_at = 0.0

    # -- the loop -----------------------------------------------------------------------------

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(**self.kafka.options(), group_id=self.kafka.name(self.group_id),
                                client_id=f"edusync-{self.handler.name}", **CONSUMER_SETTINGS)

    async def run(self, stop: StopToken, *, until_caught_up: bool = False) -> None:
        """Consume until ``stop``; lanes finish the batch in hand and everything done commits first.
        With ``until_caught_up`` it also returns once every assigned partition is read to its end."""
        self._stop = stop
        tables: list[TopicTable] = list(getattr(self.handler, "tables", ()))
        for table in tables:
            await table.restore()  # reference data first: the handler joins against it
        await self.deferrals.restore()
        if self.assign_all:
            self._recover_parked = self.deferrals.keys()
        HANDLER_DEFERRED.labels(self.handler.name).set(len(self.deferrals))
        self.view.subscribe(self._ledger_changed)
        consumer = self._consumer = self._new_consumer()
        if not self.assign_all:
            consumer.subscribe(self.kafka.names(self.topics), listener=_Rebalance(self))
        # start() waits forever for a broker that is not there; joining a group can take
        # several seconds even when it is, hence the floor.
        start_patience = max(30.0, self.broker_patience)
        try:
            with anyio.fail_after(start_patience):
                await consumer.start()
        except TimeoutError as exc:
            await _stop_quietly(consumer)
            raise BrokerUnavailableError(
                f"Kafka broker {self.kafka.bootstrap} unreachable: consumer group not joined in {start_patience:.0f}s"
            ) from exc
        if self.assign_all:
            # Positions start at the group's committed offsets (earliest where there are none).
            partitions = [tp for topic in self.kafka.names(self.topics)
                          for tp in await topic_partitions(consumer, topic)]
            consumer.assign(partitions)
            self._recover_until = dict(await consumer.end_offsets(partitions))
        self._set_state()
        self.started.set()
        try:
            async with task_group() as background:
                background.start_soon(self._commit_loop)
                background.start_soon(self._deferral_loop, stop)
                for table in tables:
                    if table.claim():
                        background.start_soon(table.follow)
                async with task_group() as lanes:
                    self._lane_group = lanes
                    await self._fetch_loop(consumer, stop, until_caught_up)
                    for lane in list(self._lanes.values()):
                        lane.close()
                background.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await self._commit()
        finally:
            self.view.unsubscribe(self._ledger_changed)
            COMPONENT_UP.labels(self.component).set(0)
            HANDLER_PARTITIONS_BUSY.labels(self.handler.name).set(0)
            HANDLER_BACKLOG.labels(self.handler.name, self.component).set(0)
            await _stop_quietly(consumer)

    async def _fetch_loop(self, consumer: AIOKafkaConsumer, stop: StopToken, until_caught_up: bool) -> None:
        high_water = 4 * self.settings.batch_size
        last_contact = time.monotonic()
        while not stop.stopping:
            if self.gate is not None and self.gate.closed is not None:
                await self._held(lambda: False)  # fetch nothing new (assigned partitions: no group to leave)
                continue
            batch = {}
            # getmany can block while the group has no coordinator (broker gone), so bound it.
            with anyio.move_on_after(5):
                batch = await consumer.getmany(timeout_ms=100, max_records=4 * self.settings.batch_size)
            if not batch and not self._drained:
                self._commit_wake.set()  # the fetch came back empty: what is done may commit now
            self._drained = not batch
            await self._observe(consumer)
            if batch:
                last_contact = time.monotonic()
                for tp, records in batch.items():
                    lane = self._lanes.get(tp) or self._open_lane(tp)
                    if lane.buffer:
                        lane.buffer.extend(records)
                    else:
                        lane.buffer = records  # no copy: getmany's list is ours
                    lane.wake.set()
                    if len(lane.buffer) >= high_water and not lane.fetch_paused:
                        consumer.pause(tp)  # back-pressure: this partition's lane is behind
                        lane.fetch_paused = True
            elif until_caught_up and self._idle() and await _caught_up(consumer):
                return
            elif time.monotonic() - last_contact > 10:
                # An idle consumer cannot tell a quiet topic from a dead broker; ask for metadata.
                await require_broker(consumer, self.kafka.bootstrap, self.broker_patience)
                last_contact = time.monotonic()

    async def _observe(self, consumer: AIOKafkaConsumer) -> None:
        """Now and then: the backlog gauge, and freshness while there is nothing to do."""
        now = time.monotonic()
        if self._idle() and not self._paused and now - self._fresh_at >= 1.0:
            self._fresh_at = now  # caught up and healthy counts as a success for every tenant served
            for tenant in self.tenants:
                mark_success(Kind.HANDLER, tenant, self.handler.name)
        if now - self._backlog_at >= BACKLOG_EVERY:
            self._backlog_at = now
            with anyio.move_on_after(1.0):
                HANDLER_BACKLOG.labels(self.handler.name, self.component).set(await self._backlog(consumer))

    async def _backlog(self, consumer: AIOKafkaConsumer) -> int:
        """Records not handled yet: up to the last stable offset (transaction markers past it do not
        count), and those fetched but still in a lane."""
        behind = sum(len(lane.buffer) for lane in self._lanes.values())
        for tp in consumer.assignment():
            end = consumer.last_stable_offset(tp)
            if end is not None:
                behind += max(0, end - await consumer.position(tp))
        return behind

    def _open_lane(self, tp: TopicPartition) -> _Lane:
        lane = self._lanes[tp] = _Lane(tp)
        assert self._lane_group is not None
        self._lane_group.start_soon(self._lane_loop, lane)
        return lane

    async def _lane_loop(self, lane: _Lane) -> None:
        try:
            await self._lane_work(lane)
        finally:
            lane.finished.set()

    async def _lane_work(self, lane: _Lane) -> None:
        size = self.settings.batch_size
        while not (lane.closed or self._stop.stopping):
            if not lane.buffer:
                lane.wake = anyio.Event()
                await lane.wake.wait()
                continue
            if self.gate is not None and self.gate.closed is not None:
                await self._held(lambda: lane.closed)  # the buffer stays as it is: nothing skipped
                continue
            if len(lane.buffer) <= size:
                records, lane.buffer = lane.buffer, []
            else:
                records = lane.buffer[:size]
                del lane.buffer[:size]
            if lane.fetch_paused and len(lane.buffer) < size and self._consumer is not None:
                self._consumer.resume(lane.tp)
                lane.fetch_paused = False
            lane.busy = True
            try:
                await self._process(lane, records)
            finally:
                lane.busy = False
                self._commit_wake.set()

    # -- one partition's records ----------------------------------------------------------------

    async def _process(self, lane: _Lane, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Hand ``records`` to the handler in order until each has a result; retry or pause on the way."""
        tp = lane.tp
        lane_key = f"{tp.topic}[{tp.partition}]"
        todo = records
        attempts = 0
        while todo and not lane.closed:
            attempts += 1
            async with self._limiter:
                HANDLER_PARTITIONS_BUSY.labels(self.handler.name).set(self._limiter.borrowed_tokens)
                try:
                    if self._batch_handler is not None:
                        done, interruption = await self._attempt_batch(self._batch_handler, tp, todo, attempts)
                    else:
                        assert self._event_handler is not None
                        done, interruption = await self._attempt_each(self._event_handler, tp, todo, attempts)
                finally:
                    HANDLER_PARTITIONS_BUSY.labels(self.handler.name).set(self._limiter.borrowed_tokens - 1)
            if done:
                HANDLER_DEFERRED.labels(self.handler.name).set(len(self.deferrals))
                self._commit_wake.set()
            todo = todo[done:]
            if interruption is None:
                self._resumed(lane_key)
                return
            if not await self._wait_out(lane_key, interruption, attempts, todo[0]):
                return  # stop requested: the rest is read again by the next run

    async def _attempt_each(
        self, handler: Handler, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]], attempts: int,
    ) -> tuple[int, BaseException | None]:
        """The hot path: each record parsed, handled and its result noted in turn, so no batch of
        parsed events stays alive; plain outcomes are tallied once at the end. Returns how many
        records have their result, and what interrupted the pass."""
        parse, handle, ledger, blocks = CloudEvent.from_bytes, handler.handle, self.ledger, self.deferrals.blocks
        applied = Outcome.APPLIED  # an enum member is a slow attribute lookup in 3.11
        parked = bool(len(self.deferrals))
        outcomes: list[tuple[str, Outcome]] = []
        applied_at: list[datetime] = []
        done = 0
        label = tenant_label
        recover_until = self._recover_until.get(tp, -1)
        # The tenant of each event's upstream requests, and whether it is in the recovery window:
        # both context variables are set only when they change (most passes hold one tenant).
        tenant_token, current = current_tenant.set(UNATTRIBUTED), UNATTRIBUTED
        try:
            with marking() as mark_recovery:
                for rec in records:
                    try:
                        event = parse(rec.value)
                    except EnvelopeError as exc:
                        self._record(tp, rec, None, exc, attempts)
                        done += 1
                        continue
                    head = blocks(event.subject) if parked else None
                    if head is not None:
                        self._record(tp, rec, event, _Behind(head), attempts)
                        done += 1
                        continue
                    tenant = label(event.tenant)
                    if tenant != current:
                        current_tenant.set(tenant)
                        current = tenant
                    mark_recovery(rec.offset < recover_until)
                    try:
                        result = await handle(event, ledger)
                    except Exception as exc:  # classified here; nothing escapes unhandled
                        verdict = classify(exc)
                        if verdict in (Verdict.RETRY, Verdict.PAUSE):
                            return done, exc
                        parked = parked or verdict is Verdict.DEFER  # later events of its subject wait behind it
                        self._record(tp, rec, event, exc, attempts)
                        done += 1
                        continue
                    if result.__class__ is not Outcome:
                        self._record(tp, rec, event, TypeError(f"{handler.name}.handle returned {result!r}"),
                                     attempts)
                    elif result is applied:
                        applied_at.append(event.time)
                        outcomes.append((tenant, result))
                    else:
                        outcomes.append((tenant, result))
                    done += 1
            return done, None
        finally:
            current_tenant.reset(tenant_token)
            self._tally(tp, records, done, outcomes, applied_at)

    def _tally(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]], done: int,
               outcomes: list[tuple[str, Outcome]], applied_at: list[datetime]) -> None:
        """The plain outcomes of a pass, pending the next commit; the offset moves past ``done`` records."""
        pending = self._pending
        if outcomes:
            pending.tally.update(outcomes)
            pending.count += len(outcomes)
            pending.applied_times.extend(applied_at)
        if done:
            pending.offsets[tp] = records[done - 1].offset + 1

    async def _attempt_batch(
        self, handler: BatchHandler, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]], attempts: int,
    ) -> tuple[int, BaseException | None]:
        """All of ``records`` to the batch handler at once (parse failures and events parked behind
        an earlier one are recorded without it). Returns how many have their result, and what
        interrupted the batch."""
        items: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent | None, Result | _Behind | None]] = []
        parked = bool(len(self.deferrals))
        for rec in records:
            try:
                parsed = CloudEvent.from_bytes(rec.value)
            except EnvelopeError as exc:
                items.append((rec, None, exc))
                continue
            head = self.deferrals.blocks(parsed.subject) if parked else None
            items.append((rec, parsed, _Behind(head) if head else None))
        events = [e for _, e, preset in items if preset is None and e is not None]
        with recovery(bool(records) and records[0].offset < self._recover_until.get(tp, -1)):
            given = iter(await self._apply_batch(handler, events) if events else [])
        for done, (rec, event, preset) in enumerate(items):
            result = preset if preset is not None else next(given, None)
            if result is None:
                return done, RuntimeError("handler returned fewer results than events")
            if isinstance(result, BaseException) and classify(result) in (Verdict.RETRY, Verdict.PAUSE):
                return done, result
            self._record(tp, rec, event, result, attempts)
        return len(items), None

    async def _apply(self, events: Sequence[CloudEvent]) -> list[Result]:
        """The handler's results for parked ``events`` (a prefix, ending in the error that stopped it)."""
        async with self._limiter:
            HANDLER_PARTITIONS_BUSY.labels(self.handler.name).set(self._limiter.borrowed_tokens)
            try:
                if self._batch_handler is not None:
                    return await self._apply_batch(self._batch_handler, events)
                assert self._event_handler is not None
                return await self._apply_each(self._event_handler, events)
            finally:
                HANDLER_PARTITIONS_BUSY.labels(self.handler.name).set(self._limiter.borrowed_tokens - 1)

    async def _apply_batch(self, handler: BatchHandler, events: Sequence[CloudEvent]) -> list[Result]:
        try:
            with tenant_scope(e.tenant for e in events):
                results = list(await handler.handle_batch(events, self.ledger))
        except Exception as exc:  # classified below; nothing escapes unhandled
            if classify(exc) in (Verdict.RETRY, Verdict.PAUSE) or len(events) == 1:
                return [exc]
            # A permanent failure of the whole batch: find the event that causes it.
            out: list[Result] = []
            for event in events:
                one = await self._apply_batch(handler, [event])
                out.extend(one)
                if isinstance(one[0], BaseException) and classify(one[0]) in (Verdict.RETRY, Verdict.PAUSE):
                    break
            return out
        if len(results) != len(events):
            return [RuntimeError(f"{handler.name}.handle_batch returned {len(results)} results for "
                                 f"{len(events)} events")] * len(events)
        return results

    async def _apply_each(self, handler: Handler, events: Sequence[CloudEvent]) -> list[Result]:
        out: list[Result] = []
        parked: set[str] = set()
        for event in events:
            if event.subject in parked:
                out.append(PrerequisiteMissing(f"behind an earlier parked event of {event.subject}"))
                continue
            try:
                with tenant_scope(event.tenant):
                    out.append(await handler.handle(event, self.ledger))
            except Exception as exc:  # classified by the caller; nothing escapes unhandled
                verdict = classify(exc)
                out.append(exc)
                if verdict in (Verdict.RETRY, Verdict.PAUSE):
                    break
                if verdict is Verdict.DEFER:
                    parked.add(event.subject)
        return out

    def _record(self, tp: TopicPartition, rec: ConsumerRecord[bytes, bytes], event: CloudEvent | None,
                result: Result | _Behind, attempts: int) -> None:
        """One record's result, pending the next commit; its offset moves past it."""
        pending = self._pending
        tenant = tenant_label(event.tenant) if event is not None else UNATTRIBUTED
        if isinstance(result, Outcome):
            pending.tally[tenant, result] += 1
            if result is Outcome.APPLIED and event is not None:
                pending.applied_times.append(event.time)
        elif event is not None and isinstance(result, PrerequisiteMissing | _Behind):
            reason = result.reason if isinstance(result, PrerequisiteMissing) else f"behind {result.head}"
            waits = result.waits_for if isinstance(result, PrerequisiteMissing) else None
            self.deferrals.park(_original(rec), event.subject, reason, waits)
            pending.tally[tenant, Outcome.DEFERRED] += 1
        else:
            assert isinstance(result, BaseException)
            self._dead_letter(_original(rec), event, result, attempts)
        pending.offsets[tp] = rec.offset + 1
        pending.count += 1

    async def _wait_out(self, lane_key: str, error: BaseException, attempts: int,
                        rec: ConsumerRecord[bytes, bytes] | None) -> bool:
        """Sleep before the next attempt; False if a stop request came meanwhile."""
        if classify(error) is Verdict.PAUSE:
            self._paused.add(lane_key)
            self._set_state(str(error))
            if time.monotonic() - self._paused_logged >= PAUSED_LOG_EVERY:
                self._paused_logged = time.monotonic()
                log.error("handler paused: credentials rejected; retrying on a slow schedule",
                          handler=self.handler.name, lane=lane_key, error=str(error), retry_every=self.paused_retry)
            return not await self._stop.sleep(self.paused_retry)
        HANDLER_EVENTS.labels(self.handler.name, _tenant_of(rec), Outcome.RETRIED.value).inc()
        delay = self.backoff.delay(attempts - 1)
        log.warning("transient failure; will retry", handler=self.handler.name, lane=lane_key,
                    key=rec.key.decode("utf-8", "replace") if rec is not None and rec.key else None,
                    attempt=attempts, error=str(error) or type(error).__name__, retry_in=round(delay, 2))
        return not await self._stop.sleep(delay)

    async def _held(self, gone: Callable[[], bool]) -> None:
        """Wait out an operator's pause (or until ``gone()``): the first to hold reports and logs it."""
        assert self.gate is not None
        if OPERATOR_PAUSE in self._paused:
            while self.gate.closed is not None and not (self._stop.stopping or gone()):
                await self.gate.view.wait_changed(1.0)
            return
        self._paused.add(OPERATOR_PAUSE)
        self._set_state("paused by operator")
        try:
            await self.gate.wait_open(self._stop, self.component, gone)
        finally:
            self._paused.discard(OPERATOR_PAUSE)
            self._set_state()

    def _resumed(self, lane_key: str) -> None:
        if lane_key in self._paused:
            self._paused.discard(lane_key)
            log.info("handler resumed: credentials accepted again", handler=self.handler.name, lane=lane_key)
            self._set_state()

    def _set_state(self, reason: str | None = None) -> None:
        if self._paused == {OPERATOR_PAUSE}:
            self.health.set(self.component, State.HELD, "paused by operator")
            COMPONENT_UP.labels(self.component).set(0)
        elif self._paused:
            self.health.set(self.component, State.PAUSED, reason or "credentials rejected")
            COMPONENT_UP.labels(self.component).set(0)
        else:
            self.health.set(self.component, State.READY)
            COMPONENT_UP.labels(self.component).set(1)

    def _dead_letter(self, original: OriginalRecord, event: CloudEvent | None, exc: BaseException,
                     attempts: int) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, EdusyncError | ValidationError | EnvelopeError):
            reason += "\n" + "".join(traceback.format_exception(exc)[-3:])  # a bug: keep where it happened
        log.error("dead-lettered", handler=self.handler.name, topic=original.topic, partition=original.partition,
                  offset=original.offset, reason=reason.splitlines()[0], attempts=attempts)
        letter = DeadLetter(
            handler=self.handler.name, reason=reason, error_type=type(exc).__name__, attempts=attempts,
            failed_at=datetime.now(UTC), event_id=event.id if event else None, original=original,
        )
        self._pending.dead.append(((original.key or "").encode(), orjson.dumps(letter.model_dump(mode="json"))))
        tenant = tenant_label(event.tenant) if event is not None else UNATTRIBUTED
        self._pending.tally[tenant, Outcome.DEAD_LETTERED] += 1

    # -- parked events ------------------------------------------------------------------------

    def _ledger_changed(self, key: str) -> None:
        if self.deferrals.ledger_changed(key):
            self._deferral_wake.set()

    async def _deferral_loop(self, stop: StopToken) -> None:
        """Retry parked events when due, head of each subject first."""
        attempts = 0
        while not stop.stopping:
            if self.gate is not None and self.gate.closed is not None:
                await self._held(lambda: False)  # parked events wait for the resume too
                continue
            due = self.deferrals.due(self.settings.batch_size)
            if not due:
                upcoming = self.deferrals.next_due()
                wait = 1.0 if upcoming is None else min(1.0, max(0.02, upcoming - time.time()))
                self._deferral_wake = anyio.Event()
                with anyio.move_on_after(wait):
                    await self._deferral_wake.wait()
                continue
            interruption = await self._retry_parked(due)
            if interruption is None:
                attempts = 0
                self._resumed("parked")
                continue
            attempts += 1
            if not await self._wait_out("parked", interruption, attempts, None):
                return

    async def _retry_parked(self, due: list[DueEvent]) -> BaseException | None:
        ready: list[tuple[DueEvent, CloudEvent]] = []
        for item in due:
            try:
                ready.append((item, CloudEvent.from_bytes(item.entry.original.value_bytes())))
            except EnvelopeError as exc:
                self._dead_letter(item.entry.original, None, exc, item.entry.attempts)
                self.deferrals.resolve(item.key)
        with recovery(any(item.key in self._recover_parked for item, _ in ready)):
            results = await self._apply([event for _, event in ready]) if ready else []
        interruption: BaseException | None = None
        for (item, event), result in zip(ready, results, strict=False):
            if isinstance(result, Outcome):
                self._pending.tally[tenant_label(event.tenant), result] += 1
                if result is Outcome.APPLIED:
                    self._pending.applied_times.append(event.time)
                self.deferrals.resolve(item.key)
            elif isinstance(result, PrerequisiteMissing):
                if self.deferrals.expired(item.entry):
                    never = PermanentFailure(f"prerequisite never appeared: {result.reason}")
                    self._dead_letter(item.entry.original, event, never, item.entry.attempts + 1)
                    self.deferrals.resolve(item.key)
                else:
                    self.deferrals.again(item.key, result.reason, result.waits_for)
            elif classify(result) in (Verdict.RETRY, Verdict.PAUSE):
                interruption = result
                break
            else:
                self._dead_letter(item.entry.original, event, result, item.entry.attempts + 1)
                self.deferrals.resolve(item.key)
        HANDLER_DEFERRED.labels(self.handler.name).set(len(self.deferrals))
        self._commit_wake.set()
        return interruption

    # -- committing ---------------------------------------------------------------------------

    def _has_work(self) -> bool:
        p = self._pending
        return bool(p.offsets or p.dead or p.tally or self.ledger.dirty or self.deferrals.store.dirty)

    def _idle(self) -> bool:
        """Nothing fetched is waiting, and the last fetch found nothing new: commit now."""
        return self._drained and all(not lane.busy and not lane.buffer for lane in self._lanes.values())

    async def _commit_loop(self) -> None:
        interval = self.settings.commit_interval_seconds
        while True:
            if self._has_work() and (
                self._pending.count >= self.settings.commit_every or self._pending.age() >= interval or self._idle()
            ):
                with anyio.CancelScope(shield=True):
                    await self._commit()
                continue
            self._commit_wake = anyio.Event()
            wait = max(0.0, interval - self._pending.age()) if self._has_work() else interval
            with anyio.move_on_after(wait):
                await self._commit_wake.wait()

    async def _commit(self) -> None:
        """Ledger entries, parked events, dead letters and offsets in one transaction; then metrics."""
        async with self._commit_lock:
            if not self._has_work():
                self._pending = _Pending()
                return
            pending, self._pending = self._pending, _Pending()
            try:
                async with self.producer.transaction() as txn:
                    flushed = await self.ledger.flush(txn)
                    await self.deferrals.store.flush(txn)
                    for key, value in pending.dead:
                        await txn.send(self.dlq, key, value)
                    await txn.send_offsets(pending.offsets, self.group_id)
            except BaseException:
                # Nothing of it is durable: memory must not claim otherwise (the component restarts).
                self.ledger.rollback()
                raise
            self.ledger.committed(flushed)
        name = self.handler.name
        for (tenant, outcome), n in pending.tally.items():
            HANDLER_EVENTS.labels(name, tenant, outcome.value).inc(n)
        for tenant in {tenant for tenant, _ in pending.tally}:
            if tenant in self.tenants or (not self.tenants and tenant != UNATTRIBUTED):
                mark_success(Kind.HANDLER, tenant, name)
        if pending.applied_times:
            now = datetime.now(UTC)
            observe = END_TO_END_LATENCY.labels(name).observe
            for t in pending.applied_times:
                observe(max(0.0, (now - t).total_seconds()))

    async def revoke(self, partitions: set[TopicPartition]) -> None:
        """The group takes ``partitions`` away: finish their batches in hand, commit, forget them."""
        lanes = [self._lanes.pop(tp) for tp in partitions if tp in self._lanes]
        for lane in lanes:
            lane.close()
        with anyio.move_on_after(REVOKE_PATIENCE):
            for lane in lanes:
                await lane.finished.wait()
        with anyio.CancelScope(shield=True):
            await self._commit()
        changed = getattr(self.handler, "partitions_changed", None)
        if changed is not None:
            changed()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what revoked partitions finished before the group hands them to another member."""

    def __init__(self, runner: HandlerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.runner.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        changed = getattr(self.runner.handler, "partitions_changed", None)
        if changed is not None:
            changed()  # e.g. forget what was verified: another member may have written meanwhile


def _tenant_of(rec: ConsumerRecord[bytes, bytes] | None) -> str:
    """The tenant label of a raw record (``UNATTRIBUTED`` if it does not parse)."""
    if rec is None:
        return UNATTRIBUTED
    try:
        return tenant_label(CloudEvent.from_bytes(rec.value).tenant)
    except EnvelopeError:
        return UNATTRIBUTED


def _original(rec: ConsumerRecord[bytes, bytes]) -> OriginalRecord:
    return OriginalRecord.from_bytes(rec.topic, rec.partition, rec.offset, rec.key, rec.value, rec.headers)


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
