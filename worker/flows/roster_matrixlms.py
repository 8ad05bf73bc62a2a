"""The roster flow into MatrixLMS: Illuminate students, staff, sections and rosters -> MatrixLMS
users, classes and class members (handler ``roster_to_matrixlms``, ``handlers/roster_to_matrixlms.py``).

It consumes the events of the ``illuminate_changes`` flow, which the tenant must enable too. Its
one poller publishes the periodic reconcile requests (``worker/pollers/matrixlms_reconcile.py``),
spread over the interval. Its calls share the site's budget with every other MatrixLMS writer of
the process (one client per site and key, ``worker/systems/matrixlms.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import Field

from handlers.matrixlms_reconcile import WriteClock
from handlers.roster_reference import roster_reference
from handlers.roster_to_matrixlms import HANDLER_NAME, MatrixTenant, RosterToMatrixLMS
from schemas.matrixlms import EVENT_TYPES
from worker.flows.roster_settings import SOURCE_FLOW, RosterSettings
from worker.handler_frame import AnyHandler
from worker.poller_frame import PollerSpec
from worker.pollers.matrixlms_reconcile import MatrixReconcilePoller
from worker.registry import Flow, FlowTenant, TenantContext
from worker.systems.illuminate import ILLUMINATE
from worker.systems.matrixlms import MATRIXLMS
from worker.topics import MATRIXLMS_RECONCILE, TopicSpec


class MatrixRosterSettings(RosterSettings):
    """The roster flow's settings, plus MatrixLMS's periodic reconcile."""

    reconcile_interval_seconds: float = Field(
        86_400.0, gt=0, description="every class's students and teachers are read back once per interval and "
        "changes made in MatrixLMS by hand repaired (2 calls a class)")
    reconcile_slices: int = Field(
        96, ge=1, le=10_000, description="requests per round, spread evenly over the interval, so the reads take "
        "a steady small share of the budget")
    reconcile_quiet_seconds: float = Field(
        60.0, gt=0, description="a class the roster flow wrote to more recently (or a process younger) is left "
        "for the next round: its ledger entries may not be committed yet")


def _pollers(ctx: TenantContext, settings: MatrixRosterSettings) -> Sequence[PollerSpec]:
    poller = MatrixReconcilePoller(ctx.id, interval=settings.reconcile_interval_seconds,
                                   slices=settings.reconcile_slices)
    return [PollerSpec(poller, min(60.0, poller.step))]


def _handlers(tenants: Mapping[str, FlowTenant[MatrixRosterSettings]]) -> Sequence[AnyHandler]:
    by_tenant = {tid: MatrixTenant(t.context.client(MATRIXLMS), t.settings.ids(),
                                   reconcile_interval=t.settings.reconcile_interval_seconds,
                                   writes=WriteClock(quiet=t.settings.reconcile_quiet_seconds))
                 for tid, t in tenants.items()}
    kafka = next(iter(tenants.values())).context.kafka.connection()
    return [RosterToMatrixLMS(by_tenant, roster_reference(kafka))]


ROSTER_MATRIXLMS: Flow[MatrixRosterSettings] = Flow(
    name="roster_matrixlms",
    summary="Illuminate students, staff, sections and rosters -> MatrixLMS users, classes and class members",
    systems=(ILLUMINATE, MATRIXLMS),
    config=MatrixRosterSettings,
    event_types=EVENT_TYPES,
    topics=(TopicSpec(MATRIXLMS_RECONCILE),),
    handler_names=(HANDLER_NAME,),
    requires=(SOURCE_FLOW,),
    pollers=_pollers,
    handlers=_handlers,
)
