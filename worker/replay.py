"""``edusync replay``: run one handler over its topics from the beginning in a fresh consumer
group, until caught up. Rebuilds a target after an outage; on a healthy target every event
should come out as a no-op, which is how the replay tests prove idempotency."""

from __future__ import annotations

import time

import anyio

from worker.components import handler_transactional_id
from worker.config import WorkerConfig
from worker.errors import ConfigurationError
from worker.flows import handler_names
from worker.handler_frame import HandlerRunner, group_id_for
from worker.kafka.backlog import group_backlog
from worker.kafka.groups import delete_group
from worker.kafka.producer import TransactionalProducer
from worker.ledger import LedgerView
from worker.metrics import Outcome, total
from worker.progress import Reporter, command_progress
from worker.runtime import wait_for_kafka
from worker.shutdown import StopToken
from worker.topics import ensure_topics
from worker.wiring import build_wiring


class ReplayError(ConfigurationError, ValueError):
    """The replay cannot run as asked (unknown handler, or one this configuration does not run)."""


async def replay_handler(config: WorkerConfig, handler_name: str, group: str | None = None, *,
                         keep_group: bool = False) -> dict[str, float]:
    """Replay ``handler_name`` from offset 0 in a new group; returns events by outcome. The group
    is deleted afterwards unless ``keep_group``: a replay leaves no idle group behind."""
    if handler_name not in handler_names():
        raise ReplayError(f"unknown handler {handler_name!r} (known: {', '.join(handler_names())})")
    wiring = build_wiring(config)
    handler = wiring.handler(handler_name)
    if handler is None:
        raise ReplayError(f"this configuration enables no flow with handler {handler_name!r}")
    kafka = config.kafka.connection()
    try:
        await wait_for_kafka(kafka, config.kafka.broker_patience_seconds)
        await ensure_topics(kafka, wiring.topics(), config.kafka.replication_factor,
                            config.kafka.min_insync_replicas)
        tag = group or f"replay-{int(time.time())}"
        before = _outcomes(handler_name)
        view = LedgerView(kafka)
        await view.restore()
        # Its own transactional id: the live worker's handler must not be fenced by the replay.
        tid = handler_transactional_id(handler_name, tag, config.kafka.consumer_group_prefix)
        group_id = group_id_for(handler_name, f"{config.kafka.consumer_group_prefix}.{tag}")
        pending = sum((await group_backlog(kafka, group_id, list(handler.topics))).values())
        with command_progress("replay progress", f"replay {handler_name}", handler=handler_name,
                              every=config.runtime.progress_every_seconds) as progress:
            async with TransactionalProducer(kafka, tid) as producer, anyio.create_task_group() as tg:
                tg.start_soon(view.follow)
                tg.start_soon(_report_progress, progress, handler_name, before, pending)
                runner = HandlerRunner(
                    handler, kafka=kafka, producer=producer, view=view,
                    settings=config.handler_settings(handler_name), group_id=group_id,
                    broker_patience=config.kafka.broker_patience_seconds,
                )
                await runner.run(StopToken(), until_caught_up=True)
                progress.update(_done(handler_name, before), pending)
                tg.cancel_scope.cancel()
        if not keep_group:
            await delete_group(kafka, group_id)
    finally:
        await wiring.clients.aclose()
    after = _outcomes(handler_name)
    return {k: round(after[k] - before[k]) for k in after}  # counts, printed as integers


def _done(handler: str, before: dict[str, float]) -> int:
    """Events the replay has processed so far, whatever their outcome."""
    return round(sum(_outcomes(handler).values()) - sum(before.values()))


async def _report_progress(progress: Reporter, handler: str, before: dict[str, float], total: int) -> None:
    while True:
        progress.update(_done(handler, before), total)
        await anyio.sleep(0.5)


def _outcomes(handler: str) -> dict[str, float]:
    return {
        o.value: total("edusync_handler_events_total", handler=handler, outcome=o.value)
        for o in Outcome
    }
