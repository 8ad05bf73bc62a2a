"""The worker process: Kafka check, topics, the ledger view, ops endpoint, supervised components."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from worker.asgi_server import serve_app
from worker.backoff import Backoff
from worker.components import Component, handler_component, poller_component
from worker.concurrency import task_group
from worker.config import WorkerConfig
from worker.health import Health, State
from worker.kafka.errors import BrokerUnavailableError
from worker.ledger import LedgerView
from worker.ops_server import create_ops_app
from worker.shutdown import StopToken, stop_on_signals
from worker.topics import ensure_topics
from worker.wiring import Wiring, build_wiring

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
        except Exception as exc:
            log.exception("component failed; restarting", component=component.name)
            failures += 1
            down_since = None
            health.set(component.name, State.RESTARTING, f"{type(exc).__name__}: {exc}")
            await stop.sleep(backoff.delay(failures))
            continue
        health.set(component.name, State.RESTARTING, "Kafka unreachable")
        await stop.sleep(backoff.delay(failures))


ComponentsFor = Callable[[WorkerConfig, Wiring, LedgerView], list[Component]]


def default_components(config: WorkerConfig, wiring: Wiring, view: LedgerView) -> list[Component]:
    """One supervised component per poller and per handler of ``wiring``."""
    components = [poller_component(spec, config) for spec in wiring.pollers]
    return components + [handler_component(h, config, view) for h in wiring.handlers]


async def run_worker(
    config: WorkerConfig, wiring: Wiring | None = None, *, stop: StopToken | None = None,
    handle_signals: bool = True, health: Health | None = None, components_for: ComponentsFor = default_components,
) -> None:
    """Run the configuration's pollers and handlers with the ops endpoint until a stop request
    (SIGTERM/SIGINT). In-flight work gets ``runtime.shutdown_grace_seconds`` to finish.
    ``components_for`` lets a benchmark wrap the components in probes."""
    stop = stop or StopToken()
    health = health or Health()
    wiring = wiring or build_wiring(config)
    bootstrap = config.kafka.bootstrap_servers
    patience = config.kafka.broker_patience_seconds
    try:
        await wait_for_kafka(bootstrap, patience)
        created = await ensure_topics(bootstrap, wiring.topics(), config.kafka.replication_factor)
        if created:
            log.info("created topics", topics=created)
        view = LedgerView(bootstrap)
        if wiring.handlers:
            await view.restore()
        components = components_for(config, wiring, view)
        health.kafka_ready = True
        async with task_group() as outer:
            if handle_signals:
                outer.start_soon(stop_on_signals, stop)
            if wiring.handlers:
                outer.start_soon(view.follow)
            async with serve_app(create_ops_app(health), config.ops.host, config.ops.port) as url:
                log.info("worker started", ops=url, components=[c.name for c in components],
                         tenants=[t.id for t in config.tenants])
                await _run_components(components, stop, health, patience, config.runtime.shutdown_grace_seconds)
            log.info("worker stopped")
            outer.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await wiring.clients.aclose()


async def _run_components(
    components: list[Component], stop: StopToken, health: Health, patience: float, grace: float,
) -> None:
    """Supervise every component until ``stop``; then give them ``grace`` seconds to finish."""
    done = [anyio.Event() for _ in components]

    async def one(component: Component, finished: anyio.Event) -> None:
        try:
            await supervise(component, stop, health, patience)
        finally:
            finished.set()

    async with task_group() as tg:
        for component, finished in zip(components, done, strict=True):
            tg.start_soon(one, component, finished)
        await stop.wait()
        with anyio.move_on_after(grace) as waited:
            for finished in done:
                await finished.wait()
        if waited.cancelled_caught:
            log.warning("shutdown grace period over; cancelling work still in flight (it is replayed on restart)",
                        grace_seconds=grace, running=[c.name for c, d in zip(components, done, strict=True)
                                                      if not d.is_set()])
            tg.cancel_scope.cancel()
