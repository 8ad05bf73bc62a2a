"""One port for operations: Prometheus ``/metrics``, liveness ``/healthz``, readiness ``/readyz``."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.health import Health


def create_ops_app(health: Health) -> Starlette:
    """The ops ASGI app over ``health`` and the default Prometheus registry."""

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        # Liveness: the event loop answers. Restarting components are the supervisor's job.
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        report = health.report()
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    return Starlette(routes=[
        Route("/metrics", metrics), Route("/healthz", healthz), Route("/readyz", readyz),
    ])
