"""The upstream change stream of ``bench.chaos``: changes spread evenly over the stream phase,
each tenant getting its share of every source on every tick.

- **Illuminate** roster (and score) mutations through the simulator's control API
  (``POST /_sim/mutate``, one call per kind and tick, ``count`` of them): enrols, drops,
  transfers, renames, hires and departures, new and re-graded scores;
- **AB Connect** standard changes through its control API (``POST /_sim/mutate``): modified,
  added and deleted standards;
- **Canvas** grade changes in the gradebook courses the audit pollers follow
  (``ChaosTenant.grade``).

A *change* is one mutation step (one enrol, one modified standard, one grade change). The
Illuminate and AB answers list the records each step touched; their totals are kept too.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.chaos_env import ChaosTenant

ILLUMINATE_KINDS: dict[str, int] = {"rename": 28, "enrol": 14, "drop": 14, "transfer": 12, "new_staff": 4,
                                    "departed_staff": 4, "new_scores": 16, "changed_scores": 8}
AB_KINDS: dict[str, int] = {"modify_standard": 50, "add_standard": 25, "delete_standard": 25}
SOURCES = ("illuminate", "abconnect", "canvas_grades")


@dataclass(frozen=True)
class ChangePlan:
    """How many changes of each source, in total over every tenant, over how many seconds."""

    illuminate: int
    abconnect: int
    canvas_grades: int
    seconds: float

    @property
    def total(self) -> int:
        return self.illuminate + self.abconnect + self.canvas_grades

    @classmethod
    def split(cls, total: int, shares: tuple[float, float, float], seconds: float) -> ChangePlan:
        """``total`` changes in the ratio ``shares`` (illuminate, abconnect, canvas grades)."""
        s = sum(shares)
        ill = round(total * shares[0] / s)
        ab = round(total * shares[1] / s)
        return cls(ill, ab, total - ill - ab, seconds)


@dataclass
class ChangeDriver:
    """Makes the plan's changes on schedule; counts what it made (and what failed)."""

    plan: ChangePlan
    tenants: list[ChaosTenant]
    rng: random.Random
    made: dict[str, Counter[str]] = field(default_factory=lambda: {s: Counter() for s in SOURCES})
    kinds: dict[str, Counter[str]] = field(default_factory=lambda: {s: Counter() for s in SOURCES})
    touched: Counter[str] = field(default_factory=Counter)  # records the steps touched, by entity
    errors: list[str] = field(default_factory=list)
    timeline: dict[str, dict[int, int]] = field(default_factory=lambda: {s: {} for s in SOURCES})
    call_seconds: float = 0.0
    calls: int = 0

    def __post_init__(self) -> None:
        self.http = httpx.Client(timeout=60)

    def total_made(self) -> int:
        return sum(sum(c.values()) for c in self.made.values())

    def per_tenant(self, source: str) -> int:
        total = {"illuminate": self.plan.illuminate, "abconnect": self.plan.abconnect,
                 "canvas_grades": self.plan.canvas_grades}[source]
        return total // len(self.tenants) + (1 if total % len(self.tenants) else 0)

    def _due(self, source: str, tenant: ChaosTenant, fraction: float) -> int:
        want = min(self.per_tenant(source), round(self.per_tenant(source) * fraction))
        return max(0, want - self.made[source][tenant.id])

    def tick(self, elapsed: float, bin_of: int) -> int:
        """Make every change due by ``elapsed`` seconds into the stream; how many were made."""
        fraction = min(1.0, elapsed / self.plan.seconds) if self.plan.seconds > 0 else 1.0
        made = 0
        started = time.perf_counter()
        for tenant in self.tenants:
            made += self._illuminate(tenant, self._due("illuminate", tenant, fraction), bin_of)
            made += self._abconnect(tenant, self._due("abconnect", tenant, fraction), bin_of)
            n = self._due("canvas_grades", tenant, fraction)
            if n:
                done = tenant.grade(n)
                self._count("canvas_grades", tenant, "grade_change", done, bin_of)
                made += done  # a draw that changed no grade is made up on the next tick
        self.call_seconds += time.perf_counter() - started
        return made

    def _count(self, source: str, tenant: ChaosTenant, kind: str, n: int, bin_of: int) -> None:
        self.made[source][tenant.id] += n
        self.kinds[source][kind] += n
        self.timeline[source][bin_of] = self.timeline[source].get(bin_of, 0) + n

    def _draw(self, weights: dict[str, int], n: int) -> Counter[str]:
        return Counter(self.rng.choices(list(weights), list(weights.values()), k=n))

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        self.calls += 1
        response = self.http.post(url, json=body)
        response.raise_for_status()
        return response.json()

    def _illuminate(self, tenant: ChaosTenant, n: int, bin_of: int) -> int:
        if n <= 0:
            return 0
        made = 0
        for kind, count in sorted(self._draw(ILLUMINATE_KINDS, n).items()):
            try:
                answer = self._post(f"{tenant.ill_server.url}/_sim/mutate",
                                    {"kind": kind, "count": count, "seed": self.rng.randrange(2**31)})
            except httpx.HTTPError as exc:
                self.errors.append(f"{tenant.id} illuminate {kind} x{count}: {exc!r}")
                continue
            for bucket in ("upserted", "deleted"):
                for entity, keys in (answer.get(bucket) or {}).items():
                    self.touched[f"illuminate {entity} {bucket}"] += len(keys)
            self._count("illuminate", tenant, kind, count, bin_of)
            made += count
        return made

    def _abconnect(self, tenant: ChaosTenant, n: int, bin_of: int) -> int:
        if n <= 0:
            return 0
        made = 0
        for kind, count in sorted(self._draw(AB_KINDS, n).items()):
            try:
                answer = self._post(f"{tenant.ab_server.url}/_sim/mutate",
                                    {"kind": kind, "count": count, "seed": self.rng.randrange(2**31)})
            except httpx.HTTPError as exc:
                self.errors.append(f"{tenant.id} abconnect {kind} x{count}: {exc!r}")
                continue
            self.touched["abconnect events"] += len(answer.get("events") or [])
            self._count("abconnect", tenant, kind, count, bin_of)
            made += count
        return made

    def close(self) -> None:
        self.http.close()

    def as_json(self) -> dict[str, Any]:
        return {"plan": {"illuminate": self.plan.illuminate, "abconnect": self.plan.abconnect,
                         "canvas_grades": self.plan.canvas_grades, "total": self.plan.total,
                         "seconds": self.plan.seconds},
                "made": {s: sum(c.values()) for s, c in self.made.items()}, "total_made": self.total_made(),
                "by_tenant": {s: dict(c) for s, c in self.made.items()},
                "by_kind": {s: dict(c) for s, c in self.kinds.items()}, "records_touched": dict(self.touched),
                "errors": self.errors[:50], "error_count": len(self.errors),
                "driver_seconds": round(self.call_seconds, 1), "control_calls": self.calls,
                "timeline": {s: {str(k): v for k, v in sorted(t.items())} for s, t in self.timeline.items()}}
