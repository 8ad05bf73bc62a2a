"""The worker process: Kafka check, topics, the ledger view, ops endpoint, supervised components."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from worker.asgi_server import serve_app
from worker.components import Component, poller_component
from worker.concurrency import task_group
from worker.config import WorkerConfig
from worker.controls import shared_controls
from worker.handler_frame import HandlerRunner
from worker.health import Health
from worker.kafka.connection import Kafka, connect
from worker.kafka.errors import BrokerUnavailableError
from worker.kafka.security_check import check_security
from worker.ledger import LedgerView
from worker.metric_series import prime_at_start
from worker.ops_server import create_ops_app
from worker.ownership import TenantOwnership
from worker.shutdown import StopToken, stop_on_signals
from worker.status_report import StatusSource
from worker.supervision import supervise
from worker.tables import TopicTable
from worker.tenant_slots import slot_handler_component
from worker.topics import ensure_topics
from worker.upstream_retries import SUMMARY
from worker.wiring import Wiring, build_wiring

log = structlog.get_logger(__name__)


async def wait_for_kafka(kafka: Kafka, patience: float) -> None:
    """Return once the broker answers; raise ``BrokerUnavailableError`` after ``patience`` s, and
    ``KafkaSecurityError`` at once for a refused certificate or password."""
    connection = connect(kafka)
    bootstrap = connection.bootstrap
    await check_security(connection)
    deadline = time.monotonic() + patience
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(**connection.options(), request_timeout_ms=5000)
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


ComponentsFor = Callable[[WorkerConfig, Wiring, LedgerView], list[Component]]


def default_components(config: WorkerConfig, wiring: Wiring, view: LedgerView,
                       runner_type: type[HandlerRunner] = HandlerRunner) -> list[Component]:
    """The ownership component: for each tenant slot this replica is assigned, it runs the
    pollers of the slot's tenants and one runner per handler for them (worker/tenant_slots.py)."""
    if not (wiring.pollers or wiring.handlers):
        return []

    def slot_components(slot: int, tenants: frozenset[str]) -> list[Component]:
        pollers = [poller_component(s, config) for s in wiring.pollers if s.poller.tenant in tenants]
        handlers = [slot_handler_component(h, config, view, slot, served, runner_type)
                    for h in wiring.handlers if (served := tenants & wiring.handler_tenants.get(h.name, frozenset()))]
        return pollers + handlers

    return [TenantOwnership(config, slot_components, supervise).component()]


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
    prime_at_start(config, wiring)
    kafka = config.kafka.connection()
    patience = config.kafka.broker_patience_seconds
    try:
        await wait_for_kafka(kafka, patience)
        created = await ensure_topics(kafka, wiring.topics(), config.kafka.replication_factor,
                                      config.kafka.min_insync_replicas)
        if created:
            log.info("created topics", topics=created)
        # Ledger partitions are read as their slots are assigned here (worker/tenant_slots.py).
        view = LedgerView(kafka)
        tables = _tables(wiring)
        if wiring.handlers:
            for table in tables:
                await table.restore()
        # Operator commands: restored before any component runs, so a pause holds from the start.
        controls = shared_controls(kafka)
        await controls.restore()
        components = components_for(config, wiring, view)
        health.kafka_ready = True
        async with task_group() as outer:
            if handle_signals:
                outer.start_soon(stop_on_signals, stop)
            if wiring.handlers:
                outer.start_soon(view.follow)
            if controls.claim():
                outer.start_soon(controls.follow)
            for table in tables:
                if table.claim():  # followed for the whole process: slot runners come and go
                    outer.start_soon(table.follow)
            status = StatusSource(config, wiring, health)
            async with serve_app(create_ops_app(health, status.report), config.ops.host, config.ops.port) as url:
                log.info("worker started", ops=url, components=[c.name for c in components],
                         tenants=[t.id for t in config.tenants], replica=config.kafka.replica_id,
                         namespace=config.kafka.namespace)
                await _run_components(components, stop, health, patience, config.runtime.shutdown_grace_seconds)
            log.info("worker stopped")
            outer.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await wiring.clients.aclose()
        SUMMARY.flush_all()  # the retries of the last minute, before the process goes


def _tables(wiring: Wiring) -> list[TopicTable]:
    """The reference tables of every handler, once each."""
    out: list[TopicTable] = []
    for handler in wiring.handlers:
        for table in getattr(handler, "tables", ()):
            if all(table is not t for t in out):
                out.append(table)
    return out


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
