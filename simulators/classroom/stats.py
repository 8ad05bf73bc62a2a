"""Request statistics for ``GET /_sim/stats``: responses by method, path and status (fault answers
included, since the middleware sits outside fault injection) and class creates per
``ext_class_id``, so a test can prove a retry never made a second class.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Stats:
    """Thread-safe counters; the server thread writes, tests read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero everything."""
        with self._lock:
            self._requests: Counter[tuple[str, int]] = Counter()
            self._creates: Counter[str] = Counter()
            self._throttled = 0

    def record_request(self, kind: str, status: int) -> None:
        """One API response."""
        with self._lock:
            self._requests[(kind, status)] += 1

    def record_class_create(self, ext_class_id: str | None) -> None:
        """One class really created (``""`` when it had no ext_class_id)."""
        with self._lock:
            self._creates[ext_class_id or ""] += 1

    def record_throttled(self) -> None:
        """One request refused by the non-normative throttle."""
        with self._lock:
            self._throttled += 1

    def total(self) -> int:
        """API responses so far (cheap, for a benchmark sampling every second)."""
        with self._lock:
            return sum(self._requests.values())

    def snapshot(self, faults_injected: int) -> dict[str, Any]:
        """The JSON served by ``GET /_sim/stats``."""
        with self._lock:
            requests: dict[str, dict[str, int]] = {}
            for (kind, status), n in sorted(self._requests.items()):
                requests.setdefault(kind, {})[str(status)] = n
            return {
                "total": sum(self._requests.values()),
                "requests": requests,
                "class_creates": sum(self._creates.values()),
                "class_creates_by_ext_class_id": {k: n for k, n in sorted(self._creates.items()) if k},
                "throttled": self._throttled,
                "faults_injected": faults_injected,
            }


class StatsMiddleware:
    """Counts every ``/api/`` response."""

    def __init__(self, app: ASGIApp, stats: Stats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        kind = f"{scope['method']} {scope['path']}"

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.stats.record_request(kind, int(message["status"]))
            await send(message)

        await self.app(scope, receive, counting_send)
