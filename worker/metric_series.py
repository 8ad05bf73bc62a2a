"""Every series an alert or dashboard counts on, created at start-up: ``increase()`` over a
counter that appears at its first event sees nothing, so the first dead letter, poll error or
5xx after a start would never alert. Also admits the configuration's tenants as label values."""

from __future__ import annotations

from worker.config import WorkerConfig
from worker.metrics import know_tenants, prime_handler, prime_poller, prime_upstream, publish_build_info
from worker.systems import SYSTEMS
from worker.wiring import Wiring


def prime_at_start(config: WorkerConfig, wiring: Wiring) -> None:
    """Build info, tenant labels, and at 0: handler outcomes, poll errors, upstream requests."""
    publish_build_info()
    know_tenants(t.id for t in config.tenants)
    for handler in wiring.handlers:
        prime_handler(handler.name, wiring.handler_tenants.get(handler.name, frozenset()))
    for spec in wiring.pollers:
        prime_poller(spec.poller.tenant, spec.poller.name)
    for tenant in config.tenants:
        for system in SYSTEMS:
            if getattr(tenant.systems, system.name, None) is not None:
                prime_upstream(system.name, tenant.id)
