"""One measurement of ``bench.frames`` in a fresh process, so each gets its own peak RSS.

    python -m bench.frames_worker KIND --bootstrap B --topic T --events N --page P --out result.json

KIND is one of ``produce-frame``, ``produce-raw``, ``consume-frame``, ``consume-raw``.
The orchestrator (``bench.frames``) starts one of these per measurement and reads the
JSON it writes to ``--out``.

Produce: the same deterministic events are built in every process before the clock
starts, so both sides send identical keys, values and headers, ``page`` records per
transaction. The frame serialises each CloudEvent inside the timed section (that is part
of what the frame does); the raw side sends bytes serialised before timing.

Consume: the clock runs from the first record handed over by ``getmany`` to the end of the
commit that covers the last record. The frame commits offsets in a Kafka transaction per
batch; the raw consumer calls ``commit()`` once per ``getmany`` batch.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.abconnect import STANDARD_CHANGED, ABConnectChangeV1, AffectedPropertyV1
from schemas.envelope import CONTENT_TYPE_HEADER, CloudEvent, make_event
from worker.handler_frame import HandlerRunner, Ledger
from worker.kafka.producer import Transaction, TransactionalProducer
from worker.logs import configure_logging
from worker.metrics import Outcome
from worker.poller_frame import Outbound, PollerRunner, PollResult
from worker.shutdown import StopToken
from worker.state_store import StateStore
from worker.topics import CURSORS, LEDGER

KINDS = ("produce-frame", "produce-raw", "consume-frame", "consume-raw")
TENANT = "bench-district"
SOURCE = "abconnect:partner/bench"
EPOCH = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
GROUP_SETTINGS: dict[str, Any] = {
    # The consumer settings HandlerRunner._consumer uses; the raw consumer copies them.
    "isolation_level": "read_committed",
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "max_poll_interval_ms": 600_000,
}
PRODUCER_SETTINGS: dict[str, Any] = {
    # The settings TransactionalProducer gives its AIOKafkaProducer; the raw producer copies them.
    "enable_idempotence": True,
    "acks": "all",
    "linger_ms": 5,
    "max_batch_size": 512 * 1024,
    "max_request_size": 4 * 1024 * 1024,
    "transaction_timeout_ms": 30000,
}


# -- the events ------------------------------------------------------------------------------


def build_events(n: int) -> list[CloudEvent]:
    """``n`` realistic AB Connect ``standard.changed`` events, identical in every process."""
    events = []
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
        events.append(make_event(
            tenant=TENANT, source=SOURCE, type=STANDARD_CHANGED, subject=f"{TENANT}/standard/{guid}",
            version=str(change.seq), data=change, time=when,
        ))
    return events


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
    batches: int
    batch_ms_p50: float
    batch_ms_p95: float
    rss_before_mb: float
    rss_peak_mb: float
    maxrss_mb: float
    digest: str = ""
    value_bytes_avg: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


class RssSampler:
    """Samples this process's RSS from a thread while a block runs; keeps the peak."""

    def __init__(self, interval: float = 0.02) -> None:
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


def _mb(n: float) -> float:
    return round(n / 2**20, 1)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _freeze_heap() -> None:
    """Move the pre-built inputs out of the GC's reach so neither side pays to re-scan them."""
    gc.collect()
    gc.freeze()


def _measurement(kind: str, n: int, seconds: float, batch_s: list[float], rss_before: int,
                 sampler: RssSampler, **extra: Any) -> Measurement:
    ms = [s * 1000 for s in batch_s]
    return Measurement(
        kind=kind, events=n, seconds=round(seconds, 4), events_per_s=round(n / seconds, 1), batches=len(ms),
        batch_ms_p50=round(_pct(ms, 50), 2), batch_ms_p95=round(_pct(ms, 95), 2),
        rss_before_mb=_mb(rss_before), rss_peak_mb=_mb(sampler.peak),
        maxrss_mb=_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024), **extra,
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


