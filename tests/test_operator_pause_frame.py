"""An operator's pause in the handler frame itself: records fetched but not yet handled when the
pause comes stay buffered and are handled after the resume, each once (real broker, KV target)."""

from __future__ import annotations

import time
from collections import Counter

import anyio
import pytest

from schemas.envelope import make_event
from simulators.faults import FaultConfig
from simulators.server import ThreadedServer
from tests.frame_apps import COUNTER_TYPE, Item, KillPlan, KVHandler
from tests.kafka_tools import group_lag
from tests.kv_target import KVTarget
from worker.controls import Gate, current_controls, handler_control_name, request_pause
from worker.handler_frame import HandlerRunner, HandlerSettings, group_id_for
from worker.health import Health, State
from worker.kafka.producer import TransactionalProducer
from worker.ledger import LedgerView
from worker.shutdown import StopToken
from worker.topics import TopicSpec, all_topics, ensure_topics

pytestmark = pytest.mark.anyio

ITEMS = 30


async def _until(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.05)


async def test_records_buffered_when_the_pause_comes_are_handled_once_after_the_resume(
    kafka_bootstrap: str, unique: str,
) -> None:
    name, topic = f"pausing{unique}", f"test.pausing.{unique}"
    await ensure_topics(kafka_bootstrap, [*all_topics(handlers=(name,)), TopicSpec(topic, partitions=1)])
    async with TransactionalProducer(kafka_bootstrap, f"test.pausing.{unique}") as producer, \
            producer.transaction() as txn:
        for i in range(ITEMS):
            item = Item(key=f"k{i}", version=1, value="v")
            await txn.send_event(topic, make_event(tenant="t", source="test:kv", type=COUNTER_TYPE,
                                                   subject=f"t/kv/{item.key}", version=f"{item.key}:1", data=item))
    target = KVTarget()
    target.faults.set(FaultConfig(latency_seconds=0.05))  # slow enough that the lane is behind its buffer
    view = LedgerView(kafka_bootstrap)
    await view.restore()
    health, stop = Health(), StopToken()
    component = f"handler:{name}"
    with ThreadedServer(target.app()) as server:
        handler = KVHandler(name, topic, server.url, KillPlan(None))
        async with current_controls(kafka_bootstrap) as controls, \
                TransactionalProducer(kafka_bootstrap, f"test.pausing.h.{unique}") as producer, \
                anyio.create_task_group() as tg:
            runner = HandlerRunner(handler, kafka=kafka_bootstrap, producer=producer, view=view, health=health,
                                   settings=HandlerSettings(batch_size=1),
                                   gate=Gate(controls, handler_control_name(name)))
            tg.start_soon(runner.run, stop)
            await _until(lambda: len(target.writes) >= 3, "the first writes")
            await request_pause(kafka_bootstrap, handler_control_name(name), True)
            await _until(lambda: health.state(component) is State.HELD, "the pause")
            await anyio.sleep(0.5)  # a record in hand when the pause came is finished
            held = len(target.writes)
            assert held < ITEMS, "the pause came after everything was written: the test proves nothing"
            await anyio.sleep(1.5)
            assert len(target.writes) == held, "written while paused"
            await request_pause(kafka_bootstrap, handler_control_name(name), False)
            await _until(lambda: len(target.writes) >= ITEMS, "every record after the resume")
            await _until(lambda: health.state(component) is State.READY, "the resume")
            stop.set()
        assert Counter(key for key, _ in target.writes) == Counter(f"k{i}" for i in range(ITEMS))
        assert await group_lag(kafka_bootstrap, group_id_for(name), [topic]) == 0
