"""Assemble the ASGI app of a ``MatrixSimulator``: fault injection (an upstream gateway failing
before MatrixLMS sees the request) around the API routes and the ``/_sim/`` control API.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from simulators.faults import FaultMiddleware
from simulators.matrixlms.api import api_endpoint, not_found
from simulators.matrixlms.control import control_routes
from simulators.matrixlms.state import MatrixSimulator

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(sim: MatrixSimulator | None = None) -> ASGIApp:
    """The HTTP face of ``sim`` (a fresh simulator if omitted)."""
    simulator = sim or MatrixSimulator()

    async def api(request: Request) -> Response:
        return await api_endpoint(simulator, request)

    routes = [
        *control_routes(simulator),
        Route("/api/{function}", api, methods=_ALL_METHODS),
        Route("/{path:path}", not_found, methods=_ALL_METHODS),
    ]
    return FaultMiddleware(Starlette(routes=routes), simulator.faults)
