"""``edusync replay``: run one handler over its topics from the beginning in a fresh consumer
group, until caught up. Rebuilds a target after an outage; on a healthy target every event
should come out as a no-op, which is how the replay test proves idempotency."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY

from worker.components import handler_transactional_id
from worker.config import WorkerConfig
from worker.handler_frame import HandlerRunner, group_id_for
from worker.kafka.producer import TransactionalProducer
from worker.metrics import Outcome
from worker.runtime import wait_for_kafka
from worker.shutdown import StopToken
from worker.state_store import StateStore
from worker.topics import LEDGER, all_topics, ensure_topics
from worker.wiring import build_handlers_and_pollers


class ReplayError(ValueError):
    """The replay cannot run as asked (unknown handler)."""


async def replay_handler(config: WorkerConfig, handler_name: str, group: str | None = None) -> dict[str, float]:
    """Replay ``handler_name`` from offset 0 in a new group; returns events by outcome."""
    handlers = {h.name: h for h in build_handlers_and_pollers(config)[0]}
    if handler_name not in handlers:
        raise ReplayError(f"no handler {handler_name!r} in this configuration (have: {sorted(handlers)})")
    handler = handlers[handler_name]
    bootstrap = config.kafka.bootstrap_servers
    await wait_for_kafka(bootstrap, config.kafka.broker_patience_seconds)
    await ensure_topics(bootstrap, all_topics((handler_name,)), config.kafka.replication_factor)
    tag = group or f"replay-{int(time.time())}"
    before = _outcomes(handler_name)
    # Its own transactional id: the live worker's handler must not be fenced by the replay.
    async with TransactionalProducer(bootstrap, handler_transactional_id(handler_name, tag)) as producer:
        ledger = StateStore(bootstrap, LEDGER, prefix=f"{handler_name}/")
        await ledger.restore()
        runner = HandlerRunner(handler, bootstrap=bootstrap, producer=producer, ledger_store=ledger,
                               group_id=group_id_for(handler_name, f"{config.kafka.consumer_group_prefix}.{tag}"),
                               broker_patience=config.kafka.broker_patience_seconds)
        await runner.run(StopToken(), until_caught_up=True)
    after = _outcomes(handler_name)
    return {k: after[k] - before[k] for k in after}


def _outcomes(handler: str) -> dict[str, float]:
    return {
        o.value: REGISTRY.get_sample_value("edusync_handler_events_total", {"handler": handler, "outcome": o.value})
        or 0.0
        for o in Outcome
    }
