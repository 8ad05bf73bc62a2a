"""One cheap authenticated request per upstream system, for ``edusync config check --connect``.

Each probe reads as little as the API allows and nothing personal: an empty page of events, the
configured Canvas account, one row of terms, one page of one user id, the API version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from worker.clients.abconnect import ABConnectClient
from worker.clients.canvas import CanvasClient
from worker.clients.classroom import ClassroomClient
from worker.clients.illuminate import IlluminateClient
from worker.clients.matrixlms import MatrixLMSClient
from worker.registry import System
from worker.systems.abconnect import ABCONNECT, ABConnectConfig
from worker.systems.canvas import CANVAS, CanvasConfig
from worker.systems.classroom import CLASSROOM
from worker.systems.illuminate import ILLUMINATE
from worker.systems.matrixlms import MATRIXLMS

Probe = Callable[[Any, Any], Awaitable[str]]  # (client, its settings) -> what was checked


async def _abconnect(client: ABConnectClient, _: ABConnectConfig) -> str:
    # A seq past any real one: a signed request that answers an empty page.
    await client.events(after_seq=2**62, limit=1)
    return "GET events (signed)"


async def _canvas(client: CanvasClient, settings: CanvasConfig) -> str:
    # With OAuth this also fetches an access token with the refresh token first.
    await client.request("GET", f"/api/v1/accounts/{settings.account_id}")
    return f"GET accounts/{settings.account_id}"


async def _illuminate(client: IlluminateClient, _: Any) -> str:
    await client.request_json("GET", "/Api/Terms/", {"page": "1", "limit": "1"})
    return "GET Terms (one row, OAuth 1.0a signed)"


async def _classroom(client: ClassroomClient, _: Any) -> str:
    await client.users_page(page=1, limit=1)
    return "GET users (one row)"


async def _matrixlms(client: MatrixLMSClient, _: Any) -> str:
    return f"get_version: API version {await client.get_version()}"


PROBES: dict[str, Probe] = {
    ABCONNECT.name: _abconnect,
    CANVAS.name: _canvas,
    ILLUMINATE.name: _illuminate,
    CLASSROOM.name: _classroom,
    MATRIXLMS.name: _matrixlms,
}


async def probe(system: System[Any, Any], settings: Any) -> str:
    """Build a client of ``system`` for ``settings``, send its probe, close it; raises what the client raises."""
    client = system.client(settings)
    try:
        return await PROBES[system.name](client, settings)
    finally:
        await client.aclose()