async def produce_frame(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """Publish ``n`` events through ``PollerRunner.run_once``, ``page`` per transaction."""
    events = build_events(n)
    digest = records_digest([record_digest(e.key(), e.to_bytes(), [CONTENT_TYPE_HEADER]) for e in events])
    value_avg = sum(len(e.to_bytes()) for e in events) / n
    cursors = StateStore(bootstrap, CURSORS)
    await cursors.restore()
    # A fresh tenant per run: the cursor starts empty and the transactional id is new.
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    poller = PagePoller(tenant, pages([Outbound(topic, e) for e in events], page))
    sampler = RssSampler()
    async with TransactionalProducer(bootstrap, f"bench.frames.{tenant}") as producer:
        runner = PollerRunner(poller, producer, cursors, interval=0.0)
        _freeze_heap()
        rss_before = psutil.Process().memory_info().rss
        batch_s: list[float] = []
        with sampler.sampling():
            started = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                result = await runner.run_once()
                batch_s.append(time.perf_counter() - t0)
                if not result.more:
                    break
            seconds = time.perf_counter() - started
    return _measurement("produce-frame", n, seconds, batch_s, rss_before, sampler,
                        digest=digest, value_bytes_avg=round(value_avg, 1))


async def produce_raw(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """Publish the same bytes with a bare transactional AIOKafkaProducer, ``page`` per transaction."""
    events = build_events(n)
    headers = [CONTENT_TYPE_HEADER]
    records = [(e.key(), e.to_bytes()) for e in events]
    del events  # the raw side holds only bytes
    digest = records_digest([record_digest(k, v, headers) for k, v in records])
    value_avg = sum(len(v) for _, v in records) / n
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"bench.raw.{uuid.uuid4().hex[:8]}", **PRODUCER_SETTINGS
    )
    await producer.start()
    sampler = RssSampler()
    try:
        _freeze_heap()
        rss_before = psutil.Process().memory_info().rss
        batch_s: list[float] = []
        with sampler.sampling():
            started = time.perf_counter()
            for chunk in pages(records, page):
                t0 = time.perf_counter()
                async with producer.transaction():
                    for key, value in chunk:
                        await producer.send(topic, value=value, key=key, headers=headers)
                batch_s.append(time.perf_counter() - t0)
            seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    return _measurement("produce-raw", n, seconds, batch_s, rss_before, sampler,
                        digest=digest, value_bytes_avg=round(value_avg, 1))


# -- consume ---------------------------------------------------------------------------------


class NoopHandler:
    """A Handler with a no-op target: no I/O, every event is a NOOP. Stops the runner after ``n``."""

    def __init__(self, name: str, topic: str, n: int, stop: StopToken) -> None:
        self.name, self.topics = name, (topic,)
        self.n, self.stop = n, stop
        self.seen = 0
        self.first_at: float | None = None

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome:
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.seen += 1
        if self.seen >= self.n:
            self.stop.set()  # the runner commits this batch, then leaves its loop
        return Outcome.NOOP


class TimedProducer(TransactionalProducer):
    """A TransactionalProducer that times each transaction (the handler frame's commit step)."""

    def __init__(self, bootstrap: str, transactional_id: str) -> None:
        super().__init__(bootstrap, transactional_id)
        self.durations: list[float] = []
        self.last_commit_at = 0.0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        t0 = time.perf_counter()
        async with super().transaction() as txn:
            yield txn
        self.last_commit_at = time.perf_counter()
        self.durations.append(self.last_commit_at - t0)


async def consume_frame(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """Read ``n`` records through ``HandlerRunner`` with a no-op handler, ``page`` records per batch."""
    name = f"bench{uuid.uuid4().hex[:8]}"
    ledger = StateStore(bootstrap, LEDGER, prefix=f"{name}/")
    await ledger.restore()
    stop = StopToken()
    handler = NoopHandler(name, topic, n, stop)
    sampler = RssSampler()
    _freeze_heap()
    rss_before = psutil.Process().memory_info().rss
    async with TimedProducer(bootstrap, f"bench.frames.{name}") as producer:
        runner = HandlerRunner(handler, bootstrap=bootstrap, producer=producer, ledger_store=ledger,
                               max_records=page, group_id=f"bench.frames.{name}")
        with sampler.sampling():
            await runner.run(stop)
    if handler.first_at is None or handler.seen != n:
        raise RuntimeError(f"the handler saw {handler.seen} of {n} records")
    seconds = producer.last_commit_at - handler.first_at
    return _measurement("consume-frame", n, seconds, producer.durations, rss_before, sampler,
                        notes={"commit": "transaction per batch (send_offsets_to_transaction)"})


async def consume_raw(bootstrap: str, topic: str, n: int, page: int) -> Measurement:
    """Read ``n`` records with a bare read_committed consumer, ``commit()`` after every getmany batch."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench.raw.{uuid.uuid4().hex[:8]}",
                                client_id="bench-raw", **GROUP_SETTINGS)
    sampler = RssSampler()
    _freeze_heap()
    rss_before = psutil.Process().memory_info().rss
    await consumer.start()
    try:
        seen = 0
        first_at: float | None = None
        commit_s: list[float] = []
        with sampler.sampling():
            while seen < n:
                batch = await consumer.getmany(timeout_ms=500, max_records=page)
                if not batch:
                    continue
                if first_at is None:
                    first_at = time.perf_counter()
                seen += sum(len(records) for records in batch.values())
                t0 = time.perf_counter()
                await consumer.commit()
                commit_s.append(time.perf_counter() - t0)
            ended = time.perf_counter()
    finally:
        await consumer.stop()
    if first_at is None or seen != n:
        raise RuntimeError(f"the raw consumer saw {seen} of {n} records")
    return _measurement("consume-raw", n, ended - first_at, commit_s, rss_before, sampler,
                        notes={"commit": "consumer.commit() per getmany batch"})


RUNNERS = {
    "produce-frame": produce_frame,
    "produce-raw": produce_raw,
    "consume-frame": consume_frame,
    "consume-raw": consume_raw,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.frames_worker", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS)
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
