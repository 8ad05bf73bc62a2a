"""A slot runner marks the events a dead runner may have applied without committing: those from
the committed offset up to each partition's end at its start (``worker.recovery``); events that
arrive later are not marked, and neither is anything a runner outside slot mode reads."""

from __future__ import annotations

import anyio
import pytest

from schemas.envelope import CloudEvent
from tests.frame_apps import COUNTER_TYPE, Item
from tests.test_handler_frame import _publish
from worker.handler_frame import HandlerRunner
from worker.kafka.producer import TransactionalProducer
from worker.ledger import Ledger, LedgerView
from worker.metrics import Outcome
from worker.recovery import marking, recovering
from worker.shutdown import StopToken
from worker.topics import TopicSpec, all_topics, ensure_topics

pytestmark = [pytest.mark.anyio, pytest.mark.slow(40)]


class Recorder:
    """Notes, per event, whether the frame said it may have been applied already."""

    def __init__(self, name: str, topic: str) -> None:
        self.name = name
        self.topics = (topic,)
        self.seen: dict[str, bool] = {}
        self.grew = anyio.Event()

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome:
        assert event.type == COUNTER_TYPE
        self.seen[event.subject] = recovering()
        self.grew.set()
        return Outcome.APPLIED


async def _until(handler: Recorder, count: int) -> None:
    with anyio.fail_after(60):
        while len(handler.seen) < count:
            handler.grew = anyio.Event()
            await handler.grew.wait()


@pytest.mark.parametrize("slot_mode", [True, False])
async def test_only_what_was_there_at_a_slot_runners_start_is_marked(
    kafka_bootstrap: str, unique: str, slot_mode: bool,
) -> None:
    name = f"rec{unique}{int(slot_mode)}"
    topic = f"test.recovery.{unique}.{int(slot_mode)}"
    await ensure_topics(kafka_bootstrap, [*all_topics(handlers=(name,)), TopicSpec(topic, partitions=2)])
    await _publish(kafka_bootstrap, topic, [Item(key=f"before{i}", version=1, value="x") for i in range(4)])
    handler = Recorder(name, topic)
    stop = StopToken()
    async with TransactionalProducer(kafka_bootstrap, f"test.recovery.{name}") as producer:
        runner = HandlerRunner(handler, kafka=kafka_bootstrap, producer=producer, view=LedgerView(kafka_bootstrap),
                               group_id=f"test.recovery.{name}", assign_all=slot_mode)
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.run, stop)
            await _until(handler, 4)
            await _publish(kafka_bootstrap, topic, [Item(key=f"after{i}", version=1, value="x") for i in range(3)])
            await _until(handler, 7)
            stop.set()
    before = {s: v for s, v in handler.seen.items() if "/before" in s}
    after = {s: v for s, v in handler.seen.items() if "/after" in s}
    assert len(before) == 4 and len(after) == 3
    assert set(before.values()) == {slot_mode}, "a slot runner marks what was there at its start; others never"
    assert set(after.values()) == {False}


def test_marking_sets_the_flag_per_event_and_restores_it_after_the_pass() -> None:
    # The hot path marks each event of a pass; a pass can cross the end of the recovery window.
    seen = []
    with marking() as mark:
        for active in (True, True, False, True, False):
            mark(active)
            seen.append(recovering())
    assert seen == [True, True, False, True, False]
    assert recovering() is False, "nothing marked once the pass is over"
