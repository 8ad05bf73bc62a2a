"""JSON responses and the error handler that renders ``ClassError``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from simulators.classroom.errors import ClassError


class ClassJSONResponse(Response):
    """JSON rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def class_error_handler(request: Request, exc: Exception) -> Response:
    """Render a ``ClassError``."""
    assert isinstance(exc, ClassError)
    return ClassJSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Unknown routes and methods answer JSON ``{"error": ...}`` like every other error."""
    assert isinstance(exc, HTTPException)
    return ClassJSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)
