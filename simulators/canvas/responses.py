"""Canvas-shaped responses and errors for the simulator.

Bodies follow /work/shared/api/canvas.md: 401 bodies (§1.2, App. A.5), the 404 body (App. A.6),
and Canvas's validation body ``{"errors": {attr: [{attribute, type, message}]}}``, which is how
Canvas renders ActiveRecord errors (its ``InstructureHashReporter``) on 400 answers.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

NOT_FOUND_MESSAGE = "The specified resource does not exist."
WWW_AUTHENTICATE = 'Bearer realm="canvas-lms"'


class CanvasJSONResponse(Response):
    """A JSON response rendered with orjson, with Canvas's content type."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class CanvasHTTPError(Exception):
    """Raised by route code; turned into a Canvas-shaped response by ``canvas_error_handler``."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def not_found() -> CanvasHTTPError:
    """Unknown or deleted entity: 404 with Canvas's message."""
    return CanvasHTTPError(404, {"errors": [{"message": NOT_FOUND_MESSAGE}]})


def bad_request(body: Any = "error") -> CanvasHTTPError:
    """A 400. Several outcome endpoints answer the bare JSON string ``"error"``."""
    return CanvasHTTPError(400, body)


def validation_error(attribute: str, error_type: str, message: str) -> CanvasHTTPError:
    """A 400 with Canvas's per-attribute validation body."""
    return CanvasHTTPError(
        400, {"errors": {attribute: [{"attribute": attribute, "type": error_type, "message": message}]}}
    )


def unauthenticated(invalid_token: bool, message: str | None = None) -> CanvasHTTPError:
    """401 for a missing, unknown or expired token, with WWW-Authenticate (canvas.md §1.2)."""
    body: dict[str, Any]
    if invalid_token:
        body = {"errors": [{"message": message or "Invalid access token."}]}
    else:
        body = {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]}
    return CanvasHTTPError(401, body, {"WWW-Authenticate": WWW_AUTHENTICATE})


def taken(attribute: str, message: str) -> CanvasHTTPError:
    """A 400 for a uniqueness clash (SIS id or login already in use), typed ``taken``."""
    return validation_error(attribute, "taken", message)


def unauthorized(status: int = 401) -> CanvasHTTPError:
    """A valid token without the permission: 401 without WWW-Authenticate, or 403 if configured."""
    message = "user not authorized to perform that action"
    return CanvasHTTPError(status, {"status": "unauthorized", "errors": [{"message": message}]})


async def canvas_error_handler(request: Request, exc: Exception) -> Response:
    """Render a ``CanvasHTTPError``."""
    assert isinstance(exc, CanvasHTTPError)
    return CanvasJSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Unknown routes answer like Canvas (JSON 404), not with Starlette's plain text."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return CanvasJSONResponse({"errors": [{"message": NOT_FOUND_MESSAGE}]}, status_code=404)
    return CanvasJSONResponse({"errors": [{"message": str(exc.detail)}]}, status_code=exc.status_code)
