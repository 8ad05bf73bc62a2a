"""The roster flow into Class: Illuminate sections, rosters and staff -> Class classes, enrolments
and staff users (handler ``roster_to_class``, ``handlers/roster_to_class.py``).

No pollers of its own: it consumes the events of the ``illuminate_changes`` flow, which the
tenant must enable too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from handlers.roster_reference import roster_reference
from handlers.roster_to_class import HANDLER_NAME, ClassTenant, RosterToClass
from worker.flows.roster_settings import SOURCE_FLOW, RosterSettings
from worker.handler_frame import AnyHandler
from worker.registry import Flow, FlowTenant
from worker.systems.classroom import CLASSROOM
from worker.systems.illuminate import ILLUMINATE


def _handlers(tenants: Mapping[str, FlowTenant[RosterSettings]]) -> Sequence[AnyHandler]:
    by_tenant = {tid: ClassTenant(t.context.client(CLASSROOM), t.settings.ids()) for tid, t in tenants.items()}
    kafka = next(iter(tenants.values())).context.kafka.connection()
    return [RosterToClass(by_tenant, roster_reference(kafka))]


ROSTER_CLASSROOM: Flow[RosterSettings] = Flow(
    name="roster_classroom",
    summary="Illuminate sections, rosters and staff -> Class classes, enrolments and staff users",
    systems=(ILLUMINATE, CLASSROOM),
    config=RosterSettings,
    event_types={},
    handler_names=(HANDLER_NAME,),
    requires=(SOURCE_FLOW,),
    handlers=_handlers,
)
