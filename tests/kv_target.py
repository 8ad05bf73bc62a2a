"""A tiny versioned key-value HTTP server: the target of the frame tests' handler.

It logs every write, so a test can prove that no event was applied twice.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.faults import FaultInjector, FaultMiddleware, faults_endpoint


class KVTarget:
    """State of the server: current values and the write log."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, int]] = []
        self.faults = FaultInjector()
        # Keys starting with this answer 503 (a target that keeps failing for one partition's keys).
        self.failing_prefix: str | None = None

    def app(self) -> Any:
        """The ASGI app."""

        async def get_item(request: Request) -> Response:
            if self.failing_prefix and request.path_params["key"].startswith(self.failing_prefix):
                return JSONResponse({"error": "unavailable"}, 503)
            item = self.items.get(request.path_params["key"])
            return JSONResponse(item) if item else JSONResponse({"error": "not found"}, 404)

        async def put_item(request: Request) -> Response:
            body = await request.json()
            key = request.path_params["key"]
            self.items[key] = {"version": int(body["version"]), "value": body["value"]}
            self.writes.append((key, int(body["version"])))
            return JSONResponse(self.items[key])

        async def faults(request: Request) -> Response:
            return await faults_endpoint(request, self.faults)

        app = Starlette(routes=[
            Route("/kv/{key}", get_item, methods=["GET"]),
            Route("/kv/{key}", put_item, methods=["PUT"]),
            Route("/_sim/faults", faults, methods=["GET", "PUT", "DELETE"]),
        ])
        return FaultMiddleware(app, self.faults)
