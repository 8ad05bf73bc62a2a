"""What the per-event roster handlers (Canvas, Class) share: their tenants, the reference
tables, the enrolment locks, and the steps before a change reaches the target."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Generic, TypeVar

from handlers.roster_changes import Change, read_change
from handlers.roster_reference import ROSTER_TOPICS, RosterReference
from schemas.envelope import CloudEvent
from worker.concurrency import KeyedLocks
from worker.errors import PermanentFailure
from worker.ledger import Ledger
from worker.metrics import Outcome
from worker.recovery import recovering
from worker.tables import TopicTable

TenantT = TypeVar("TenantT")


class RosterHandler(ABC, Generic[TenantT]):
    """A roster handler for one target; subclasses say how a change is applied there."""

    name: str
    target: ClassVar[str]  # the target's name in error texts
    topics: tuple[str, ...] = ROSTER_TOPICS

    def __init__(self, tenants: Mapping[str, TenantT], reference: RosterReference) -> None:
        self.tenants = dict(tenants)
        self.reference = reference
        self.locks = KeyedLocks()  # process-wide: every lane of this handler shares them

    @property
    def tables(self) -> tuple[TopicTable, ...]:
        """Reference data the frame restores before this handler consumes."""
        return self.reference.tables

    async def handle(self, event: CloudEvent, ledger: Ledger) -> Outcome:
        """Bring the target in line with one Illuminate change."""
        tenant = self.tenants.get(event.tenant)
        if tenant is None:
            raise PermanentFailure(f"no {self.target} configured for tenant {event.tenant!r}")
        # Skipped only outside a recovery window: there the newer event may have been applied by
        # a runner that died before committing, and this one's write may be the missing one.
        if self.reference.superseded(event) and not recovering():
            return Outcome.SKIPPED  # a newer event of this subject brings the current state
        return await self.apply(tenant, read_change(event, self.reference), event.tenant, ledger)

    @abstractmethod
    async def apply(self, tenant: TenantT, change: Change, tenant_id: str, ledger: Ledger) -> Outcome:
        """Write the difference ``change`` makes in this tenant's target."""


__all__ = ["RosterHandler"]
