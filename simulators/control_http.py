"""The JSON helpers every simulator's ``/_sim/`` control API answers with."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` as a JSON response."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def read_body(request: Request) -> Any:
    """The request's JSON body; ``{}`` when it is empty (``orjson.JSONDecodeError`` if it is not JSON)."""
    raw = await request.body()
    return orjson.loads(raw) if raw.strip() else {}


def invalid_request(exc: Exception) -> Response:
    """A 422 naming what was wrong with a control request."""
    detail = exc.errors(include_url=False, include_context=False) if isinstance(exc, ValidationError) else str(exc)
    return json_response({"error": "invalid request", "detail": detail}, 422)


__all__ = ["invalid_request", "json_response", "read_body"]
