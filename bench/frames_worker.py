"""One measurement of ``bench.frames`` in a fresh process, so each has its own peak RSS.

    python -m bench.frames_worker KIND --bootstrap B --topic T --events N --page P --out result.json

The orchestrator (``bench.frames``) starts one process per measurement and reads the JSON
written to ``--out``. KIND is one of:

``produce-frame``
    ``PollerRunner.run_once`` in a loop over a Poller that returns pre-built pages of
    CloudEvents, ``page`` per transaction (each transaction also writes the poller cursor).
``produce-raw``
    A bare transactional ``AIOKafkaProducer`` (the frame producer's settings) sending the
    same keys, values and headers, serialised before the clock starts.
``produce-raw-serialize`` (breakdown)
    ``produce-raw``, but serialising each CloudEvent inside the timed loop as the frame does.
``consume-frame``
    ``HandlerRunner`` with a no-op Handler (returns ``Outcome.NOOP``, no I/O); the frame
    parses every record into a CloudEvent and commits offsets in a transaction per batch.
``consume-raw``
    A bare read_committed ``AIOKafkaConsumer`` (the frame consumer's settings) that calls
    ``commit()`` once per ``getmany`` batch and does nothing with the records.
``consume-raw-parse`` (breakdown)
    ``consume-raw`` plus ``CloudEvent.from_bytes`` on every record.
``consume-raw-parse-txn`` (breakdown)
    ``consume-raw-parse``, committing each batch's offsets in a transaction of a bare
    transactional producer (``send_offsets_to_transaction``) instead of ``commit()``.

Produce times the whole loop after the producer has started. Consume times from the first
record ``getmany`` hands over to the end of the commit covering the last record (group join
and start-up are excluded on both sides). CPU time is this process's user+system time over
the same window (all threads), which a busy machine disturbs far less than wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from schemas.abconnect import STANDARD_CHANGED, ABConnectChangeV1, AffectedPropertyV1
from schemas.envelope import CONTENT_TYPE_HEADER, CloudEvent, make_event
from worker.handler_frame import CONSUMER_SETTINGS, HandlerRunner, HandlerSettings
from worker.kafka.producer import PRODUCER_SETTINGS as FRAME_PRODUCER_SETTINGS
from worker.kafka.producer import Transaction, TransactionalProducer
from worker.ledger import Ledger, LedgerView
from worker.logs import configure_logging
from worker.metrics import Outcome
from worker.poller_frame import Outbound, PollerRunner, PollResult
from worker.shutdown import StopToken
from worker.state_store import StateStore
from worker.topics import CURSORS

TENANT = "bench-district"
SOURCE = "abconnect:partner/bench"
EPOCH = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
# A commit slower than this is the signature of aiokafka's 100 ms retry backoff.
SLOW_BATCH_S = 0.09
# The frame's own consumer and producer settings: the raw baselines use exactly these.
GROUP_SETTINGS: dict[str, Any] = dict(CONSUMER_SETTINGS)
PRODUCER_SETTINGS: dict[str, Any] = {**FRAME_PRODUCER_SETTINGS, "transaction_timeout_ms": 30000}


# -- the events ------------------------------------------------------------------------------


def iter_events(n: int) -> Iterator[CloudEvent]:
    """``n`` realistic AB Connect ``standard.changed`` events, identical in every process."""
    for i in range(n):
        guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/standard/{i}"))
        doc = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/document/{i % 97}"))
        when = EPOCH + timedelta(seconds=i)
        change = ABConnectChangeV1(
            partner_id="bench", event_id=f"evt-{i:08d}", seq=1000 + 3 * i, date_utc=when,
            change_type="modified", target="standard", document_guid=doc, standard_guid=guid,
            affected_properties=[
                AffectedPropertyV1(name="statement", previous_value=f"Old statement {i}",
                                   new_value=f"Determine the meaning of words and phrases, revision {i}"),
                AffectedPropertyV1(name="number", previous_value=f"RL.{i % 12}.4", new_value=f"RL.{i % 12}.4a"),
            ],
        )
        yield make_event(
            tenant=TENANT, source=SOURCE, type=STANDARD_CHANGED, subject=f"{TENANT}/standard/{guid}",
            version=str(change.seq), data=change, time=when,
        )


def record_digest(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> bytes:
    """A hash of one record's key, value and headers."""
    h = hashlib.sha256()
    for part in (key or b"", value or b"", *(k.encode() + b"=" + v for k, v in headers)):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def records_digest(digests: list[bytes]) -> str:
    """An order-independent hash of many record digests (partitions interleave on read-back)."""
    h = hashlib.sha256()
    for d in sorted(digests):
        h.update(d)
    return h.hexdigest()


