"""Assemble the Starlette app for one ``CanvasSimulator``.

Middleware, outermost first: SIS-id path repair (``%2F`` inside a segment), a request-context id
for answers made in front of Canvas, statistics (so injected faults are counted too), fault
injection (an upstream gateway failing before Canvas sees the request), Canvas's own
request-context id, string ids, then Canvas's throttle.
"""

from __future__ import annotations

from typing import Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from simulators.canvas.account_routes import AccountRoutes
from simulators.canvas.assignments import AssignmentRoutes
from simulators.canvas.audit import AuditRoutes
from simulators.canvas.control import control_routes
from simulators.canvas.courses import CourseRoutes
from simulators.canvas.enrollments import EnrollmentRoutes
from simulators.canvas.outcomes import OutcomeRoutes
from simulators.canvas.request_context import RequestContextMiddleware
from simulators.canvas.responses import CanvasHTTPError, canvas_error_handler, http_exception_handler
from simulators.canvas.roster_control import RosterControlRoutes
from simulators.canvas.sections import SectionRoutes
from simulators.canvas.sis_path import SisPathMiddleware
from simulators.canvas.state import CanvasSimulator
from simulators.canvas.stats import StatsMiddleware
from simulators.canvas.string_ids import StringIdsMiddleware
from simulators.canvas.submissions import SubmissionRoutes
from simulators.canvas.terms import TermRoutes
from simulators.canvas.throttle import ThrottleMiddleware
from simulators.canvas.users import UserRoutes
from simulators.faults import FaultMiddleware


class _RouteGroup(Protocol):
    def routes(self) -> list[BaseRoute]: ...


def create_app(sim: CanvasSimulator) -> Starlette:
    """The HTTP face of ``sim``: Canvas API routes plus the ``/_sim/`` control API."""
    outcomes = OutcomeRoutes(sim)
    audit = AuditRoutes(sim)
    api: list[_RouteGroup] = [
        AccountRoutes(sim), UserRoutes(sim), TermRoutes(sim), CourseRoutes(sim), SectionRoutes(sim),
        EnrollmentRoutes(sim), AssignmentRoutes(sim), SubmissionRoutes(sim), audit,
    ]
    routes = [
        *control_routes(sim), *outcomes.control_routes(), *audit.control_routes(), *sim.oauth.control_routes(),
        *RosterControlRoutes(sim).control_routes(), *outcomes.routes(), *sim.oauth.routes(),
        *(route for group in api for route in group.routes()),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SisPathMiddleware),
            Middleware(RequestContextMiddleware, only_if_missing=True),
            Middleware(StatsMiddleware, stats=sim.stats),
            Middleware(FaultMiddleware, injector=sim.faults),
            Middleware(RequestContextMiddleware),
            Middleware(StringIdsMiddleware),
            Middleware(ThrottleMiddleware, throttle=sim.throttle, stats=sim.stats),
        ],
        exception_handlers={CanvasHTTPError: canvas_error_handler, HTTPException: http_exception_handler},
    )
