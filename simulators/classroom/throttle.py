"""NOT NORMATIVE: the Class API documents no rate limit (matrix_class.md B.4). This optional mode
answers the next ``throttle_next`` API requests with 429 ``{"error": "Too Many Requests"}`` and
``Retry-After: 1`` so a client's defensive 429 handling can be tested.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from simulators.classroom.responses import ClassJSONResponse

if TYPE_CHECKING:
    from simulators.classroom.state import ClassSimulator


class ThrottleMiddleware:
    """Refuses API requests while ``sim.config.throttle_next`` is positive, counting it down."""

    def __init__(self, app: ASGIApp, sim: ClassSimulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/") and self.sim.take_throttle():
            self.sim.stats.record_throttled()
            response = ClassJSONResponse({"error": "Too Many Requests"}, status_code=429, headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
