"""``edusync status`` and ``edusync dlq``: read-only views of the worker's state in Kafka."""

from __future__ import annotations

from typing import Any

from schemas.dead_letter import DeadLetter
from worker.config import WorkerConfig
from worker.dead_letters import pending_letters
from worker.handler_frame import group_id_for
from worker.kafka.backlog import group_backlog
from worker.kafka.connection import Kafka, KafkaConnection
from worker.poller_frame import cursor_key
from worker.state_store import StateStore
from worker.tenant_slots import slot_name, slot_of
from worker.topics import CURSORS
from worker.wiring import build_wiring


async def status(config: WorkerConfig) -> dict[str, Any]:
    """Each poller's cursor and each handler's backlog (records not yet committed by its group)."""
    kafka = config.kafka.connection()
    wiring = build_wiring(config)
    await wiring.clients.aclose()  # status reads Kafka only
    cursors = StateStore(kafka, CURSORS)
    await cursors.restore()
    report: dict[str, Any] = {
        "pollers": {
            f"{s.poller.tenant}/{s.poller.name}": cursors.get(cursor_key(s.poller.tenant, s.poller.name))
            for s in wiring.pollers
        },
        "handlers": {},
    }
    for handler in wiring.handlers:
        # One group per tenant slot (worker/tenant_slots.py); each reads every partition.
        slots = sorted({slot_of(t) for t in wiring.handler_tenants.get(handler.name, ())})
        base = group_id_for(handler.name, config.kafka.consumer_group_prefix)
        backlogs = {slot_name(n): await _backlog(kafka, f"{base}.{slot_name(n)}", list(handler.topics))
                    for n in slots}
        report["handlers"][handler.name] = {
            "groups": {name: f"{base}.{name}" for name in backlogs},
            "backlog": sum(backlogs.values()),
            "backlog_by_slot": backlogs,
            "dead_letters": len(await read_dead_letters(kafka, handler.name, config.kafka.consumer_group_prefix)),
        }
    return report


async def _backlog(kafka: KafkaConnection, group: str, topics: list[str]) -> int:
    """Records not yet committed by ``group`` (transaction markers are not counted)."""
    return sum((await group_backlog(kafka, group, topics)).values())


async def read_dead_letters(kafka: Kafka, handler: str, prefix: str = "edusync") -> list[DeadLetter]:
    """The unresolved dead letters of ``handler`` (not redriven or purged), oldest first."""
    return [p.letter for p in await pending_letters(kafka, handler, prefix)]
