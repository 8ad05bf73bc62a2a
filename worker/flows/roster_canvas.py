"""The roster flow into Canvas: Illuminate students, staff, sections and rosters -> Canvas users,
terms, courses, sections and enrolments (handler ``roster_to_canvas``, ``handlers/roster_to_canvas.py``).

No pollers of its own: it consumes the events of the ``illuminate_changes`` flow, which the
tenant must enable too. It writes to the Canvas system's ``account_id`` with the tenant's one
Canvas client, so it shares that token's quota with every other flow using it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from handlers.roster_reference import roster_reference
from handlers.roster_to_canvas import HANDLER_NAME, CanvasTenant, RosterToCanvas
from worker.flows.roster_settings import SOURCE_FLOW, RosterSettings
from worker.handler_frame import AnyHandler
from worker.registry import Flow, FlowTenant
from worker.systems.canvas import CANVAS
from worker.systems.illuminate import ILLUMINATE


def _handlers(tenants: Mapping[str, FlowTenant[RosterSettings]]) -> Sequence[AnyHandler]:
    by_tenant = {
        tid: CanvasTenant(t.context.client(CANVAS), t.context.settings(CANVAS).account_id, t.settings.ids())
        for tid, t in tenants.items()
    }
    kafka = next(iter(tenants.values())).context.kafka.connection()
    return [RosterToCanvas(by_tenant, roster_reference(kafka))]


ROSTER_CANVAS: Flow[RosterSettings] = Flow(
    name="roster_canvas",
    summary="Illuminate students, staff, sections and rosters -> Canvas users, terms, courses, sections, enrolments",
    systems=(ILLUMINATE, CANVAS),
    config=RosterSettings,
    event_types={},
    handler_names=(HANDLER_NAME,),
    requires=(SOURCE_FLOW,),
    handlers=_handlers,
)
