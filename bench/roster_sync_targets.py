"""The targets of ``bench.roster_sync``: each brings its simulator, its ``systems:`` entry, its
flow, its convergence check and the numbers the report states.

``TARGETS`` is the list the bench runs (``--targets`` picks from it); the report gives any
target without a section of its own a generic one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from simulators.canvas import ThrottleConfig
from simulators.matrixlms import DEMO_SITE
from simulators.roster_convergence_matrixlms import READ_FUNCTIONS
from simulators.roster_projection import RosterProjection, RosterReport
from simulators.roster_targets import CanvasRosterTarget, ClassRosterTarget, MatrixRosterTarget


@dataclass(frozen=True)
class TargetOptions:
    """What the targets need from the bench's options."""

    scale: float  # MatrixLMS simulated seconds per real second (its simulator and the worker's budget)
    calls_per_minute: int  # the worker's MatrixLMS budget


class SyncTarget(Protocol):
    """One target system of the roster flows, as the bench drives it."""

    name: str  # the system's name, also the report's section
    flow: str
    handler: str

    def system_yaml(self) -> str:
        """Its ``systems:`` entry, indented for a tenant (secrets as ``${ENV}``)."""
        ...

    def environment(self) -> dict[str, str]:
        """The secrets its entry names."""
        ...

    def report(self, projection: RosterProjection) -> RosterReport:
        """How it differs from ``projection``."""
        ...

    def requests(self) -> int:
        """Requests it has answered so far (cheap: sampled every second)."""
        ...

    def results(self) -> dict[str, Any]:
        """Everything the report states about it, as JSON."""
        ...

    def close(self) -> None:
        """Stop its server."""
        ...


class ClassTarget(ClassRosterTarget):
    """The Class simulator (no documented limit, none simulated)."""

    def __init__(self, opts: TargetOptions) -> None:
        super().__init__()

    def requests(self) -> int:
        return self.sim.stats.total()

    def results(self) -> dict[str, Any]:
        """Requests by kind and status, and what Class holds (the objects edusync created)."""
        stats = self.sim.stats.snapshot(self.sim.faults.injected)
        with self.sim.lock:
            classes = list(self.sim.store.classes.values())
            # The class POST enrols its host as a teacher itself (B.6.7): not an object of its own.
            roles = Counter("host" if e.role == "teacher" and e.email == c.email and e.ext_person_id is None else e.role
                            for c in classes for e in c.enrollments)
            users = sum(1 for u in self.sim.store.users.values() if u.ext_user_id)
        creates = stats["class_creates_by_ext_class_id"]
        return {
            "requests": stats["total"], "by_kind": stats["requests"], "throttled": stats["throttled"],
            "class_creates": stats["class_creates"], "classes_created_twice": sum(1 for n in creates.values() if n > 1),
            "objects": {"classes": len(classes), "student enrolments": roles.get("student", 0),
                        "teacher enrolments (not the host)": roles.get("teacher", 0), "staff users": users},
            "host_enrolments": roles.get("host", 0),
        }


class MatrixTarget(MatrixRosterTarget):
    """The MatrixLMS simulator with its documented limit (120 calls in any rolling 60 s, then a
    60 s lockout of the site) on a clock ``scale`` times faster than real time; the worker's
    budget (``calls_per_minute``) runs on the same scale (``time_scale``)."""

    def __init__(self, opts: TargetOptions) -> None:
        super().__init__(opts.scale, opts.calls_per_minute)
        self.opts = opts
        if not self.sim.config.rate_limit.enabled:
            raise RuntimeError("the MatrixLMS simulator's rate limit must be on for this bench")

    def requests(self) -> int:
        return self.sim.stats.calls(DEMO_SITE)

    def sim_now(self) -> float:
        """The simulator's clock (simulated epoch seconds)."""
        return self.sim.clock.now()

    def results(self) -> dict[str, Any]:
        """The site's call statistics (per function and status, windows, lockouts) and contents."""
        site = self.sim.stats.snapshot(60.0, DEMO_SITE)["sites"].get(DEMO_SITE, {})
        functions: dict[str, dict[str, int]] = site.get("functions", {})
        by_function = {f: sum(s.values()) for f, s in functions.items()}
        with self.sim.lock:
            counts = self.sim.site(DEMO_SITE).counts()
        return {
            "calls": site.get("calls", 0), "refused": site.get("refused", 0), "lockouts": site.get("lockouts", []),
            "by_function": dict(sorted(by_function.items(), key=lambda kv: -kv[1])), "by_status": functions,
            "writes": sum(n for f, n in by_function.items() if f not in READ_FUNCTIONS),
            "reads": sum(n for f, n in by_function.items() if f in READ_FUNCTIONS),
            "max_calls_in_any_window": site.get("max_calls_in_any_window", 0),
            "first_call": site.get("first_call"), "last_call": site.get("last_call"),
            "windows": site.get("windows", []), "rate_limit": self.sim.config.rate_limit.model_dump(),
            "scale": self.opts.scale, "budget": self.opts.calls_per_minute, "site_counts": counts,
            "gaps": call_gaps(self.sim.stats.call_times(DEMO_SITE), self.opts.scale, self.opts.calls_per_minute),
        }



