"""The roster flow into MatrixLMS: Illuminate students, staff, sections and rosters -> MatrixLMS
users, classes and class members (handler ``roster_to_matrixlms``, ``handlers/roster_to_matrixlms.py``).

No pollers of its own: it consumes the events of the ``illuminate_changes`` flow, which the
tenant must enable too. Its calls share the site's budget with every other MatrixLMS writer of
the process (one client per site and key, ``worker/systems/matrixlms.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from handlers.roster_reference import roster_reference
from handlers.roster_to_matrixlms import HANDLER_NAME, MatrixTenant, RosterToMatrixLMS
from worker.flows.roster_settings import SOURCE_FLOW, RosterSettings
from worker.handler_frame import AnyHandler
from worker.registry import Flow, FlowTenant
from worker.systems.illuminate import ILLUMINATE
from worker.systems.matrixlms import MATRIXLMS


def _handlers(tenants: Mapping[str, FlowTenant[RosterSettings]]) -> Sequence[AnyHandler]:
    by_tenant = {tid: MatrixTenant(t.context.client(MATRIXLMS), t.settings.ids()) for tid, t in tenants.items()}
    bootstrap = next(iter(tenants.values())).context.kafka.bootstrap_servers
    return [RosterToMatrixLMS(by_tenant, roster_reference(bootstrap))]


ROSTER_MATRIXLMS: Flow[RosterSettings] = Flow(
    name="roster_matrixlms",
    summary="Illuminate students, staff, sections and rosters -> MatrixLMS users, classes and class members",
    systems=(ILLUMINATE, MATRIXLMS),
    config=RosterSettings,
    event_types={},
    handler_names=(HANDLER_NAME,),
    requires=(SOURCE_FLOW,),
    handlers=_handlers,
)
