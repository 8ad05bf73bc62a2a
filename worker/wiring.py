"""From configuration to what runs: the pollers and handlers every tenant's enabled flows contribute.

Reads the flow registry (``worker.flows``) and builds each flow in its tenants' contexts, with one
``ClientPool`` for the process so every client (and its rate budget) is shared per credential.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from worker.config import ConfigError, WorkerConfig, missing_systems
from worker.flows import FLOWS
from worker.handler_frame import AnyHandler
from worker.poller_frame import PollerSpec
from worker.registry import ClientPool, FlowTenant, TenantContext
from worker.topics import TopicSpec, all_topics


@dataclass
class Wiring:
    """Everything one worker process runs, and the clients they share."""

    pollers: list[PollerSpec] = field(default_factory=list)
    handlers: list[AnyHandler] = field(default_factory=list)
    clients: ClientPool = field(default_factory=ClientPool)
    handler_tenants: dict[str, frozenset[str]] = field(default_factory=dict)  # handler -> tenants it serves

    def topics(self) -> list[TopicSpec]:
        """Every topic the registered flows use, the state topics, and this wiring's DLQs."""
        flow_topics = [spec for flow in FLOWS for spec in flow.topics]
        return all_topics(flow_topics, [h.name for h in self.handlers])

    def handler(self, name: str) -> AnyHandler | None:
        """The handler called ``name``, if this configuration runs it."""
        return next((h for h in self.handlers if h.name == name), None)


def build_wiring(config: WorkerConfig) -> Wiring:
    """The pollers and handlers the configuration asks for. Builds clients but opens no connection."""
    problems = missing_systems(config)
    if problems:
        raise ConfigError("\n".join(msg for _, msg in problems))
    wiring = Wiring()
    enabled: dict[str, dict[str, FlowTenant[Any]]] = defaultdict(dict)
    for tenant in config.tenants:
        context = TenantContext(tenant, wiring.clients, config.kafka)
        for flow in FLOWS:
            settings = getattr(tenant.flows, flow.name, None)
            if settings is None or not settings.enabled:
                continue
            enabled[flow.name][tenant.id] = FlowTenant(context, settings)
            if flow.pollers is not None:
                wiring.pollers += flow.pollers(context, settings)
    for flow in FLOWS:
        if enabled[flow.name] and flow.handlers is not None:
            for handler in flow.handlers(enabled[flow.name]):
                wiring.handlers.append(handler)
                wiring.handler_tenants[handler.name] = frozenset(enabled[flow.name])
    return wiring
