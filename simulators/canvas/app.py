"""Assemble the Starlette app for one ``CanvasSimulator``.

Middleware, outermost first: statistics (so injected faults are counted too), fault injection
(an upstream gateway failing before Canvas sees the request), then Canvas's throttle.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from simulators.canvas.control import control_routes
from simulators.canvas.outcomes import OutcomeRoutes
from simulators.canvas.responses import CanvasHTTPError, canvas_error_handler, http_exception_handler
from simulators.canvas.state import CanvasSimulator
from simulators.canvas.stats import StatsMiddleware
from simulators.canvas.throttle import ThrottleMiddleware
from simulators.faults import FaultMiddleware


def create_app(sim: CanvasSimulator) -> Starlette:
    """The HTTP face of ``sim``: Canvas API routes plus the ``/_sim/`` control API."""
    outcomes = OutcomeRoutes(sim)
    routes = [*control_routes(sim), *outcomes.control_routes(), *outcomes.routes()]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(StatsMiddleware, stats=sim.stats),
            Middleware(FaultMiddleware, injector=sim.faults),
            Middleware(ThrottleMiddleware, throttle=sim.throttle, stats=sim.stats),
        ],
        exception_handlers={CanvasHTTPError: canvas_error_handler, HTTPException: http_exception_handler},
    )
