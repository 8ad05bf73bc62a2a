"""Pollers and handlers as supervised components: each builds its own Kafka clients and
state, so a restart after a failure starts clean from what Kafka has committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from worker.handler_frame import Handler, HandlerRunner, group_id_for
from worker.health import Health, State
from worker.kafka.producer import TransactionalProducer
from worker.poller_frame import Poller, PollerRunner
from worker.shutdown import StopToken
from worker.state_store import StateStore
from worker.topics import CURSORS, LEDGER


@dataclass(frozen=True)
class Component:
    """A named unit of work the supervisor runs and restarts."""

    name: str
    run: Callable[[StopToken, Health], Awaitable[None]]


def poller_transactional_id(tenant: str, poller: str) -> str:
    """Stable per tenant and signal, so a second instance fences the first."""
    return f"edusync.poller.{tenant}.{poller}"


def handler_transactional_id(handler: str, replica_id: str) -> str:
    """Stable per handler and replica: a restarted replica fences its own zombie."""
    return f"edusync.handler.{handler}.{replica_id}"


def poller_component(poller: Poller, bootstrap: str, interval: float, idle_backoff: bool = False) -> Component:
    """Wrap a poller: restore cursors, start a transactional producer, run the loop."""
    name = f"poller:{poller.tenant}/{poller.name}"

    async def run(stop: StopToken, health: Health) -> None:
        # Producer first: init_transactions aborts a crashed predecessor's open transaction,
        # which the restore would otherwise wait out (see worker/kafka/reader.py).
        async with TransactionalProducer(bootstrap, poller_transactional_id(poller.tenant, poller.name)) as p:
            cursors = StateStore(bootstrap, CURSORS)
            await cursors.restore()
            health.set(name, State.READY)
            await PollerRunner(poller, p, cursors, interval=interval, idle_backoff=idle_backoff).run(stop)

    return Component(name, run)


def handler_component(
    handler: Handler, bootstrap: str, replica_id: str, broker_patience: float = 60.0,
    group_prefix: str = "edusync",
) -> Component:
    """Wrap a handler: restore its ledger, start a transactional producer, consume."""
    name = f"handler:{handler.name}"

    async def run(stop: StopToken, health: Health) -> None:
        async with TransactionalProducer(bootstrap, handler_transactional_id(handler.name, replica_id)) as p:
            ledger = StateStore(bootstrap, LEDGER, prefix=f"{handler.name}/")
            await ledger.restore()
            health.set(name, State.READY)
            runner = HandlerRunner(handler, bootstrap=bootstrap, producer=p, ledger_store=ledger,
                                   broker_patience=broker_patience, group_id=group_id_for(handler.name, group_prefix))
            await runner.run(stop)

    return Component(name, run)
