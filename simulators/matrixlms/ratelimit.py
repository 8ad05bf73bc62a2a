"""The documented rate limit: "If you exceed 120 API calls per minute, you will receive a rate
limit exception, and API access will be disabled for a minute" (seed 000:L23, matrix_class.md A.4).

Undocumented, so configurable, with these defaults (simulator choices, "assume the worst" as A.4
advises):

* the window is **rolling** (the last 60 s before each call); ``fixed`` counts per clock minute;
* the budget is **per site** (every key of the site shares it); ``key`` gives each key its own;
* the call that would be the 121st is refused with HTTP **400** and ``{"message": "Rate limit
  exceeded"}`` (A.3: everything but authentication is a 400), and starts a 60 s lockout during
  which **every** call of that site (or key) is refused with the same answer, ``get_version``
  included. A client should recognise the exception by its message, not its status;
* refused calls do not count towards the next window, and do not extend the lockout unless
  ``lockout_extends`` is set; when a lockout ends the window starts empty.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RATE_LIMIT_MESSAGE = "Rate limit exceeded"


class RateLimitConfig(BaseModel):
    """Rate-limit parameters, changed through ``PUT /_sim/config``."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    limit: int = Field(default=120, ge=0, description="calls admitted per window; the next one is refused")
    window_seconds: float = Field(default=60.0, gt=0)
    lockout_seconds: float = Field(default=60.0, ge=0, description="how long every call is refused")
    window: Literal["rolling", "fixed"] = "rolling"
    scope: Literal["site", "key"] = "site"
    status: Literal[400, 401, 429] = Field(default=400, description="undocumented; A.3 suggests 400")
    message: str = RATE_LIMIT_MESSAGE
    lockout_extends: bool = Field(default=False, description="a call refused during a lockout restarts it")


@dataclass(frozen=True)
class Decision:
    """The limiter's verdict on one call."""

    admitted: bool
    triggered: bool = False  # this call exceeded the limit and started a lockout
    locked_until: float | None = None


@dataclass
class _Scope:
    calls: deque[float] = field(default_factory=deque)
    fixed_window: int | None = None
    fixed_count: int = 0
    locked_until: float = 0.0


class RateLimiter:
    """Windows and lockouts, keyed by site name or by a key's fingerprint."""

    def __init__(self, config: RateLimitConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.config = config or RateLimitConfig()
        self._scopes: dict[str, _Scope] = {}

    def configure(self, config: RateLimitConfig) -> None:
        """New parameters; windows and lockouts start afresh."""
        with self._lock:
            self.config = config
            self._scopes.clear()

    def check(self, scope_key: str, now: float) -> Decision:
        """Admit or refuse one call made at simulated time ``now``."""
        cfg = self.config
        if not cfg.enabled:
            return Decision(True)
        with self._lock:
            scope = self._scopes.setdefault(scope_key, _Scope())
            if now < scope.locked_until:
                if cfg.lockout_extends:
                    scope.locked_until = now + cfg.lockout_seconds
                return Decision(False, locked_until=scope.locked_until)
            if self._count(scope, now) >= cfg.limit:
                scope.locked_until = now + cfg.lockout_seconds
                scope.calls.clear()
                scope.fixed_count = 0
                return Decision(False, triggered=True, locked_until=scope.locked_until)
            if cfg.window == "rolling":
                scope.calls.append(now)
            else:
                scope.fixed_count += 1
            return Decision(True)

    def _count(self, scope: _Scope, now: float) -> int:
        cfg = self.config
        if cfg.window == "fixed":
            index = int(now // cfg.window_seconds)
            if scope.fixed_window != index:
                scope.fixed_window, scope.fixed_count = index, 0
            return scope.fixed_count
        horizon = now - cfg.window_seconds
        while scope.calls and scope.calls[0] <= horizon:
            scope.calls.popleft()
        return len(scope.calls)

    def lockouts(self, now: float) -> dict[str, float]:
        """Scopes locked out at ``now`` and until when."""
        with self._lock:
            return {key: s.locked_until for key, s in self._scopes.items() if s.locked_until > now}
