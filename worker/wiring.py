"""From configuration to components: which pollers and handlers each tenant gets."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.canvas_outcome_tree import OutcomeTree
from handlers.standards_to_canvas import StandardsTenant, StandardsToCanvas
from worker.clients.abconnect import ABConnectClient, default_bucket
from worker.clients.canvas import CanvasClient
from worker.components import Component, handler_component, poller_component
from worker.config import ABConnectConfig, CanvasConfig, WorkerConfig
from worker.handler_frame import Handler
from worker.poller_frame import Poller
from worker.pollers.abconnect_events import ABConnectEventsPoller
from worker.pollers.illuminate_wiring import illuminate_client, illuminate_pollers
from worker.pollers.snapshot_store import SnapshotStore


def _ab_clients(cfg: ABConnectConfig) -> tuple[ABConnectClient, ABConnectClient]:
    """A poller client and a handler client sharing one token bucket: AB counts per account."""
    bucket = default_bucket()
    key = cfg.partner_key.get_secret_value()
    return (
        ABConnectClient(cfg.base_url, cfg.partner_id, key, user_id=cfg.user_id, bucket=bucket),
        ABConnectClient(cfg.base_url, cfg.partner_id, key, user_id=cfg.user_id, bucket=bucket),
    )


def _canvas_tree(cfg: CanvasConfig) -> OutcomeTree:
    return OutcomeTree(CanvasClient(cfg.base_url, cfg.token.get_secret_value()), cfg.account_id)


@dataclass(frozen=True)
class PollerSpec:
    """A poller, its interval, and whether it may stretch the interval while idle."""

    poller: Poller
    interval: float
    idle_backoff: bool = False


def build_handlers_and_pollers(config: WorkerConfig) -> tuple[list[Handler], list[PollerSpec]]:
    """The handlers and pollers the configuration asks for."""
    pollers: list[PollerSpec] = []
    standards: dict[str, StandardsTenant] = {}
    for tenant in config.tenants:
        if tenant.abconnect is not None:
            poll_client, handler_client = _ab_clients(tenant.abconnect)
            poller = ABConnectEventsPoller(
                tenant.id, tenant.abconnect.partner_id, poll_client, start_seq=tenant.abconnect.start_seq
            )
            # Idle backoff: the events poller shares the account's 5 requests/s with the handler.
            pollers.append(PollerSpec(poller, tenant.abconnect.poll_interval_seconds, idle_backoff=True))
            if tenant.canvas is not None:
                standards[tenant.id] = StandardsTenant(handler_client, _canvas_tree(tenant.canvas))
        if tenant.illuminate is not None:
            cfg = tenant.illuminate
            # One client and one snapshot store per tenant, shared by its pollers (see illuminate_wiring).
            store = SnapshotStore(config.kafka.bootstrap_servers, tenant.id)
            pollers += [PollerSpec(p, cfg.poll_interval_seconds)
                        for p in illuminate_pollers(tenant.id, cfg, illuminate_client(cfg), store)]
    handlers: list[Handler] = [StandardsToCanvas(standards)] if standards else []
    return handlers, pollers


def build_components(config: WorkerConfig) -> list[Component]:
    """Every poller and handler the configuration asks for, as supervised components."""
    kafka = config.kafka
    handlers, pollers = build_handlers_and_pollers(config)
    components = [
        poller_component(spec.poller, kafka.bootstrap_servers, spec.interval, spec.idle_backoff) for spec in pollers
    ]
    components += [
        handler_component(h, kafka.bootstrap_servers, kafka.replica_id, kafka.broker_patience_seconds,
                          kafka.consumer_group_prefix)
        for h in handlers
    ]
    return components
