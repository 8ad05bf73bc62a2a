"""The handler frame's second version on the real broker: partitions in parallel, batch handlers,
durable deferral, and the ledger view shared across handlers and processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import anyio
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.dead_letter import DeadLetter
from schemas.envelope import CloudEvent, make_event
from simulators.server import ThreadedServer
from tests.frame_apps import COUNTER_TYPE, Item, KillPlan, KVHandler
from tests.kafka_tools import group_lag, read_topic
from tests.kv_target import KVTarget
from worker.backoff import Backoff
from worker.errors import PermanentFailure
from worker.handler_frame import HandlerRunner, HandlerSettings, Result, group_id_for
from worker.kafka.producer import TransactionalProducer
from worker.ledger import Ledger, LedgerView
from worker.metrics import Outcome, total
from worker.shutdown import StopToken
from worker.topics import DEFERRED, TopicSpec, all_topics, dlq_topic, ensure_topics

pytestmark = pytest.mark.anyio


def _event(item: Item, tenant: str = "t") -> CloudEvent:
    return make_event(tenant=tenant, source="test:kv", type=COUNTER_TYPE, subject=f"{tenant}/kv/{item.key}",
                      version=f"{item.key}:{item.version}", data=item)


async def _to_partitions(bootstrap: str, topic: str, items: list[tuple[int, Item]]) -> None:
    """Publish each item to the given partition (a plain producer: read_committed reads it too)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, item in items:
            event = _event(item)
            await producer.send_and_wait(topic, event.to_bytes(), key=event.key(), partition=partition)
    finally:
        await producer.stop()


async def _publish(bootstrap: str, topic: str, items: list[Item]) -> None:
    async with TransactionalProducer(bootstrap, f"test.lanes.{topic}") as producer, producer.transaction() as txn:
        for item in items:
            await txn.send_event(topic, _event(item))


async def _topic(bootstrap: str, unique: str, name: str, partitions: int) -> str:
    topic = f"test.lanes.{unique}"
    await ensure_topics(bootstrap, [*all_topics(handlers=(name,)), TopicSpec(topic, partitions=partitions)])
    return topic


def _count(handler: str, outcome: Outcome) -> float:
    return total("edusync_handler_events_total", handler=handler, outcome=outcome.value)


