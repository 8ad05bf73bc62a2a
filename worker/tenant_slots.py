"""Handlers by tenant slot: each slot's events are handled on the replica that owns the slot.

A handler's writes for one tenant depend on each other across partitions and topics (a section's
class and its roster rows, a document's outcome group and its standards, a student's rename and a
new enrolment). One process keeps them consistent through its shared ledger view; two processes
see each other's ledger writes only a moment later, and in that moment they create twice or
write stale names (bench/chaos measured both). So a tenant's events are handled by one replica:
the owner of its slot in the ownership group (worker/ownership.py), which runs, for each handler,
one runner that reads every partition of the handler's topics and hands it the events of the
slot's tenants only (the rest pass as skipped). Its offsets live in the consumer group
``<prefix>.<handler>.slot<n>`` and its transactional id is per slot, so the next owner resumes
exactly where the last one committed and fences a zombie.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.envelope import CloudEvent
from worker.components import Component
from worker.config import WorkerConfig
from worker.controls import Gate, current_controls, handler_control_name
from worker.handler_frame import AnyHandler, BatchHandler, HandlerRunner, Result, group_id_for
from worker.health import Health, State
from worker.kafka.producer import TransactionalProducer
from worker.kafka.tenant_partitions import tenant_partition
from worker.ledger import Ledger, LedgerView
from worker.metrics import Outcome
from worker.shutdown import StopToken
from worker.topics import CONTROL_PARTITIONS


def slot_name(slot: int) -> str:
    """The name of a tenant slot in group ids, transactional ids and component names."""
    return f"slot{slot}"


def slot_of(tenant: str) -> int:
    """The slot ``tenant`` lives in (the control topic's partition)."""
    return tenant_partition(tenant, CONTROL_PARTITIONS)


def slot_group_id(handler: str, tenant: str, group_prefix: str = "edusync") -> str:
    """The consumer group that keeps the offsets of ``handler``'s runner for ``tenant``'s slot."""
    return f"{group_id_for(handler, group_prefix)}.{slot_name(slot_of(tenant))}"


def handler_component_name(handler: str, tenant: str) -> str:
    """The health and metrics name of ``handler``'s runner for ``tenant``'s slot."""
    return f"handler:{handler}.{slot_name(slot_of(tenant))}"


class _Filter:
    """What both filters share: the inner handler's name, topics and optional members."""

    def __init__(self, inner: AnyHandler, tenants: frozenset[str]) -> None:
        self.inner = inner
        self.tenants = tenants
        self.name = inner.name

    @property
    def topics(self) -> Sequence[str]:
        """The inner handler's topics."""
        return self.inner.topics

    @property
    def tables(self) -> tuple[object, ...]:
        """The inner handler's reference tables, if it has any."""
        return tuple(getattr(self.inner, "tables", ()))

    def partitions_changed(self) -> None:
        """Passed on to the inner handler, if it cares."""
        changed = getattr(self.inner, "partitions_changed", None)
        if changed is not None:
            changed()


class TenantFilter(_Filter):
    """An event handler that sees only the events of ``tenants``."""

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome:
        """The inner handler's outcome for our tenants; skipped for the others."""
        if event.tenant not in self.tenants:
            return Outcome.SKIPPED
        return await self.inner.handle(event, ledger)  # type: ignore[union-attr]


class BatchTenantFilter(_Filter):
    """A batch handler that sees only the events of ``tenants``, in their order."""

    async def handle_batch(self, events: Sequence[CloudEvent], ledger: Ledger) -> Sequence[Result]:
        """The inner handler's results for our tenants' events; skipped for the others."""
        mine = [i for i, e in enumerate(events) if e.tenant in self.tenants]
        results: list[Result] = [Outcome.SKIPPED] * len(events)
        if mine:
            inner = self.inner
            assert isinstance(inner, BatchHandler)
            for i, result in zip(mine, await inner.handle_batch([events[i] for i in mine], ledger), strict=True):
                results[i] = result
        return results


def filtered(handler: AnyHandler, tenants: frozenset[str]) -> AnyHandler:
    """``handler`` restricted to the events of ``tenants``."""
    if isinstance(handler, BatchHandler):
        return BatchTenantFilter(handler, tenants)
    return TenantFilter(handler, tenants)


def slot_transactional_id(handler: str, slot: int, group_prefix: str = "edusync") -> str:
    """Stable per deployment, handler and slot: the slot's next owner fences a zombie."""
    return f"{group_prefix}.handler.{handler}.{slot_name(slot)}"


def slot_handler_component(handler: AnyHandler, config: WorkerConfig, view: LedgerView, slot: int,
                           tenants: frozenset[str], runner_type: type[HandlerRunner] = HandlerRunner) -> Component:
    """The runner of ``handler`` for the tenants of one owned slot (``runner_type``: a benchmark's
    probe in place of the frame's runner)."""
    kafka = config.kafka
    scope = slot_name(slot)
    name = f"handler:{handler.name}.{scope}"

    async def run(stop: StopToken, health: Health) -> None:
        slot_handler = filtered(handler, tenants)
        tid = slot_transactional_id(handler.name, slot, kafka.consumer_group_prefix)
        async with TransactionalProducer(kafka.connection(), tid) as p, \
                current_controls(kafka.connection()) as controls:
            # The view holds the slot's ledger partitions while this runner works, with everything
            # the slot's last owner wrote. Only now: our producer's start fenced that owner and
            # settled its last transaction, so nothing it commits can land after the read.
            await view.acquire(tenants)
            try:
                # What the handler remembers of its target may be stale for these tenants.
                changed = getattr(slot_handler, "partitions_changed", None)
                if changed is not None:
                    changed()
                health.set(name, State.STARTING)
                runner = runner_type(
                    slot_handler, kafka=kafka.connection(), producer=p, view=view,
                    settings=config.handler_settings(handler.name), broker_patience=kafka.broker_patience_seconds,
                    group_id=f"{group_id_for(handler.name, kafka.consumer_group_prefix)}.{scope}", health=health,
                    paused_retry=config.runtime.paused_retry_seconds, assign_all=True, scope=scope,
                    gate=Gate(controls, handler_control_name(handler.name)), redrive=True,
                )
                await runner.run(stop)
            finally:
                view.release(tenants)

    return Component(name, run)
