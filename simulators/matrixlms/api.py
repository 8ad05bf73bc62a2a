"""The HTTP face of the API: ``/api/<function>?api_key=...`` (seed 000:L27-49).

Every answer is JSON with content type ``application/json; charset=utf-8`` (000:L29). Nothing
about a request is logged: its URL carries the api_key and personal data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from simulators.matrixlms.dispatch import dispatch
from simulators.matrixlms.errors import MatrixError
from simulators.matrixlms.params import parse_query

if TYPE_CHECKING:
    from simulators.matrixlms.state import MatrixSimulator


class MatrixJSONResponse(Response):
    """JSON rendered with orjson, with the documented content type."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def api_endpoint(sim: MatrixSimulator, request: Request) -> Response:
    """``GET /api/<function>``; POST only when ``accept_post`` is on (the seed says GET, 000:L27)."""
    query = request.url.query
    if request.method == "POST" and sim.config.accept_post:
        body = (await request.body()).decode("utf-8", errors="replace")
        query = f"{query}&{body}" if query and body else query or body
    elif request.method not in ("GET", "HEAD"):
        return MatrixJSONResponse({"message": "API calls are HTTP GET requests"}, status_code=400)
    try:
        params = parse_query(query)
    except MatrixError as exc:
        return MatrixJSONResponse({"message": exc.message}, status_code=exc.status)
    status, body = dispatch(sim, request.path_params.get("function", ""), params)
    return MatrixJSONResponse(body, status_code=status)


async def not_found(request: Request) -> Response:
    """Anything outside ``/api/`` and ``/_sim/``."""
    return MatrixJSONResponse({"message": "Not found"}, status_code=404)
