"""Request and write statistics for ``GET /_sim/stats``.

Requests are counted by *kind* (method plus the path with ids replaced by ``:id``) and status.
Creates are counted per ``vendor_guid`` so a test can prove the worker never created the same
standard twice.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ID_SEGMENT = re.compile(r"^(\d+|self|default|site_admin|(sis|lti)_[a-z0-9_]+:.*)$")


def path_kind(method: str, path: str) -> str:
    """``GET /api/v1/accounts/1/outcome_groups/7`` -> ``GET /api/v1/accounts/:id/outcome_groups/:id``."""
    segments = [":id" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/")]
    return f"{method} {'/'.join(segments)}"


class Stats:
    """Thread-safe counters; the server thread writes, tests read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._requests: Counter[tuple[str, int]] = Counter()
            self._throttled = 0
            self._creates: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def record_request(self, kind: str, status: int) -> None:
        """Count one API response."""
        with self._lock:
            self._requests[(kind, status)] += 1

    def record_throttled(self) -> None:
        """Count one request refused by the throttle."""
        with self._lock:
            self._throttled += 1

    def record_create(self, entity: str, vendor_guid: str | None) -> None:
        """Count one create of ``entity``; creates without a vendor_guid count under ``""``."""
        with self._lock:
            self._creates[entity][vendor_guid or ""] += 1

    def creates(self, entity: str, vendor_guid: str) -> int:
        """How many ``entity`` objects were created with ``vendor_guid``."""
        with self._lock:
            return self._creates[entity][vendor_guid]

    def count(self, kind: str | None = None, status: int | None = None) -> int:
        """Responses matching ``kind`` and/or ``status`` (``None`` matches any)."""
        with self._lock:
            return sum(
                n for (k, s), n in self._requests.items()
                if (kind is None or k == kind) and (status is None or s == status)
            )

    def snapshot(self) -> dict[str, Any]:
        """The JSON served by ``GET /_sim/stats``."""
        with self._lock:
            by_kind: dict[str, dict[str, int]] = defaultdict(dict)
            for (kind, status), n in sorted(self._requests.items()):
                by_kind[kind][str(status)] = n
            creates = {entity: dict(counts) for entity, counts in self._creates.items()}
            duplicates = {
                entity: sorted(guid for guid, n in counts.items() if guid and n > 1)
                for entity, counts in self._creates.items()
            }
            return {
                "total": sum(self._requests.values()),
                "requests": dict(by_kind),
                "throttled": self._throttled,
                "creates_by_vendor_guid": creates,
                "duplicate_vendor_guids": duplicates,
            }


class StatsMiddleware:
    """Counts every ``/api/`` response, including ones produced by fault injection further in."""

    def __init__(self, app: ASGIApp, stats: Stats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        kind = path_kind(scope["method"], scope["path"])

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.stats.record_request(kind, int(message["status"]))
            await send(message)

        await self.app(scope, receive, counting_send)