async def _until(check: Callable[[], bool | Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = check()
        if not isinstance(done, bool):
            done = await done
        if done:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.1)


async def _drained(bootstrap: str, name: str, topic: str) -> bool:
    return await group_lag(bootstrap, group_id_for(name), [topic]) == 0


async def test_a_failing_partition_does_not_delay_the_others(kafka_bootstrap: str, unique: str) -> None:
    name = f"lanes{unique}"
    topic = await _topic(kafka_bootstrap, unique, name, partitions=3)
    stuck = [(0, Item(key=f"bad-{i}", version=1, value="x")) for i in range(20)]
    flowing = [(p, Item(key=f"ok{p}-{i}", version=1, value="y")) for p in (1, 2) for i in range(150)]
    await _to_partitions(kafka_bootstrap, topic, stuck + flowing)
    target = KVTarget()
    target.failing_prefix = "bad-"  # every request for partition 0's keys answers 503
    view = LedgerView(kafka_bootstrap)
    await view.restore()
    stop = StopToken()
    with ThreadedServer(target.app()) as server:
        handler = KVHandler(name, topic, server.url, KillPlan(None))
        async with TransactionalProducer(kafka_bootstrap, f"test.lanes.{name}") as producer:
            runner = HandlerRunner(handler, kafka=kafka_bootstrap, producer=producer, view=view,
                                   settings=HandlerSettings(batch_size=25), backoff=Backoff(base=0.05, cap=0.3))
            async with anyio.create_task_group() as tg:
                tg.start_soon(runner.run, stop)
                await _until(lambda: len(target.writes) == len(flowing), 60, "the healthy partitions")
                # Everything of partitions 1 and 2 is applied while partition 0 still fails.
                applied_while_stuck = Counter(key.split("-")[0] for key, _ in target.writes)
                assert applied_while_stuck == {"ok1": 150, "ok2": 150}
                assert _count(name, Outcome.RETRIED) > 0, "partition 0 must have been retried meanwhile"
                target.failing_prefix = None
                await _until(lambda: len(target.writes) == len(stuck) + len(flowing), 60, "partition 0 to recover")
                await _until(lambda: _drained(kafka_bootstrap, name, topic), 30, "the commit")
                stop.set()
    assert Counter(target.writes) == Counter((i.key, 1) for _, i in stuck + flowing), "each applied exactly once"
    assert await read_topic(kafka_bootstrap, dlq_topic(name)) == []


def _handler_proc(bootstrap: str, topic: str, name: str, target: str, *, max_defer: float = 3600.0
                  ) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tests.frame_apps", "handler", "--bootstrap", bootstrap, "--topic", topic,
           "--name", name, "--target", target, "--batch", "20", "--max-defer", str(max_defer)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _parked(bootstrap: str, name: str) -> dict[str, bytes | None]:
    """The handler's entries on ``edusync._deferred``, latest value per key (None: resolved)."""
    out: dict[str, bytes | None] = {}
    for rec in await read_topic(bootstrap, DEFERRED):
        if rec.key and rec.key.decode().startswith(f"{name}/"):
            out[rec.key.decode()] = rec.value
    return out


async def test_a_parked_event_survives_sigkill_and_is_applied_once_when_its_prerequisite_appears(
    kafka_bootstrap: str, unique: str,
) -> None:
    name = f"park{unique}"
    topic = await _topic(kafka_bootstrap, unique, name, partitions=1)
    target = KVTarget()
    with ThreadedServer(target.app()) as server:
        # b needs a, which is not in the target yet; c, behind b in the same partition, must not wait.
        await _publish(kafka_bootstrap, topic, [Item(key="b", version=1, value="needs a", requires="a"),
                                                 Item(key="c", version=1, value="free")])
        proc = _handler_proc(kafka_bootstrap, topic, name, server.url)
        await _until(lambda: ("c", 1) in target.writes, 60, "c to be applied past the parked b")
        deadline = time.monotonic() + 30
        while not any(v is not None for v in (await _parked(kafka_bootstrap, name)).values()):
            assert time.monotonic() < deadline, "b was never parked durably"
            await anyio.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert ("b", 1) not in target.writes
        # The prerequisite appears through the stream; a restarted handler applies a, then b at once.
        await _publish(kafka_bootstrap, topic, [Item(key="a", version=1, value="here")])
        proc = _handler_proc(kafka_bootstrap, topic, name, server.url)
        try:
            await _until(lambda: ("b", 1) in target.writes, 60, "b after its prerequisite")
            deadline = time.monotonic() + 30
            while any(v is not None for v in (await _parked(kafka_bootstrap, name)).values()):
                assert time.monotonic() < deadline, "the parked entry was never resolved"
                await anyio.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert Counter(target.writes) == {("a", 1): 1, ("b", 1): 1, ("c", 1): 1}
    assert target.writes.index(("a", 1)) < target.writes.index(("b", 1))
    assert await read_topic(kafka_bootstrap, dlq_topic(name)) == []


async def test_a_prerequisite_that_never_appears_is_dead_lettered_with_that_reason(
    kafka_bootstrap: str, unique: str,
) -> None:
    name = f"never{unique}"
    topic = await _topic(kafka_bootstrap, unique, name, partitions=1)
    await _publish(kafka_bootstrap, topic, [Item(key="orphan", version=1, value="x", requires="ghost"),
                                             Item(key="orphan", version=2, value="y")])
    target = KVTarget()
    with ThreadedServer(target.app()) as server:
        proc = _handler_proc(kafka_bootstrap, topic, name, server.url, max_defer=2.0)
        try:
            deadline = time.monotonic() + 60
            while not (letters := await read_topic(kafka_bootstrap, dlq_topic(name))):
                assert time.monotonic() < deadline, "no dead letter"
                await anyio.sleep(0.3)
            # The later event of the same subject waited behind it, then had its turn.
            await _until(lambda: ("orphan", 2) in target.writes, 30, "the event queued behind")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
    [letter] = [DeadLetter.model_validate(orjson.loads(r.value)) for r in letters]
    assert letter.reason.startswith("PermanentFailure: prerequisite never appeared: key ghost is not in the target")
    assert orjson.loads(letter.original.value_bytes() or b"{}")["data"]["key"] == "orphan"
    assert target.writes == [("orphan", 2)]


class _Reader:
    """A second handler that looks up the first handler's ledger entry for each event's key."""

    def __init__(self, name: str, topic: str, other: str) -> None:
        self.name, self.topics, self.other = name, (topic,), other
        self.seen: list[object] = []

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome:
        self.seen.append(ledger.read(self.other, f"kv/{event.payload(Item).key}"))
        return Outcome.NOOP


async def test_a_second_handler_reads_the_first_handlers_ledger_entry_written_after_both_started(
    kafka_bootstrap: str, unique: str,
) -> None:
    writer, reader_name = f"writer{unique}", f"reader{unique}"
    source = await _topic(kafka_bootstrap, unique, writer, partitions=1)
    probes = f"{source}.probes"
    await ensure_topics(kafka_bootstrap, [*all_topics(handlers=(reader_name,)), TopicSpec(probes, partitions=1)])
    target = KVTarget()
    view = LedgerView(kafka_bootstrap)  # this process's view; the writer runs in another process
    await view.restore()
    reader = _Reader(reader_name, probes, writer)
    stop = StopToken()
    with ThreadedServer(target.app()) as server:
        proc = _handler_proc(kafka_bootstrap, source, writer, server.url)
        try:
            async with TransactionalProducer(kafka_bootstrap, f"test.reader.{unique}") as producer, \
                    anyio.create_task_group() as tg:
                tg.start_soon(view.follow)
                runner = HandlerRunner(reader, kafka=kafka_bootstrap, producer=producer, view=view)
                tg.start_soon(runner.run, stop)
                await runner.started.wait()
                # Both handlers run; only now does the writer apply x and record it in its ledger.
                await _publish(kafka_bootstrap, source, [Item(key="x", version=7, value="v")])
                await _until(lambda: view.get(f"{writer}/kv/x") is not None, 60, "the followed ledger entry")
                await _publish(kafka_bootstrap, probes, [Item(key="x", version=1, value="probe")])
                await _until(lambda: bool(reader.seen), 60, "the reader")
                stop.set()
                tg.cancel_scope.cancel()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert reader.seen == [{"version": 7}]
    assert view.followed >= 1


class _Batches:
    """A batch handler that records the size of each batch; key ``poison`` fails permanently."""

    def __init__(self, name: str, topic: str) -> None:
        self.name, self.topics = name, (topic,)
        self.sizes: list[int] = []
        self.applied: list[str] = []

    async def handle_batch(self, events: Sequence[CloudEvent], ledger: Ledger) -> Sequence[Result]:
        self.sizes.append(len(events))
        keys = [e.payload(Item).key for e in events]
        if "poison" in keys and len(keys) > 1:
            raise PermanentFailure("a poison event somewhere in this batch")
        if keys == ["poison"]:
            return [PermanentFailure("poison")]
        self.applied += keys
        return [Outcome.APPLIED] * len(events)


async def test_a_batch_handler_gets_a_partitions_events_at_once_and_a_bad_one_is_isolated(
    kafka_bootstrap: str, unique: str,
) -> None:
    name = f"batch{unique}"
    topic = await _topic(kafka_bootstrap, unique, name, partitions=1)
    keys = [f"k{i:03d}" for i in range(300)]
    keys.insert(150, "poison")
    await _publish(kafka_bootstrap, topic, [Item(key=k, version=1, value="v") for k in keys])
    handler = _Batches(name, topic)
    view = LedgerView(kafka_bootstrap)
    stop = StopToken()
    async with TransactionalProducer(kafka_bootstrap, f"test.batch.{name}") as producer:
        runner = HandlerRunner(handler, kafka=kafka_bootstrap, producer=producer, view=view,
                               settings=HandlerSettings(batch_size=100))
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.run, stop)
            await _until(lambda: len(handler.applied) == 300, 60, "every event")
            await _until(lambda: _drained(kafka_bootstrap, name, topic), 30, "the commit")
            stop.set()
    assert handler.applied == [k for k in keys if k != "poison"], "in partition order, each once"
    assert max(handler.sizes) == 100, "events arrive a batch at a time"
    letters = [DeadLetter.model_validate(orjson.loads(r.value)) for r in await read_topic(kafka_bootstrap,
                                                                                          dlq_topic(name))]
    assert [orjson.loads(d.original.value_bytes() or b"{}")["data"]["key"] for d in letters] == ["poison"]
