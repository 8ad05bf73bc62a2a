"""What a system and a flow are, and the per-tenant context flows are built in.

A ``System`` is an upstream (AB Connect, Canvas, ...): its configuration section, how to build a
client for one credential, and its simulator. A ``Flow`` is one change signal and what is done
with it: the systems it needs, its own configuration section, the pollers and handlers it
contributes and the event types it publishes. The lists of both live in ``worker.systems`` and
``worker.flows``, one line per entry; wiring, configuration, ``schemas export``, ``replay``,
``status``, ``dlq`` and ``simulate`` read them, so adding a flow edits no central module.

A ``TenantContext`` hands a flow the tenant's configured systems and their clients. Clients come
from one ``ClientPool`` per process: one client, hence one rate budget, per (system, credential),
shared by every flow and poller that uses it. The pool also tells the replica share which tenants
spend which account, so replicas divide a budget only among those that spend it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from worker.errors import ConfigurationError
from worker.replica_share import REPLICAS, BudgetShare, ReplicaShare

if TYPE_CHECKING:
    from worker.config import KafkaConfig, TenantConfig
    from worker.handler_frame import AnyHandler
    from worker.poller_frame import PollerSpec
    from worker.topics import TopicSpec

C = TypeVar("C", bound=BaseModel)
K = TypeVar("K", bound="Closable")
F = TypeVar("F", bound="FlowSettings")


class Closable(Protocol):
    """A client with a connection pool to close."""

    async def aclose(self) -> None: ...


@runtime_checkable
class SharedBudget(Protocol):
    """A client whose rate budget the replicas spending its account divide."""

    def share_budget(self, share: BudgetShare) -> None: ...


class SystemSettings(BaseModel):
    """Base of every system's configuration section: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class FlowSettings(BaseModel):
    """Base of every flow's configuration section; ``enabled: false`` keeps the section but turns it off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="a listed flow runs unless this is false")


@dataclass(frozen=True)
class System(Generic[C, K]):
    """An upstream system: configuration model, client factory, budget identity, simulator."""

    name: str
    title: str
    config: type[C]
    client: Callable[[C], K]
    credential: Callable[[C], str]
    # What the upstream counts a rate budget by, when it is not the credential (MatrixLMS: the site).
    account: Callable[[C], str] | None = None
    # "module:function" of its simulator for ``edusync simulate``: called with SimulateOptions,
    # it returns the ASGI app and a one-line hint (paths, demo credentials).
    simulator: str | None = None


@dataclass(frozen=True)
class FlowTenant(Generic[F]):
    """One tenant that enables a flow: its context and its settings of that flow."""

    context: TenantContext
    settings: F


@dataclass(frozen=True)
class Flow(Generic[F]):
    """One flow and what it contributes; ``handlers`` is called once per process with every
    tenant that enables the flow, ``pollers`` once per such tenant."""

    name: str
    summary: str
    systems: tuple[System[Any, Any], ...]
    config: type[F]
    event_types: Mapping[str, type[BaseModel]]
    topics: tuple[TopicSpec, ...] = ()
    handler_names: tuple[str, ...] = ()
    # Flows whose events this one consumes (the roster flows read illuminate_changes' topics):
    # a tenant must enable them too, or nothing would ever arrive.
    requires: tuple[str, ...] = ()
    pollers: Callable[[TenantContext, F], Sequence[PollerSpec]] | None = None
    handlers: Callable[[Mapping[str, FlowTenant[F]]], Sequence[AnyHandler]] | None = None


class ClientPool:
    """One client per (system, credential) for the whole process."""

    def __init__(self, share: ReplicaShare = REPLICAS) -> None:
        self._clients: dict[tuple[str, str], Closable] = {}
        self.share = share

    def get(self, system: System[C, K], settings: C, tenant: str | None = None) -> K:
        """The shared client of ``system`` for ``settings``' credential, built on first use;
        ``tenant`` is noted as one that spends the client's account."""
        key = (system.name, system.credential(settings))
        account = f"{system.name}|{(system.account or system.credential)(settings)}"
        if tenant is not None:
            self.share.use(account, tenant)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = system.client(settings)
            if isinstance(client, SharedBudget):
                client.share_budget(self.share.account(account))
        return client  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        """Close every client's connections."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


class TenantContext:
    """A tenant's configured systems and their shared clients, as flows see them."""

    def __init__(self, tenant: TenantConfig, clients: ClientPool, kafka: KafkaConfig) -> None:
        self.tenant = tenant
        self.id = tenant.id
        self.kafka = kafka
        self._clients = clients

    def settings(self, system: System[C, K]) -> C:
        """The tenant's configuration section of ``system``; a flow asks only for systems it declared."""
        value = getattr(self.tenant.systems, system.name, None)
        if value is None:
            raise ConfigurationError(f"tenant {self.id!r}: system {system.name!r} is not configured")
        return value  # type: ignore[no-any-return]

    def client(self, system: System[C, K]) -> K:
        """The process-wide client of ``system`` for this tenant's credential."""
        return self._clients.get(system, self.settings(system), self.id)
