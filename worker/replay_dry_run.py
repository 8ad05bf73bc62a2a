"""``edusync replay --dry-run``: what a tenant's handlers would write, per target, for the events
since a time, without writing anything.

The events are read with a group-less consumer from the first offset at or after ``--from`` (no
group, no offsets, nothing to clean up). Each is handed to the handler with its ledger as it is
now; the ledger's changes stay in memory and are never flushed, and the client-level write log
(``worker.clients.dry_run``) stops every write the handler attempts. On a converged target a
replay is all no-ops, so the dry run prints no writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import BaseModel

from schemas.envelope import CloudEvent, EnvelopeError
from worker.clients.dry_run import WouldWrite, recording
from worker.config import WorkerConfig
from worker.errors import Verdict, classify
from worker.handler_frame import AnyHandler, BatchHandler, Handler
from worker.kafka.connection import KafkaConnection
from worker.kafka.reader import topic_partitions
from worker.ledger import Ledger, LedgerView
from worker.metrics import Outcome
from worker.replay import ReplayError
from worker.runtime import wait_for_kafka
from worker.wiring import build_wiring


class TargetWrites(BaseModel):
    """The writes one target (system and host) would get."""

    system: str
    host: str
    writes: int
    calls: list[str]


class DryRunReport(BaseModel):
    """What a dry run found: events read, outcomes per handler, the writes per target."""

    tenant: str
    since: datetime
    events: int
    writes: int
    handlers: dict[str, dict[str, int]]
    targets: list[TargetWrites]


async def dry_run(config: WorkerConfig, tenant: str, since: datetime, handler: str | None = None) -> DryRunReport:
    """Replay ``tenant``'s events since ``since`` through its handlers (or just ``handler``)
    with every target write stopped and recorded."""
    if tenant not in {t.id for t in config.tenants}:
        raise ReplayError(f"unknown tenant {tenant!r} (known: {', '.join(t.id for t in config.tenants)})")
    wiring = build_wiring(config)
    try:
        chosen = [h for h in wiring.handlers if tenant in wiring.handler_tenants.get(h.name, ())
                  and handler in (None, h.name)]
        if not chosen:
            raise ReplayError(f"no handler {'named ' + repr(handler) + ' ' if handler else ''}runs for tenant "
                              f"{tenant!r} in this configuration")
        kafka = config.kafka.connection()
        await wait_for_kafka(kafka, config.kafka.broker_patience_seconds)
        view = LedgerView(kafka)
        await view.restore()
        outcomes: dict[str, Counter[str]] = {}
        events = 0
        with recording() as log:
            for h in chosen:
                for table in getattr(h, "tables", ()):
                    await table.restore()
                changed = getattr(h, "partitions_changed", None)
                if changed is not None:
                    changed()  # forget what it verified: it may be stale
                tally = outcomes[h.name] = Counter()
                ledger = Ledger(view, h.name)
                async for record in _records_since(kafka, list(h.topics), since):
                    try:
                        event = CloudEvent.from_bytes(record.value)
                    except EnvelopeError:
                        continue  # not this tenant's to judge: the live handler dead-letters it
                    if event.tenant != tenant:
                        continue
                    events += 1
                    tally[await _apply(h, event, ledger)] += 1
    finally:
        await wiring.clients.aclose()
    targets: dict[tuple[str, str], list[str]] = {}
    for w in log.writes:
        fields = f" ({', '.join(w.fields)})" if w.fields else ""
        targets.setdefault((w.system, w.host), []).append(f"{w.method} {w.path}{fields}")
    return DryRunReport(
        tenant=tenant, since=since, events=events, writes=len(log.writes),
        handlers={name: dict(sorted(t.items())) for name, t in outcomes.items()},
        targets=[TargetWrites(system=s, host=host, writes=len(calls), calls=calls)
                 for (s, host), calls in sorted(targets.items())],
    )


async def _apply(handler: AnyHandler, event: CloudEvent, ledger: Ledger) -> str:
    """The handler's outcome for one event, with writes stopped: ``would_write`` when it tried one."""
    result: Any
    try:
        if isinstance(handler, BatchHandler):
            result = (await handler.handle_batch([event], ledger))[0]
        else:
            assert isinstance(handler, Handler)
            result = await handler.handle(event, ledger)
    except Exception as exc:  # classified below, like the frame does
        result = exc
    if isinstance(result, Outcome):
        return result.value
    if isinstance(result, WouldWrite):
        return "would_write"
    verdict = classify(result)
    return {Verdict.DEFER: "would_defer", Verdict.RETRY: "would_retry", Verdict.PAUSE: "would_pause"}.get(
        verdict, "would_dead_letter")


async def _records_since(
    kafka: KafkaConnection, topics: list[str], since: datetime,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Committed records of ``topics`` from the first at or after ``since`` to the end as of now."""
    consumer = AIOKafkaConsumer(**kafka.options(), isolation_level="read_committed", enable_auto_commit=False,
                                group_id=None, client_id="edusync-replay-dry-run")
    await consumer.start()
    try:
        parts = [tp for t in kafka.names(topics) for tp in await topic_partitions(consumer, t)]
        consumer.assign(parts)
        found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in parts})
        end = await consumer.end_offsets(parts)
        pending: set[TopicPartition] = set()
        for tp in parts:
            at = found.get(tp)
            if at is not None and at.offset < end[tp]:
                consumer.seek(tp, at.offset)
                pending.add(tp)
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=1000)
            for records in batch.values():
                for rec in records:
                    yield rec
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()

