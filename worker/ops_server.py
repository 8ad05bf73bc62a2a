"""One port for operations: Prometheus ``/metrics``, liveness ``/healthz``, readiness ``/readyz``
and the component report ``/status``. Read-only: any method that could change state is refused
with 405 on every path (pause, cursor and DLQ controls go through Kafka, not this port)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from worker.health import Health

READ_METHODS = frozenset({"GET", "HEAD"})
StatusReport = Callable[[], Awaitable[dict[str, Any]]]


class ReadOnly:
    """ASGI middleware: every request but GET and HEAD is answered 405, before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in READ_METHODS:
            response = JSONResponse({"error": "the ops port is read-only"}, status_code=405,
                                    headers={"Allow": ", ".join(sorted(READ_METHODS))})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_ops_app(health: Health, status: StatusReport | None = None) -> Starlette:
    """The ops ASGI app over ``health``, the default Prometheus registry and ``status``
    (the ``/status`` document; without it ``/status`` shows the health report)."""

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        # Liveness: the event loop answers. Restarting components are the supervisor's job.
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        report = health.report()
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    async def status_page(_: Request) -> Response:
        return JSONResponse(await status() if status is not None else health.report())

    return Starlette(routes=[
        Route("/metrics", metrics), Route("/healthz", healthz), Route("/readyz", readyz),
        Route("/status", status_page),
    ], middleware=[Middleware(ReadOnly)])
