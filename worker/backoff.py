"""Jittered exponential backoff, shared by clients, pollers and handlers."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: attempt n waits uniform(0, min(cap, base * 2**n))."""

    base: float = 0.2
    cap: float = 30.0

    def delay(self, attempt: int, floor: float = 0.0) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based), at least ``floor``."""
        ceiling = min(self.cap, self.base * (2 ** min(attempt, 30)))
        return max(floor, random.uniform(ceiling / 2, ceiling))
