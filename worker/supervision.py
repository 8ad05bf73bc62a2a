"""Run a component until a stop request, restarting it after failures with backoff."""

from __future__ import annotations

import time

import structlog
from aiokafka.errors import KafkaConnectionError

from worker.backoff import Backoff
from worker.components import Component
from worker.health import Health, State
from worker.kafka.errors import BrokerUnavailableError
from worker.shutdown import StopToken

log = structlog.get_logger(__name__)


async def supervise(component: Component, stop: StopToken, health: Health, patience: float) -> None:
    """Run ``component`` until ``stop``; restart it after a failure, with backoff. A broker that
    stays unreachable longer than ``patience`` ends the worker with ``BrokerUnavailableError``."""
    backoff = Backoff(base=1.0, cap=30.0)
    failures = 0
    down_since: float | None = None
    while not stop.stopping:
        health.set(component.name, State.STARTING)
        try:
            await component.run(stop, health)
            health.set(component.name, State.STOPPED)
            return
        except (BrokerUnavailableError, KafkaConnectionError) as exc:
            down_since = down_since or time.monotonic()
            if isinstance(exc, BrokerUnavailableError) or time.monotonic() - down_since > patience:
                health.set(component.name, State.STOPPED)
                raise BrokerUnavailableError(f"{component.name}: {exc}") from exc
            failures += 1
        except Exception as exc:
            log.exception("component failed; restarting", component=component.name)
            failures += 1
            down_since = None
            health.set(component.name, State.RESTARTING, f"{type(exc).__name__}: {exc}")
            await stop.sleep(backoff.delay(failures))
            continue
        health.set(component.name, State.RESTARTING, "Kafka unreachable")
        await stop.sleep(backoff.delay(failures))
