"""``X-Request-Context-Id`` on every response (PUBLIC: canvas-lms ``lib/request_context/generator.rb``).

Canvas stamps each request with a fresh UUID, sends it back in ``X-Request-Context-Id`` and stores
it as ``request_id`` on the grade-change events the request causes (FLOWS.md 2.2 trap 5), which
gives the worker an exact echo key. The inner middleware mints the id the routes see; an outer
copy (``only_if_missing``) gives answers injected in front of Canvas (gateway faults) an id of
their own, so a lost write's 504 never reveals the id the write was recorded under.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-context-id"
STATE_KEY = "request_context_id"


def request_id(request: Request) -> str:
    """The request-context id of this request (a fresh one if no middleware minted it)."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    return str(state.setdefault(STATE_KEY, str(uuid.uuid4())))


class RequestContextMiddleware:
    """Mint a request-context id per HTTP request and send it back as a response header."""

    def __init__(self, app: ASGIApp, only_if_missing: bool = False) -> None:
        self.app = app
        self.only_if_missing = only_if_missing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.only_if_missing:
            scope.setdefault("state", {})[STATE_KEY] = str(uuid.uuid4())

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == HEADER for name, _ in headers):
                    state = scope.get("state") or {}
                    value = state.get(STATE_KEY) if not self.only_if_missing else None
                    headers.append((HEADER, str(value or uuid.uuid4()).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)
