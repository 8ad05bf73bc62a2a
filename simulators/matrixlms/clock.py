"""The simulator's clock: wall-clock time that runs ``scale`` times faster (or is frozen).

Rate-limit windows, lockouts and every timestamp the simulator writes read this clock, never
``time.time()`` directly, so a test or benchmark can run an hour of rate-limited work in a minute
(``scale=60``), freeze time (``scale=0``) or jump it (``advance``). Nothing ever sleeps on it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any


class SimClock:
    """Simulated epoch seconds: ``anchor + (monotonic elapsed since anchoring) * scale``."""

    def __init__(self, scale: float = 1.0, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._initial_scale = scale
        self._initial_start = start
        self.reset()

    def reset(self) -> None:
        """Back to the construction-time scale, starting from the start time (default: now)."""
        with self._lock:
            self._scale = self._initial_scale
            self._anchor_real = time.monotonic()
            self._anchor_sim = self._initial_start if self._initial_start is not None else time.time()

    def _now_locked(self) -> float:
        return self._anchor_sim + (time.monotonic() - self._anchor_real) * self._scale

    def now(self) -> float:
        """Simulated seconds since the epoch."""
        with self._lock:
            return self._now_locked()

    @property
    def scale(self) -> float:
        """How many simulated seconds pass per real second (0 freezes the clock)."""
        return self._scale

    def set_scale(self, scale: float) -> None:
        """Change the speed from now on; time already elapsed is kept."""
        if scale < 0:
            raise ValueError("scale must be >= 0")
        with self._lock:
            self._anchor_sim = self._now_locked()
            self._anchor_real = time.monotonic()
            self._scale = scale

    def advance(self, seconds: float) -> None:
        """Jump forward (never backward: windows and lockouts assume a monotonic clock)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._anchor_sim += seconds

    def describe(self) -> dict[str, Any]:
        """The JSON served by ``GET /_sim/clock``."""
        now = self.now()
        return {"epoch": now, "iso": datetime.fromtimestamp(now, UTC).isoformat(), "scale": self._scale}
