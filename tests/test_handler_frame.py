"""The handler frame against the real broker and a real HTTP target."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import anyio
import orjson
import pytest

from schemas.dead_letter import DeadLetter
from schemas.envelope import make_event
from simulators.faults import FaultConfig
from simulators.server import ThreadedServer
from tests.frame_apps import COUNTER_TYPE, Item, KillPlan, KVHandler
from tests.kafka_tools import group_lag, read_topic
from tests.kv_target import KVTarget
from worker.backoff import Backoff
from worker.handler_frame import HandlerRunner, group_id_for
from worker.kafka.producer import TransactionalProducer
from worker.ledger import LedgerView
from worker.metrics import total
from worker.shutdown import StopToken
from worker.topics import TopicSpec, all_topics, dlq_topic, ensure_topics

pytestmark = [pytest.mark.anyio, pytest.mark.slow(40)]


async def _publish(bootstrap: str, topic: str, items: list[Item], tenant: str = "t") -> None:
    async with TransactionalProducer(bootstrap, f"test.source.{topic}") as producer, producer.transaction() as txn:
        for item in items:
            await txn.send_event(topic, make_event(
                tenant=tenant, source="test:kv", type=COUNTER_TYPE, subject=f"{tenant}/kv/{item.key}",
                version=f"{item.key}:{item.version}", data=item,
            ))


async def _setup(bootstrap: str, unique: str, name: str) -> str:
    topic = f"test.handler.{unique}"
    await ensure_topics(bootstrap, [*all_topics(handlers=(name,)), TopicSpec(topic, partitions=3)])
    return topic


def _versions(n_keys: int, n_versions: int) -> list[Item]:
    return [Item(key=f"k{k}", version=v, value=f"k{k}-v{v}")
            for v in range(1, n_versions + 1) for k in range(n_keys)]


def _handler_proc(bootstrap: str, topic: str, name: str, target: str, kill_at: str | None = None
                  ) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tests.frame_apps", "handler", "--bootstrap", bootstrap, "--topic", topic,
           "--name", name, "--target", target, "--batch", "40"]
    if kill_at:
        cmd += ["--kill-at", kill_at]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _wait_drained(bootstrap: str, name: str, topic: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while await group_lag(bootstrap, group_id_for(name), [topic]) > 0:
        assert time.monotonic() < deadline, "handler did not catch up"
        await anyio.sleep(0.3)


async def test_handler_killed_mid_batch_applies_every_event_exactly_once(
    kafka_bootstrap: str, unique: str
) -> None:
    name = f"kv{unique}"
    topic = await _setup(kafka_bootstrap, unique, name)
    items = _versions(n_keys=40, n_versions=5)  # 200 events, 40 per batch
    await _publish(kafka_bootstrap, topic, items)
    target = KVTarget()
    with ThreadedServer(target.app()) as server:
        for kill_at in ("after_write:17", "after_write:55", "before_commit:2"):
            proc = _handler_proc(kafka_bootstrap, topic, name, server.url, kill_at)
            assert proc.wait(timeout=60) == -signal.SIGKILL, proc.stderr.read().decode()  # type: ignore[union-attr]
        proc = _handler_proc(kafka_bootstrap, topic, name, server.url)
        await _wait_drained(kafka_bootstrap, name, topic)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()  # type: ignore[union-attr]
    writes = Counter(target.writes)
    assert set(writes) == {(i.key, i.version) for i in items}, "an event was never applied"
    assert max(writes.values()) == 1, f"applied twice: {[w for w, n in writes.items() if n > 1]}"
    assert {k: v["version"] for k, v in target.items.items()} == {f"k{k}": 5 for k in range(40)}
    view = LedgerView(kafka_bootstrap)
    await view.restore()
    assert {k: v["version"] for k, v in view.items(f"{name}/")} == {f"{name}/kv/k{k}": 5 for k in range(40)}


async def _run_in_process(bootstrap: str, name: str, topic: str, target_url: str) -> None:
    view = LedgerView(bootstrap)
    await view.restore()
    handler = KVHandler(name, topic, target_url, KillPlan(None))
    stop = StopToken()
    async with TransactionalProducer(bootstrap, f"test.handler.{name}") as producer:
        runner = HandlerRunner(handler, kafka=bootstrap, producer=producer, view=view,
                               backoff=Backoff(base=0.02, cap=0.2))
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.run, stop)
            await _wait_drained(bootstrap, name, topic)
            stop.set()


def _count(name: str, outcome: str) -> float:
    return total("edusync_handler_events_total", handler=name, outcome=outcome)


async def test_permanent_failure_goes_to_dlq_and_the_partition_moves_on(
    kafka_bootstrap: str, unique: str
) -> None:
    name = f"kv{unique}"
    topic = await _setup(kafka_bootstrap, unique, name)
    items = [Item(key="a", version=1, value="x"), Item(key="a", version=2, value="bad", poison=True),
             Item(key="a", version=3, value="y"), Item(key="b", version=1, value="z")]
    await _publish(kafka_bootstrap, topic, items)
    target = KVTarget()
    with ThreadedServer(target.app()) as server:
        await _run_in_process(kafka_bootstrap, name, topic, server.url)
    assert target.items == {"a": {"version": 3, "value": "y"}, "b": {"version": 1, "value": "z"}}
    dead = [DeadLetter.model_validate(orjson.loads(r.value)) for r in await read_topic(kafka_bootstrap,
                                                                                       dlq_topic(name))]
    assert len(dead) == 1
    assert "poison pill for key a" in dead[0].reason
    assert dead[0].attempts == 1 and dead[0].original.topic == topic
    assert orjson.loads(dead[0].original.value_bytes() or b"{}")["data"]["version"] == 2
    assert _count(name, "dead_lettered") == 1 and _count(name, "applied") == 3


async def test_unparseable_record_is_dead_lettered_not_crashing(kafka_bootstrap: str, unique: str) -> None:
    name = f"kv{unique}"
    topic = await _setup(kafka_bootstrap, unique, name)
    async with TransactionalProducer(kafka_bootstrap, f"test.junk.{unique}") as producer, \
            producer.transaction() as txn:
        await txn.send(topic, b"t/kv/x", b"<html>not an event</html>")
    await _publish(kafka_bootstrap, topic, [Item(key="x", version=1, value="ok")])
    target = KVTarget()
    with ThreadedServer(target.app()) as server:
        await _run_in_process(kafka_bootstrap, name, topic, server.url)
    dead = [DeadLetter.model_validate(orjson.loads(r.value)) for r in await read_topic(kafka_bootstrap,
                                                                                       dlq_topic(name))]
    assert [d.error_type for d in dead] == ["EnvelopeError"]
    assert dead[0].original.value == "<html>not an event</html>"
    assert target.items == {"x": {"version": 1, "value": "ok"}}


async def test_transient_failures_retry_and_skip_nothing(kafka_bootstrap: str, unique: str) -> None:
    name = f"kv{unique}"
    topic = await _setup(kafka_bootstrap, unique, name)
    items = _versions(n_keys=10, n_versions=2)
    await _publish(kafka_bootstrap, topic, items)
    target = KVTarget()
    target.faults.set(FaultConfig(error_rate=1.0, remaining=6))
    with ThreadedServer(target.app()) as server:
        await _run_in_process(kafka_bootstrap, name, topic, server.url)
    assert target.faults.injected == 6
    assert Counter(target.writes) == Counter((i.key, i.version) for i in items)
    assert _count(name, "retried") == 6
    assert _count(name, "dead_lettered") == 0
    assert await read_topic(kafka_bootstrap, dlq_topic(name)) == []


async def test_sigterm_finishes_in_flight_event_commits_and_exits_zero(
    kafka_bootstrap: str, unique: str
) -> None:
    name = f"kv{unique}"
    topic = await _setup(kafka_bootstrap, unique, name)
    await _publish(kafka_bootstrap, topic, _versions(n_keys=300, n_versions=1))
    target = KVTarget()
    target.faults.set(FaultConfig(latency_seconds=0.01))
    with ThreadedServer(target.app()) as server:
        proc = _handler_proc(kafka_bootstrap, topic, name, server.url)
        while len(target.writes) < 30:
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            await anyio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()  # type: ignore[union-attr]
    applied = len(target.writes)
    assert 30 <= applied < 300, "SIGTERM should stop the handler part-way"
    lag = await group_lag(kafka_bootstrap, group_id_for(name), [topic])
    assert 300 - lag == applied, "committed offsets must match exactly what was applied"
