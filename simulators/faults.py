"""Fault injection shared by every simulator, driven through ``/_sim/faults``.

Faults apply to API paths only, never to the control API. Each request draws from a
seeded random generator so a test that sets a seed sees the same fault sequence.
"""

from __future__ import annotations

import random
from collections.abc import MutableMapping
from typing import Any

import anyio
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

CONTROL_PREFIX = "/_sim/"

_HTML_ERROR = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1><p>upstream connect error</p></body></html>"
)


class FaultConfig(BaseModel):
    """The faults a simulator injects. Rates are probabilities per API request."""

    error_rate: float = Field(0.0, ge=0, le=1, description="share of requests answered 500/503")
    html_error_rate: float = Field(0.0, ge=0, le=1, description="share answered by an HTML 502 page")
    malformed_rate: float = Field(0.0, ge=0, le=1, description="share whose JSON body is truncated")
    timeout_rate: float = Field(0.0, ge=0, le=1, description="share that hang for timeout_seconds")
    timeout_seconds: float = Field(30.0, ge=0)
    lost_response_rate: float = Field(
        0.0, ge=0, le=1, description="share applied by the app whose answer is then lost (a 504 from the "
        "gateway): the write happened, the caller cannot know")
    latency_seconds: float = Field(0.0, ge=0, description="added to every API request")
    remaining: int | None = Field(
        None, ge=0, description="if set, faults apply only to the next N API requests"
    )
    seed: int | None = None


class FaultInjector:
    """Holds the current fault configuration and decides each request's fate."""

    def __init__(self) -> None:
        self.config = FaultConfig()
        self._rng = random.Random()
        self.injected = 0

    def set(self, config: FaultConfig) -> None:
        """Replace the configuration; a seed resets the random sequence."""
        self.config = config
        self._rng = random.Random(config.seed)

    def clear(self) -> None:
        """Remove every fault."""
        self.set(FaultConfig())

    def _active(self) -> bool:
        return self.config.remaining is None or self.config.remaining > 0

    def _spend(self) -> None:
        self.injected += 1
        if self.config.remaining is not None:
            self.config.remaining -= 1

    def draw(self) -> str | None:
        """Pick the fault for one request: 'error', 'html', 'malformed', 'timeout', 'lost' or None."""
        if not self._active():
            return None
        cfg = self.config
        for kind, rate in (
            ("timeout", cfg.timeout_rate), ("error", cfg.error_rate),
            ("html", cfg.html_error_rate), ("malformed", cfg.malformed_rate),
            ("lost", cfg.lost_response_rate),
        ):
            if rate and self._rng.random() < rate:
                self._spend()
                return kind
        return None


class FaultMiddleware:
    """ASGI middleware that applies a ``FaultInjector`` to every non-control request."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        cfg = self.injector.config
        if cfg.latency_seconds:
            await anyio.sleep(cfg.latency_seconds)
        fault = self.injector.draw()
        if fault == "timeout":
            await anyio.sleep(cfg.timeout_seconds)
            await Response(status_code=504)(scope, receive, send)
        elif fault == "error":
            await JSONResponse({"error": "simulated server error"}, status_code=500)(
                scope, receive, send
            )
        elif fault == "html":
            await Response(_HTML_ERROR, status_code=502, media_type="text/html")(
                scope, receive, send
            )
        elif fault == "malformed":
            await self.app(scope, receive, _truncating_send(send))
        elif fault == "lost":
            await self.app(scope, receive, _discarding_send)
            await Response(status_code=504)(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _discarding_send(message: MutableMapping[str, Any]) -> None:
    """Swallow the app's answer: the request was applied, the caller never hears of it."""


def _truncating_send(send: Send) -> Send:
    """Wrap ``send`` so the body is cut in half and Content-Length matches the cut."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            cut = body[: max(1, len(body) // 2)]
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(cut)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": cut})
            return
        await send(message)

    return wrapped  # type: ignore[return-value]


async def faults_endpoint(request: Request, injector: FaultInjector) -> JSONResponse:
    """GET shows, PUT/POST replaces, DELETE clears the fault configuration."""
    if request.method in ("PUT", "POST"):
        injector.set(FaultConfig.model_validate(await request.json()))
    elif request.method == "DELETE":
        injector.clear()
    return JSONResponse({**injector.config.model_dump(), "injected": injector.injected})
