"""The standards flow: AB Connect standards events -> Canvas account outcomes.

Pollers: the AB Connect events feed (``worker/pollers/abconnect_events.py``) and the periodic
reconcile requests (``worker/pollers/standards_reconcile.py``). Handler: ``standards_to_canvas``
(``handlers/standards_to_canvas.py``), one for every tenant that enables the flow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import Field

from handlers.canvas_outcome_tree import OutcomeTree
from handlers.standards_to_canvas import HANDLER_NAME, StandardsTenant, StandardsToCanvas
from schemas.abconnect import EVENT_TYPES
from worker.handler_frame import AnyHandler
from worker.poller_frame import PollerSpec
from worker.pollers.abconnect_events import ABConnectEventsPoller
from worker.pollers.standards_reconcile import StandardsReconcilePoller
from worker.registry import Flow, FlowSettings, FlowTenant, TenantContext
from worker.systems.abconnect import ABCONNECT
from worker.systems.canvas import CANVAS
from worker.topics import ABCONNECT_EVENTS, TopicSpec


class StandardsSettings(FlowSettings):
    """How a tenant's standards are followed and reconciled."""

    start_seq: int = Field(0, ge=0, description="seq to start from when no cursor is stored")
    poll_interval_seconds: float = Field(5.0, gt=0, description="doubles up to 4x while the feed is quiet")
    poll_deadline_seconds: float = Field(120.0, gt=0, description="one poll of the feed at most")
    max_seq_jump: int = Field(
        1_000_000, ge=1, description="a seq further than this past the previous one is refused as implausible")
    reconcile_interval_seconds: float = Field(
        86_400.0, gt=0, description="full compare of every document with Canvas, repairing changes made by hand")


def _pollers(ctx: TenantContext, settings: StandardsSettings) -> Sequence[PollerSpec]:
    ab = ctx.client(ABCONNECT)
    partner = ctx.settings(ABCONNECT).partner_id
    feed = ABConnectEventsPoller(ctx.id, partner, ab, start_seq=settings.start_seq, max_seq_jump=settings.max_seq_jump)
    reconcile = StandardsReconcilePoller(ctx.id, partner, ab, interval=settings.reconcile_interval_seconds)
    return [
        # Idle backoff: the events poller shares the account's 5 requests/s with the handler.
        PollerSpec(feed, settings.poll_interval_seconds, idle_backoff=True, deadline=settings.poll_deadline_seconds),
        PollerSpec(reconcile, min(60.0, settings.reconcile_interval_seconds), deadline=settings.poll_deadline_seconds),
    ]


def _handlers(tenants: Mapping[str, FlowTenant[StandardsSettings]]) -> Sequence[AnyHandler]:
    by_tenant = {
        tenant_id: StandardsTenant(
            t.context.client(ABCONNECT),
            OutcomeTree(t.context.client(CANVAS), t.context.settings(CANVAS).account_id),
        )
        for tenant_id, t in tenants.items()
    }
    return [StandardsToCanvas(by_tenant)]


STANDARDS: Flow[StandardsSettings] = Flow(
    name="standards",
    summary="AB Connect standards events -> Canvas account outcome groups and outcomes",
    systems=(ABCONNECT, CANVAS),
    config=StandardsSettings,
    event_types=EVENT_TYPES,
    topics=(TopicSpec(ABCONNECT_EVENTS),),
    handler_names=(HANDLER_NAME,),
    pollers=_pollers,
    handlers=_handlers,
)
