"""Pollers and handlers as supervised components: each builds its own Kafka clients and state,
so a restart after a failure starts clean from what Kafka has committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from worker.config import WorkerConfig
from worker.controls import Gate, current_controls, poller_control_name
from worker.health import Health
from worker.kafka.producer import TransactionalProducer
from worker.poller_frame import PollerRunner, PollerSpec
from worker.shutdown import StopToken
from worker.state_store import StateStore
from worker.topics import CURSORS


@dataclass(frozen=True)
class Component:
    """A named unit of work the supervisor runs and restarts."""

    name: str
    run: Callable[[StopToken, Health], Awaitable[None]]


def poller_transactional_id(tenant: str, poller: str) -> str:
    """Stable per tenant and signal, so a second instance fences the first."""
    return f"edusync.poller.{tenant}.{poller}"


def handler_transactional_id(handler: str, replica_id: str, group_prefix: str = "edusync") -> str:
    """Stable per deployment (its consumer-group prefix), handler and replica: a restarted replica
    fences its own zombie, and another deployment's handler of the same name is left alone."""
    return f"{group_prefix}.handler.{handler}.{replica_id}"


def poller_component(spec: PollerSpec, config: WorkerConfig) -> Component:
    """Wrap a poller: restore cursors, start a transactional producer, run the loop."""
    poller = spec.poller
    kafka = config.kafka.connection()
    name = f"poller:{poller.tenant}/{poller.name}"

    async def run(stop: StopToken, health: Health) -> None:
        # Producer first: init_transactions aborts a crashed predecessor's open transaction,
        # which the restore would otherwise wait out (see worker/kafka/reader.py).
        async with TransactionalProducer(kafka, poller_transactional_id(poller.tenant, poller.name)) as p, \
                current_controls(kafka) as controls:  # an operator's pause, as the last owner obeyed it
            cursors = StateStore(kafka, CURSORS, tenant=poller.tenant)  # its tenant's partition only
            await cursors.restore()
            runner = PollerRunner(poller, p, cursors, interval=spec.interval, idle_backoff=spec.idle_backoff,
                                  deadline=spec.deadline, health=health,
                                  paused_retry=config.runtime.paused_retry_seconds,
                                  gate=Gate(controls, poller_control_name(poller.tenant, poller.name)),
                                  progress_every=config.runtime.progress_every_seconds)
            await runner.run(stop)

    return Component(name, run)