def call_gaps(times: list[float], scale: float, budget: int, window: float = 60.0) -> dict[str, Any]:
    """Where the time between MatrixLMS calls went, on the simulator's clock: the budget was full
    (the call had to wait for the oldest of the last ``budget`` calls to leave the window), calls
    followed each other within ``STALL_MS`` real milliseconds (one call in flight: the round trip),
    or longer stalls (no call was ready). Gaps are also given in real milliseconds (/ ``scale``)."""
    out: dict[str, Any] = {"budget_full_sim_s": 0.0, "back_to_back_sim_s": 0.0, "stalled_sim_s": 0.0,
                           "back_to_back": 0, "stalls": 0, "budget_waits": 0}
    real_ms: list[float] = []
    for i in range(1, len(times)):
        gap = times[i] - times[i - 1]
        # The budget dates a slot at its answer and adds a 0.1 s margin, so a full window shows
        # as the call `budget` places back being a little over one window older.
        if i >= budget and times[i] - times[i - budget] <= window + 1.0:
            out["budget_full_sim_s"] += gap
            out["budget_waits"] += 1
            continue
        ms = gap / scale * 1000.0
        if ms <= STALL_MS:
            out["back_to_back_sim_s"] += gap
            out["back_to_back"] += 1
            real_ms.append(ms)
        else:
            out["stalled_sim_s"] += gap
            out["stalls"] += 1
    real_ms.sort()
    for q in (50, 90, 99):
        out[f"back_to_back_p{q}_real_ms"] = real_ms[min(len(real_ms) - 1, len(real_ms) * q // 100)] if real_ms else 0.0
    return out


# A gap longer than this (real time) is a stall: no call was ready, not a slow round trip.
STALL_MS = 100.0


class CanvasTarget(CanvasRosterTarget):
    """The Canvas simulator with one admin token and the quota the standards bench and the demo use
    (capacity 700, 200 units a second back; the simulator's own default gives 10): at 10 a second
    the district's ~80,000 objects alone would take over two hours."""

    # What the handler creates; the simulator counts each create once per SIS id.
    created_kinds = ("user", "term", "course", "section", "enrollment")

    def __init__(self, opts: TargetOptions) -> None:
        super().__init__("bench-roster-canvas", ThrottleConfig(capacity=700, leak_rate=200), account="Bench District")

    def requests(self) -> int:
        return self.sim.stats.count()

    def results(self) -> dict[str, Any]:
        """Requests by kind and status, throttled answers, objects created (per kind and twice)."""
        stats = self.sim.stats.snapshot()
        creates: dict[str, dict[str, int]] = stats["creates_by_vendor_guid"]
        created = {kind: sum(creates.get(kind, {}).values()) for kind in self.created_kinds}
        by_kind: dict[str, dict[str, int]] = stats["requests"]
        gets = sum(n for kind, by_status in by_kind.items() if kind.startswith("GET") for n in by_status.values())
        return {
            "requests": stats["total"], "by_kind": by_kind, "throttled": stats["throttled"], "gets": gets,
            "created": created, "objects": sum(created.values()),
            "created_twice": {k: len(v) for k, v in stats["duplicate_vendor_guids"].items() if v},
            "throttle": self.throttle.model_dump(), "course_model": self.course_model,
        }


# The targets the bench can run, in report order.
TARGETS: dict[str, Callable[[TargetOptions], SyncTarget]] = {
    "classroom": ClassTarget,
    "matrixlms": MatrixTarget,
    "canvas": CanvasTarget,
}
