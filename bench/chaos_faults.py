"""Upstream faults for ``bench.chaos``: a share of 5xx answers on every simulator, and throttling
bursts, each through the simulator's own control API where it has one.

- **5xx**: ``/_sim/faults`` (``simulators/faults.py``) with ``error_rate`` on every simulator of
  every tenant, a seed each, so a run with the same ``--seed`` draws the same fault sequence.
- **Throttling bursts**: for a few seconds one system of one tenant refuses calls the way that
  system does:

  ========== ===================================================================================
  canvas     ``PUT /_sim/throttle`` with a tiny bucket: Canvas's ``403 Forbidden (Rate Limit Exceeded)``
  abconnect  ``PUT /_sim/config`` with a rate far below the documented 5/s: AB's 429
  classroom  ``PUT /_sim/config`` ``throttle_next`` (the simulator's non-normative 429 mode)
  matrixlms  ``PUT /_sim/config`` ``rate_limit.limit: 0``: every call is the documented "rate limit
             exception" and starts the site's lockout (60 s on the simulator's 60x clock)
  illuminate no throttling is documented (illuminate.md: "Rate limits and Retry-After are NOT
             DOCUMENTED") and the simulator has none: ``BurstThrottle`` below answers 429 with
             ``Retry-After: 1``, the generic HTTP answer every client here treats as throttling
  ========== ===================================================================================

Control paths (``/_sim/``) are never faulted or throttled.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

CONTROL_PREFIX = "/_sim/"
THROTTLED_SYSTEMS = ("illuminate", "abconnect", "canvas", "classroom", "matrixlms")


class BurstThrottle:
    """ASGI middleware: while a burst is on, every API request is answered 429 with ``Retry-After: 1``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._until = 0.0
        self.refused = 0

    def start(self, seconds: float) -> None:
        """Throttle for the next ``seconds``."""
        with self._lock:
            self._until = time.monotonic() + seconds

    def stop(self) -> None:
        """End the burst now."""
        with self._lock:
            self._until = 0.0

    def _throttling(self) -> bool:
        with self._lock:
            if time.monotonic() < self._until:
                self.refused += 1
                return True
            return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(CONTROL_PREFIX) and self._throttling():
            body = orjson.dumps({"error": "Too Many Requests"})
            await send({"type": "http.response.start", "status": 429,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


@dataclass
class Burst:
    """One throttling burst as it happened (seconds since the run started)."""

    t: float
    tenant: str
    system: str
    seconds: float
    ok: bool = True
    error: str | None = None


@dataclass
class SystemControl:
    """How to switch one tenant's system into and out of throttling."""

    start: Callable[[float], None]
    stop: Callable[[], None]


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> None:
    response = httpx.request(method, url, json=body, timeout=10)
    response.raise_for_status()


def control_for(system: str, url: str, illuminate: BurstThrottle | None = None,
                canvas_throttle: dict[str, Any] | None = None) -> SystemControl:
    """The burst switches of ``system`` served at ``url`` (its base, without the API path)."""
    if system == "canvas":
        restore = canvas_throttle or {"capacity": 700, "leak_rate": 200}
        return SystemControl(lambda s: _call("PUT", f"{url}/_sim/throttle", {"capacity": 3, "leak_rate": 0.5}),
                             lambda: _call("PUT", f"{url}/_sim/throttle", restore))
    if system == "abconnect":
        return SystemControl(lambda s: _call("PUT", f"{url}/_sim/config", {"rate_per_second": 0.2, "burst": 1}),
                             lambda: _call("PUT", f"{url}/_sim/config", {"rate_per_second": 5.0, "burst": 25.0}))
    if system == "classroom":
        return SystemControl(lambda s: _call("PUT", f"{url}/_sim/config", {"throttle_next": 1_000_000}),
                             lambda: _call("PUT", f"{url}/_sim/config", {"throttle_next": 0}))
    if system == "matrixlms":
        return SystemControl(lambda s: _call("PUT", f"{url}/_sim/config", {"rate_limit": {"limit": 0}}),
                             lambda: _call("PUT", f"{url}/_sim/config", {"rate_limit": {"limit": 120}}))
    if system == "illuminate" and illuminate is not None:
        throttle = illuminate
        return SystemControl(throttle.start, throttle.stop)
    raise ValueError(f"no throttling burst for system {system!r}")


@dataclass
class FaultPlan:
    """The faults of one run: ``error_rate`` 5xx everywhere, and throttling bursts every
    ``burst_every`` seconds (uniform within the range) lasting ``burst_seconds``."""

    error_rate: float
    burst_every: tuple[float, float]
    burst_seconds: tuple[float, float]
    rng: random.Random
    # (tenant, system) -> its control base URL's fault endpoint and burst switches
    fault_urls: list[str] = field(default_factory=list)
    controls: dict[tuple[str, str], SystemControl] = field(default_factory=dict)
    bursts: list[Burst] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _active: list[tuple[float, tuple[str, str]]] = field(default_factory=list)
    _next_burst: float = 0.0

    def set_errors(self, seed: int) -> None:
        """``error_rate`` on every simulator (seeded per simulator)."""
        for i, url in enumerate(self.fault_urls):
            try:
                _call("PUT", f"{url}/_sim/faults", {"error_rate": self.error_rate, "seed": seed * 1000 + i})
            except httpx.HTTPError as exc:
                self.errors.append(f"setting faults at {url}: {exc!r}")

    def clear(self) -> None:
        """No faults anywhere, every burst ended."""
        for url in self.fault_urls:
            try:
                _call("DELETE", f"{url}/_sim/faults")
            except httpx.HTTPError as exc:
                self.errors.append(f"clearing faults at {url}: {exc!r}")
        for _, key in self._active:
            self._stop(key)
        self._active.clear()

    def schedule_first(self, now: float) -> None:
        """The first burst comes a first interval after ``now``."""
        self._next_burst = now + self.rng.uniform(*self.burst_every)

    def tick(self, now: float) -> None:
        """End bursts that are due, start the next one when it is time (``now``: run seconds)."""
        for until, key in list(self._active):
            if now >= until:
                self._stop(key)
                self._active.remove((until, key))
        if not self.controls or now < self._next_burst:
            return
        self._next_burst = now + self.rng.uniform(*self.burst_every)
        busy = {key for _, key in self._active}
        choices = sorted(k for k in self.controls if k not in busy)
        if not choices:
            return
        key = self.rng.choice(choices)
        seconds = self.rng.uniform(*self.burst_seconds)
        burst = Burst(now, key[0], key[1], seconds)
        try:
            self.controls[key].start(seconds)
            self._active.append((now + seconds, key))
        except httpx.HTTPError as exc:
            burst.ok, burst.error = False, repr(exc)
            self.errors.append(f"burst {key}: {exc!r}")
        self.bursts.append(burst)

    def _stop(self, key: tuple[str, str]) -> None:
        try:
            self.controls[key].stop()
        except httpx.HTTPError as exc:
            self.errors.append(f"ending burst {key}: {exc!r}")