def pages(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` cut into consecutive pages of ``size``."""
    return [items[i:i + size] for i in range(0, len(items), size)]


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Measurement:
    """What one process measured; written as JSON for the orchestrator."""

    kind: str
    events: int
    seconds: float
    events_per_s: float
    cpu_s: float
    cpu_us_per_event: float
    batches: int
    batch_ms_p50: float
    batch_ms_p95: float
    slow_batches: int
    rss_before_mb: float
    rss_peak_mb: float
    maxrss_mb: float
    loadavg_1m: float
    digest: str = ""
    value_bytes_avg: float = 0.0


class RssSampler:
    """Samples this process's RSS from a thread while a block runs; keeps the peak."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._proc = psutil.Process()
        self._done = threading.Event()

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._done.wait(self.interval)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        """Sample during the block."""
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._done.set()
            thread.join()
            self.peak = max(self.peak, self._proc.memory_info().rss)


@dataclass
class Clock:
    """Wall and CPU time of a window, plus the duration of each batch in it."""

    started: float = 0.0
    cpu_started: float = 0.0
    ended: float = 0.0
    cpu_ended: float = 0.0
    batches: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.ended, self.cpu_ended = time.perf_counter(), time.process_time()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Time one batch (a produce transaction, or a consumer commit)."""
        t0 = time.perf_counter()
        yield
        self.batches.append(time.perf_counter() - t0)


def _mb(n: float) -> float:
    return round(n / 2**20, 1)


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _freeze_heap() -> int:
    """Move the pre-built inputs out of the GC's reach so no side pays to re-scan them;
    returns the RSS at this point."""
    gc.collect()
    gc.freeze()
    return int(psutil.Process().memory_info().rss)


def _measurement(kind: str, n: int, clock: Clock, rss_before: int, sampler: RssSampler,
                 **extra: Any) -> Measurement:
    seconds, cpu_s = clock.ended - clock.started, clock.cpu_ended - clock.cpu_started
    ms = [s * 1000 for s in clock.batches]
    return Measurement(
        kind=kind, events=n, seconds=round(seconds, 4), events_per_s=round(n / seconds, 1),
        cpu_s=round(cpu_s, 4), cpu_us_per_event=round(cpu_s / n * 1e6, 2),
        batches=len(ms), batch_ms_p50=round(_pct(ms, 50), 2), batch_ms_p95=round(_pct(ms, 95), 2),
        slow_batches=sum(1 for s in clock.batches if s > SLOW_BATCH_S),
        rss_before_mb=_mb(rss_before), rss_peak_mb=_mb(sampler.peak),
        maxrss_mb=_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        loadavg_1m=round(os.getloadavg()[0], 2), **extra,
    )


# -- produce ---------------------------------------------------------------------------------


class PagePoller:
    """A Poller whose upstream is a list of pre-built pages; the cursor is the next page."""

    name = "bench-pages"

    def __init__(self, tenant: str, pages: list[list[Outbound]]) -> None:
        self.tenant = tenant
        self._pages = pages

    async def poll(self, cursor: Any) -> PollResult:
        page = int(cursor or 0)
        return PollResult(events=self._pages[page], cursor=page + 1, more=page + 1 < len(self._pages))


def _produce_digest(events: list[CloudEvent]) -> tuple[str, float]:
    values = [(e.key(), e.to_bytes()) for e in events]
    digest = records_digest([record_digest(k, v, [CONTENT_TYPE_HEADER]) for k, v in values])
    return digest, round(sum(len(v) for _, v in values) / len(values), 1)


async def produce_frame(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """Publish ``n`` events through ``PollerRunner.run_once``, ``page`` per transaction."""
    events = list(iter_events(n))
    digest, value_avg = _produce_digest(events)
    cursors = StateStore(bootstrap, CURSORS)
    await cursors.restore()
    tenant = f"bench-{uuid.uuid4().hex[:8]}"  # a fresh cursor and transactional id per run
    poller = PagePoller(tenant, pages([Outbound(topic, e) for e in events], page))
    del events
    sampler, clock = RssSampler(), Clock()
    async with TransactionalProducer(bootstrap, f"bench.frames.{tenant}") as producer:
        runner = PollerRunner(poller, producer, cursors, interval=0.0)
        rss_before = _freeze_heap()
        with sampler.sampling():
            clock.start()
            more = True
            while more:
                with clock.batch():
                    more = (await runner.run_once()).more
            clock.stop()
    return _measurement("produce-frame", n, clock, rss_before, sampler, digest=digest, value_bytes_avg=value_avg)


async def _produce_raw(kind: str, bootstrap: str, topic: str, n: int, page: int, serialize: bool) -> Measurement:
    headers = [CONTENT_TYPE_HEADER]
    if serialize:
        events: list[Any] = list(iter_events(n))
        digest, value_avg = _produce_digest(events)
    else:
        # The raw side keeps only bytes, serialised now, outside the clock. orjson.dumps leaves each
        # small result in a ~4 KiB allocation; exact-size copies keep 100k values near 100 MB, not 400.
        events = [(e.key(), bytes(memoryview(e.to_bytes()))) for e in iter_events(n)]
        digest = records_digest([record_digest(k, v, headers) for k, v in events])
        value_avg = round(sum(len(v) for _, v in events) / n, 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"bench.raw.{uuid.uuid4().hex[:8]}",
                                **PRODUCER_SETTINGS)
    await producer.start()
    sampler, clock = RssSampler(), Clock()
    try:
        rss_before = _freeze_heap()
        with sampler.sampling():
            clock.start()
            for chunk in pages(events, page):
                with clock.batch():
                    async with producer.transaction():
                        if serialize:
                            for event in chunk:
                                await producer.send(topic, value=event.to_bytes(), key=event.key(), headers=headers)
                        else:
                            for key, value in chunk:
                                await producer.send(topic, value=value, key=key, headers=headers)
            clock.stop()
    finally:
        await producer.stop()
    return _measurement(kind, n, clock, rss_before, sampler, digest=digest, value_bytes_avg=value_avg)


async def produce_raw(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """The same bytes through a bare transactional producer, ``page`` records per transaction."""
    return await _produce_raw("produce-raw", bootstrap, topic, n, page, serialize=False)


async def produce_raw_serialize(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """``produce_raw`` that serialises each event inside the clock, as the frame does."""
    return await _produce_raw("produce-raw-serialize", bootstrap, topic, n, page, serialize=True)


# -- consume ---------------------------------------------------------------------------------


class NoopHandler:
    """A Handler with a no-op target: no I/O, every event is a NOOP. Stops the runner after ``n``."""

    def __init__(self, name: str, topic: str, n: int, stop: StopToken, clock: Clock) -> None:
        self.name, self.topics = name, (topic,)
        self.n, self.stop, self.clock = n, stop, clock
        self.seen = 0

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome:
        if self.seen == 0:
            self.clock.start()
        self.seen += 1
        if self.seen >= self.n:
            self.stop.set()  # the runner commits this batch, then leaves its loop
        return Outcome.NOOP


class TimedProducer(TransactionalProducer):
    """A TransactionalProducer that times each transaction (the handler frame's commit step)
    and stops the clock at the end of every one: the last one covers the last record."""

    def __init__(self, bootstrap: str, transactional_id: str, clock: Clock) -> None:
        super().__init__(bootstrap, transactional_id)
        self.clock = clock

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        with self.clock.batch():
            async with super().transaction() as txn:
                yield txn
        self.clock.stop()


async def consume_frame(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """Read ``n`` records through ``HandlerRunner`` with a no-op handler, ``page`` records per batch."""
    name = f"bench{uuid.uuid4().hex[:8]}"
    view = LedgerView(bootstrap)  # empty here: the bench's handler writes no ledger entries
    stop, sampler, clock = StopToken(), RssSampler(), Clock()
    handler = NoopHandler(name, topic, n, stop, clock)
    rss_before = _freeze_heap()
    async with TimedProducer(bootstrap, f"bench.frames.{name}", clock) as producer:
        runner = HandlerRunner(handler, kafka=bootstrap, producer=producer, view=view,
                               settings=HandlerSettings(batch_size=page), group_id=f"bench.frames.{name}")
        with sampler.sampling():
            await runner.run(stop)
    if handler.seen != n:
        raise RuntimeError(f"the handler saw {handler.seen} of {n} records")
    return _measurement("consume-frame", n, clock, rss_before, sampler)


Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


async def _consume_raw(kind: str, bootstrap: str, topic: str, n: int, page: int,
                       parse: bool, commit_in_txn: bool) -> Measurement:
    group = f"bench.raw.{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id="bench-raw",
                                **GROUP_SETTINGS)
    producer: AIOKafkaProducer | None = None
    if commit_in_txn:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=group, **PRODUCER_SETTINGS)
        await producer.start()

    async def commit(batch: Batch) -> None:
        if producer is None:
            await consumer.commit()
            return
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        async with producer.transaction():
            await producer.send_offsets_to_transaction(offsets, group)

    sampler, clock = RssSampler(), Clock()
    rss_before = _freeze_heap()
    await consumer.start()
    seen = 0
    try:
        with sampler.sampling():
            while seen < n:
                batch = await consumer.getmany(timeout_ms=500, max_records=page)
                if not batch:
                    continue
                if seen == 0:
                    clock.start()
                for records in batch.values():
                    seen += len(records)
                    if parse:
                        for rec in records:
                            CloudEvent.from_bytes(rec.value)
                with clock.batch():
                    await commit(batch)
            clock.stop()
    finally:
        await consumer.stop()
        if producer is not None:
            await producer.stop()
    if seen != n:
        raise RuntimeError(f"the raw consumer saw {seen} of {n} records")
    return _measurement(kind, n, clock, rss_before, sampler)


async def consume_raw(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """Read ``n`` records with a bare read_committed consumer, ``commit()`` after every getmany batch."""
    return await _consume_raw("consume-raw", bootstrap, topic, n, page, parse=False, commit_in_txn=False)


async def consume_raw_parse(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """``consume_raw`` that also parses each record into a CloudEvent."""
    return await _consume_raw("consume-raw-parse", bootstrap, topic, n, page, parse=True, commit_in_txn=False)


async def consume_raw_parse_txn(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """``consume_raw_parse`` that commits offsets in a producer transaction per batch."""
    return await _consume_raw("consume-raw-parse-txn", bootstrap, topic, n, page, parse=True, commit_in_txn=True)


RUNNERS: dict[str, Callable[[str, str, int, int], Awaitable[Measurement]]] = {
    "produce-frame": produce_frame,
    "produce-raw": produce_raw,
    "produce-raw-serialize": produce_raw_serialize,
    "consume-frame": consume_frame,
    "consume-raw": consume_raw,
    "consume-raw-parse": consume_raw_parse,
    "consume-raw-parse-txn": consume_raw_parse_txn,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.frames_worker", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(RUNNERS))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--page", type=int, default=500)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    configure_logging("warning", sys.stderr)
    result = anyio.run(RUNNERS[args.kind], args.bootstrap, args.topic, args.events, args.page)
    with open(args.out, "w") as f:
        json.dump(asdict(result), f)


if __name__ == "__main__":
    main()
