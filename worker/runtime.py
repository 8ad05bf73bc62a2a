"""The worker process: Kafka check, topics, ops endpoint, and supervised components."""

from __future__ import annotations

import time

import anyio
import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from worker.asgi_server import serve_app
from worker.backoff import Backoff
from worker.components import Component
from worker.config import WorkerConfig
from worker.health import Health, State
from worker.kafka.errors import BrokerUnavailableError
from worker.ops_server import create_ops_app
from worker.shutdown import StopToken, stop_on_signals
from worker.topics import all_topics, ensure_topics

log = structlog.get_logger(__name__)


async def wait_for_kafka(bootstrap: str, patience: float) -> None:
    """Return once the broker answers; raise ``BrokerUnavailableError`` after ``patience`` s."""
    deadline = time.monotonic() + patience
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            with anyio.fail_after(max(1.0, deadline - time.monotonic())):
                await admin.start()
                await admin.list_topics()
            return
        except (KafkaError, OSError, TimeoutError) as exc:
            last = exc
            await anyio.sleep(1.0)
        finally:
            await admin.close()
    raise BrokerUnavailableError(f"Kafka broker {bootstrap} unreachable for {patience:.0f}s: {last!r}")


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
        except Exception:
            log.exception("component failed; restarting", component=component.name)
            failures += 1
            down_since = None
        health.set(component.name, State.RESTARTING)
        await stop.sleep(backoff.delay(failures))


async def run_worker(
    config: WorkerConfig, components: list[Component], *, stop: StopToken | None = None,
    handle_signals: bool = True, health: Health | None = None,
) -> None:
    """Run ``components`` with the ops endpoint until a stop request (SIGTERM/SIGINT)."""
    stop = stop or StopToken()
    health = health or Health()
    bootstrap = config.kafka.bootstrap_servers
    patience = config.kafka.broker_patience_seconds
    await wait_for_kafka(bootstrap, patience)
    handler_names = tuple(c.name.split(":", 1)[1] for c in components if c.name.startswith("handler:"))
    created = await ensure_topics(bootstrap, all_topics(handler_names), config.kafka.replication_factor)
    if created:
        log.info("created topics", topics=created)
    health.kafka_ready = True
    async with anyio.create_task_group() as outer:
        if handle_signals:
            outer.start_soon(stop_on_signals, stop)
        async with serve_app(create_ops_app(health), config.ops.host, config.ops.port) as url:
            log.info("worker started", ops=url, components=[c.name for c in components],
                     tenants=[t.id for t in config.tenants])
            async with anyio.create_task_group() as tg:
                for component in components:
                    tg.start_soon(supervise, component, stop, health, patience)
                await stop.wait()
        log.info("worker stopped")
        outer.cancel_scope.cancel()
