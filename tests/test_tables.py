"""Reference-data tables on the real broker: restored in full, followed, and ready before a handler runs."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import anyio
import pytest

from schemas.envelope import CloudEvent, make_event
from tests.frame_apps import COUNTER_TYPE, Item
from worker.handler_frame import HandlerRunner
from worker.kafka.producer import TransactionalProducer
from worker.ledger import Ledger, LedgerView
from worker.metrics import Outcome
from worker.shutdown import StopToken
from worker.tables import TopicTable
from worker.topics import TopicSpec, all_topics, ensure_topics

pytestmark = pytest.mark.anyio


def _names(event: CloudEvent) -> Iterable[tuple[str, Any]]:
    item = event.payload(Item)
    yield f"{event.tenant}/{item.key}", (None if item.poison else item.value)


async def _publish(bootstrap: str, topic: str, items: list[Item]) -> None:
    async with TransactionalProducer(bootstrap, f"test.tables.{topic}") as producer, producer.transaction() as txn:
        for item in items:
            await txn.send_event(topic, make_event(
                tenant="t", source="test:table", type=COUNTER_TYPE, subject=f"t/course/{item.key}",
                version=f"{item.key}:{item.version}", data=item))


class _Joiner:
    """A handler that looks each event's key up in the table."""

    def __init__(self, name: str, topic: str, table: TopicTable) -> None:
        self.name, self.topics, self.tables = name, (topic,), (table,)
        self.seen: list[Any] = []

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome:
        self.seen.append(self.tables[0].get(f"t/{event.payload(Item).key}"))
        return Outcome.NOOP


async def test_a_table_is_complete_before_the_handler_runs_and_follows_new_events(
    kafka_bootstrap: str, unique: str,
) -> None:
    courses, probes = f"test.tables.{unique}", f"test.tables.{unique}.probes"
    await ensure_topics(kafka_bootstrap, [*all_topics(), TopicSpec(courses, compact=True), TopicSpec(probes)])
    await _publish(kafka_bootstrap, courses, [Item(key=f"c{i}", version=1, value=f"Course {i}") for i in range(50)])
    await _publish(kafka_bootstrap, courses, [Item(key="c7", version=2, value="Renamed 7"),
                                              Item(key="c9", version=2, value="", poison=True)])  # c9 removed
    table = TopicTable(kafka_bootstrap, f"courses-{unique}", [courses], _names)
    handler = _Joiner(f"joiner{unique}", probes, table)
    await _publish(kafka_bootstrap, probes, [Item(key="c7", version=1, value="probe")])
    stop = StopToken()
    async with TransactionalProducer(kafka_bootstrap, f"test.joiner.{unique}") as producer, \
            anyio.create_task_group() as tg:
        runner = HandlerRunner(handler, kafka=kafka_bootstrap, producer=producer, view=LedgerView(kafka_bootstrap))
        tg.start_soon(runner.run, stop)
        deadline = time.monotonic() + 60
        while not handler.seen:
            assert time.monotonic() < deadline
            await anyio.sleep(0.1)
        assert handler.seen == ["Renamed 7"], "the table was restored in full before the first event"
        assert len(table) == 49 and "t/c9" not in table
        await _publish(kafka_bootstrap, courses, [Item(key="c100", version=1, value="New course")])
        while table.get("t/c100") is None:  # followed while the handler runs
            assert time.monotonic() < deadline + 30
            await anyio.sleep(0.1)
        stop.set()
    assert not table.following
