"""The HTTP layer under every API client: one place for timeouts, metrics and error mapping.

System-specific status handling (what a 403 means, which body signals throttling)
stays in each client; this module turns transport failures and unparseable bodies
into the typed errors of ``worker.clients.errors``.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from worker.clients.errors import MalformedResponseError, TransientUpstreamError
from worker.metrics import UPSTREAM_REQUESTS

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class UpstreamHTTP:
    """An ``httpx.AsyncClient`` that counts requests and maps transport errors."""

    def __init__(
        self, system: str, base_url: str, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.system = system
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, headers=headers,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; a timeout or connection failure raises ``TransientUpstreamError``."""
        try:
            response = await self.client.send(request)
        except httpx.TimeoutException as exc:
            UPSTREAM_REQUESTS.labels(self.system, "error").inc()
            raise TransientUpstreamError(self.system, f"timed out: {request.url.path}") from exc
        except httpx.TransportError as exc:
            UPSTREAM_REQUESTS.labels(self.system, "error").inc()
            raise TransientUpstreamError(
                self.system, f"connection failed: {type(exc).__name__}: {request.url.path}"
            ) from exc
        UPSTREAM_REQUESTS.labels(self.system, str(response.status_code)).inc()
        return response

    def json(self, response: httpx.Response) -> Any:
        """Parse a JSON body; HTML pages, truncated or empty bodies raise ``MalformedResponseError``."""
        ctype = response.headers.get("content-type", "")
        if "html" in ctype:
            raise MalformedResponseError(
                self.system, f"HTML page instead of JSON: {_snippet(response.content)}",
                status=response.status_code,
            )
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise MalformedResponseError(
                self.system, f"unparseable JSON ({exc}): {_snippet(response.content)}",
                status=response.status_code,
            ) from exc

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def _snippet(body: bytes, limit: int = 120) -> str:
    text = body[:limit].decode("utf-8", "replace").replace("\n", " ")
    return repr(text + ("..." if len(body) > limit else ""))
