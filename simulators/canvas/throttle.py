"""Canvas's request throttling: a leaky bucket per access token (canvas.md §1.4 and §5.3).

Every API response carries ``X-Request-Cost`` and, while throttling is enabled,
``X-Rate-Limit-Remaining``. Each request adds its cost to the token's bucket, which drains at
``leak_rate`` per second; while the bucket is full the request is refused with
``403 Forbidden (Rate Limit Exceeded)`` (or the 429 the seed literally prints). Parallel requests
pay a pre-flight penalty that is credited back when they finish, as the Canvas docs describe.
Quota size, refill rate and penalty are not documented; the defaults below are choices.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulators.canvas.auth import bearer_token
from simulators.canvas.stats import Stats

API_PREFIX = "/api/"


class ThrottleConfig(BaseModel):
    """Bucket parameters, replaced through ``PUT /_sim/throttle``."""

    enabled: bool = True
    capacity: float = Field(default=700.0, gt=0, description="bucket size (the quota)")
    leak_rate: float = Field(default=10.0, ge=0, description="quota units restored per second")
    cost_per_request: float = Field(default=1.0, ge=0)
    cost_per_second: float = Field(default=0.0, ge=0, description="extra cost per second of handler time")
    preflight_penalty: float = Field(default=0.0, ge=0, description="charged while others are in flight")
    status: Literal[403, 429] = 403


@dataclass
class _Bucket:
    level: float = 0.0
    stamp: float = field(default_factory=time.monotonic)
    inflight: int = 0


@dataclass
class Ticket:
    """An admitted request: its bucket key, the penalty it holds and when it started."""

    key: str
    penalty: float
    started: float


class Throttle:
    """All buckets, keyed by a hash of the token (never the token itself)."""

    def __init__(self, config: ThrottleConfig | None = None) -> None:
        self._initial = config or ThrottleConfig()
        self.config = self._initial
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Initial configuration, every bucket empty."""
        self.configure(self._initial)

    def configure(self, config: ThrottleConfig) -> None:
        """Replace the parameters; buckets start empty so a test sees exactly its own budget."""
        with self._lock:
            self.config = config
            self._buckets.clear()

    def _leak(self, bucket: _Bucket, now: float) -> None:
        bucket.level = max(0.0, bucket.level - (now - bucket.stamp) * self.config.leak_rate)
        bucket.stamp = now

    def admit(self, key: str) -> Ticket | None:
        """Start a request; ``None`` means the bucket is full and the request is refused."""
        with self._lock:
            now = time.monotonic()
            bucket = self._buckets.setdefault(key, _Bucket(stamp=now))
            self._leak(bucket, now)
            if self.config.enabled and bucket.level >= self.config.capacity:
                return None
            penalty = self.config.preflight_penalty if bucket.inflight else 0.0
            bucket.level += penalty
            bucket.inflight += 1
            return Ticket(key, penalty, now)

    def finish(self, ticket: Ticket) -> tuple[float, float]:
        """End a request: credit the penalty back, charge the real cost; returns (cost, remaining)."""
        with self._lock:
            now = time.monotonic()
            bucket = self._buckets.setdefault(ticket.key, _Bucket(stamp=now))
            self._leak(bucket, now)
            cost = self.config.cost_per_request + (now - ticket.started) * self.config.cost_per_second
            bucket.level = max(0.0, bucket.level - ticket.penalty) + cost
            bucket.inflight = max(0, bucket.inflight - 1)
            return cost, self.config.capacity - bucket.level

    def remaining(self, key: str) -> float:
        """The quota left for ``key`` right now."""
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket())
            self._leak(bucket, time.monotonic())
            return self.config.capacity - bucket.level

    def describe(self) -> dict[str, Any]:
        """Configuration plus the remaining quota of every known bucket."""
        with self._lock:
            now = time.monotonic()
            for bucket in self._buckets.values():
                self._leak(bucket, now)
            remaining = {key: self.config.capacity - b.level for key, b in self._buckets.items()}
        return {**self.config.model_dump(), "buckets": remaining}


def bucket_key(scope: Scope) -> str:
    """Quota is per access token (canvas.md §1.4); anonymous callers share one bucket per address."""
    token = bearer_token(Headers(scope=scope), QueryParams(scope.get("query_string", b"")))
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    client = scope.get("client") or ("unknown", 0)
    return f"anonymous:{client[0]}"


def _number(value: float) -> bytes:
    return repr(round(value, 6)).encode()


class ThrottleMiddleware:
    """Applies the throttle to ``/api/`` requests and stamps the quota headers on every response."""

    def __init__(self, app: ASGIApp, throttle: Throttle, stats: Stats) -> None:
        self.app = app
        self.throttle = throttle
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        key = bucket_key(scope)
        ticket = self.throttle.admit(key)
        if ticket is None:
            await self._refuse(key, send)
            return
        finished = False

        async def stamped_send(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start" and not finished:
                finished = True
                cost, remaining = self.throttle.finish(ticket)
                headers = list(message.get("headers", []))
                headers.append((b"x-request-cost", _number(cost)))
                if self.throttle.config.enabled:
                    headers.append((b"x-rate-limit-remaining", _number(remaining)))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, stamped_send)
        finally:
            if not finished:
                self.throttle.finish(ticket)

    async def _refuse(self, key: str, send: Send) -> None:
        self.stats.record_throttled()
        status = self.throttle.config.status
        # The throttled body is plain text, not JSON; the seed prints "429 Forbidden (...)" verbatim.
        body = f"{status} Forbidden (Rate Limit Exceeded)\n".encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-cost", b"0.0"),
            (b"x-rate-limit-remaining", _number(self.throttle.remaining(key))),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
