"""Assemble the Starlette app of a ``ClassSimulator``.

Middleware, outermost first: statistics (so injected faults are counted too), fault injection
(a gateway failing before Class sees the request; ``lost_response_rate`` applies a create and
answers 504), then the non-normative throttle.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from simulators.classroom import routes_classes, routes_enrollments, routes_extras, routes_users
from simulators.classroom.control import control_routes
from simulators.classroom.errors import ClassError
from simulators.classroom.responses import class_error_handler, http_exception_handler
from simulators.classroom.state import ClassSimulator
from simulators.classroom.stats import StatsMiddleware
from simulators.classroom.throttle import ThrottleMiddleware
from simulators.faults import FaultMiddleware


def create_app(sim: ClassSimulator | None = None) -> Starlette:
    """The HTTP face of ``sim`` (a fresh simulator if omitted): ``/api/v1/...`` plus ``/_sim/``."""
    simulator = sim or ClassSimulator()
    routes = [
        *control_routes(simulator),
        *routes_classes.routes(simulator),
        *routes_enrollments.routes(simulator),
        *routes_users.routes(simulator),
        *routes_extras.routes(simulator),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(StatsMiddleware, stats=simulator.stats),
            Middleware(FaultMiddleware, injector=simulator.faults),
            Middleware(ThrottleMiddleware, sim=simulator),
        ],
        exception_handlers={ClassError: class_error_handler, HTTPException: http_exception_handler},
    )
