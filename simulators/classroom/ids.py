"""Seeded identifiers: lowercase UUIDv4 strings, 11-digit meeting ids, integer sequences (B.9.5)."""

from __future__ import annotations

import random
import uuid


class IdFactory:
    """Deterministic ids for one simulator run (reseeded by reset and seed)."""

    def __init__(self, seed: int = 0) -> None:
        self.reset(seed)

    def reset(self, seed: int = 0) -> None:
        """Restart every sequence."""
        self._rng = random.Random(seed)
        self._counters: dict[str, int] = {}

    def uuid(self) -> str:
        """A random (seeded) UUIDv4, lowercase."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def meeting_id(self) -> str:
        """A numeric meeting id like "92117646134"."""
        return str(self._rng.randint(10_000_000_000, 99_999_999_999))

    def next(self, kind: str, start: int = 1) -> int:
        """The next integer id of ``kind`` (user ids, deferred ids)."""
        value = self._counters.get(kind, start)
        self._counters[kind] = value + 1
        return value

    def bump(self, kind: str, taken: int) -> None:
        """Make sure the sequence of ``kind`` continues after ``taken`` (for fixed example ids)."""
        self._counters[kind] = max(self._counters.get(kind, 1), taken + 1)
