"""Measurement probes for ``bench.standards_flow``: per-event timestamps and counter snapshots.

The worker code is not changed. The bench wraps the real poller and handler objects and
subclasses ``HandlerRunner`` so that every event of the benchmark tenant gets four stamps:

- ``created_at``: when the bench made the AB Connect mutation (phases b and c only; exact);
- ``polled_at``: when the poller's ``poll()`` returned the page holding it (its Kafka
  transaction follows within milliseconds);
- ``handled_at``: when ``StandardsToCanvas.handle`` returned (the Canvas writes are done);
- ``committed_at``: when the handler's batch transaction (ledger + offsets) committed, which is
  the moment ``edusync_end_to_end_latency_seconds`` observes.

``event_time`` is AB Connect's ``date_utc``, which has one-second resolution.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from handlers.standards_to_canvas import HANDLER_NAME
from schemas.envelope import CloudEvent
from simulators.abconnect import ABConnectSimulator
from simulators.canvas import CanvasSimulator
from worker.components import Component
from worker.config import WorkerConfig
from worker.handler_frame import AnyHandler, BatchHandler, HandlerRunner, Result
from worker.ledger import Ledger, LedgerView
from worker.metrics import END_TO_END_LATENCY, UPSTREAM_THROTTLE_WAIT, Outcome
from worker.poller_frame import Poller, PollResult
from worker.runtime import default_components
from worker.wiring import Wiring

# -- per-event stamps -----------------------------------------------------------------------


@dataclass
class EventTiming:
    """What the bench knows about one AB Connect event (by its feed ``seq``)."""

    seq: int
    kind: str = ""
    standard_guid: str | None = None
    event_time: float | None = None
    created_at: float | None = None
    polled_at: float | None = None
    handled_at: float | None = None
    committed_at: float | None = None
    outcome: str | None = None


class Timeline:
    """Stamps for every event of one tenant, keyed by AB seq."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.events: dict[int, EventTiming] = {}
        self._pending: dict[int, EventTiming] = {}  # handled, waiting for their batch to commit

    def _entry(self, seq: int) -> EventTiming:
        entry = self.events.get(seq)
        if entry is None:
            entry = self.events[seq] = EventTiming(seq)
        return entry

    def _mine(self, event: CloudEvent) -> EventTiming | None:
        if event.tenant != self.tenant:
            return None  # a shared broker may carry other tenants' events
        entry = self._entry(int(event.upstreamcursor))
        data = event.data_object()
        entry.kind = f"{data.get('target')}/{data.get('change_type')}"
        entry.standard_guid = data.get("standard_guid")
        entry.event_time = event.time.timestamp()
        return entry

    def created(self, seq: int, at: float) -> None:
        """The bench made the mutation that produced ``seq``."""
        self._entry(seq).created_at = at

    def polled(self, event: CloudEvent, at: float) -> None:
        """The poller read ``event`` from AB Connect."""
        entry = self._mine(event)
        if entry is not None and entry.polled_at is None:
            entry.polled_at = at

    def handled(self, event: CloudEvent, outcome: str, at: float) -> None:
        """The handler finished ``event`` (a retry overwrites an earlier failed attempt)."""
        entry = self._mine(event)
        if entry is not None:
            entry.outcome, entry.handled_at = outcome, at
            self._pending[entry.seq] = entry

    def pending(self) -> list[int]:
        """Seqs handled and not yet stamped committed."""
        return list(self._pending)

    def committed(self, seqs: Sequence[int], at: float) -> None:
        """The transaction holding ``seqs`` committed."""
        for seq in seqs:
            entry = self._pending.pop(seq, None)
            if entry is not None:
                entry.committed_at = at

    def select(self, seqs: Sequence[int]) -> list[EventTiming]:
        """The stamps of ``seqs`` (created empty if never seen)."""
        return [self._entry(s) for s in seqs]

    def count(self, seqs: Sequence[int], stamp: str) -> int:
        """How many of ``seqs`` carry ``stamp`` (``polled_at``, ``committed_at`` ...)."""
        return sum(1 for s in seqs if getattr(self._entry(s), stamp) is not None)


# -- wrappers around the real worker objects ---------------------------------------------------


class TimedPoller:
    """Delegates to the real poller and stamps ``polled_at``."""

    def __init__(self, inner: Poller, timeline: Timeline) -> None:
        self.inner = inner
        self.name = inner.name
        self.tenant = inner.tenant
        self.timeline = timeline

    async def poll(self, cursor: Any) -> PollResult:
        result = await self.inner.poll(cursor)
        now = time.time()
        for out in result.events:
            self.timeline.polled(out.event, now)
        return result


class TimedHandler:
    """Delegates to the real (batch) handler and stamps ``handled_at`` and each outcome."""

    def __init__(self, inner: BatchHandler, timeline: Timeline) -> None:
        self.inner = inner
        self.name = inner.name
        self.timeline = timeline

    @property
    def topics(self) -> Sequence[str]:
        return self.inner.topics

    def partitions_changed(self) -> None:
        changed = getattr(self.inner, "partitions_changed", None)
        if changed is not None:
            changed()

    async def handle_batch(self, events: Sequence[CloudEvent], ledger: Ledger) -> Sequence[Result]:
        try:
            results = await self.inner.handle_batch(events, ledger)
        except Exception as exc:  # the runner retries or dead-letters; a later success overwrites
            for event in events:
                self.timeline.handled(event, f"error:{type(exc).__name__}", time.time())
            raise
        now = time.time()
        for event, result in zip(events, results, strict=False):
            label = result.value if isinstance(result, Outcome) else f"error:{type(result).__name__}"
            self.timeline.handled(event, label, now)
        return results


def timed_runner(timeline: Timeline) -> type[HandlerRunner]:
    """``HandlerRunner`` that stamps ``committed_at`` on what each commit transaction covered."""

    class TimedRunner(HandlerRunner):
        async def _commit(self) -> None:
            covered = timeline.pending()  # handled before the commit began: their offsets are in it
            await super()._commit()
            timeline.committed(covered, time.time())

    return TimedRunner


def timed_components(timeline: Timeline) -> Any:
    """A ``components_for`` hook for ``run_worker``: the real components (tenant slots, their
    pollers and handler runners) with the probes around the pollers, handlers and commits."""

    def build(config: WorkerConfig, wiring: Wiring, view: LedgerView) -> list[Component]:
        handlers: list[AnyHandler] = []
        for handler in wiring.handlers:
            assert isinstance(handler, BatchHandler), "the standards handler is a batch handler"
            handlers.append(TimedHandler(handler, timeline))
        timed = replace(
            wiring, handlers=handlers,
            pollers=[replace(s, poller=TimedPoller(s.poller, timeline)) for s in wiring.pollers])
        return default_components(config, timed, view, timed_runner(timeline))

    return build


# -- counters -----------------------------------------------------------------------------------


@dataclass
class Counters:
    """Cumulative request and latency counters at one moment."""

    at: float
    ab_by_resource: Counter[str]
    ab_throttled: int
    canvas_by_kind: Counter[str]  # "GET /api/v1/... 200" -> responses
    canvas_throttled: int
    latency_buckets: list[tuple[float, float]] = field(default_factory=list)  # (le, cumulative count)
    throttle_wait: dict[str, float] = field(default_factory=dict)  # system -> seconds waited on rate limits

    def minus(self, earlier: Counters) -> Counters:
        """The increase since ``earlier``."""
        buckets = [(le, n - m) for (le, n), (_, m) in zip(self.latency_buckets, earlier.latency_buckets, strict=True)]
        return Counters(
            at=self.at - earlier.at, ab_by_resource=self.ab_by_resource - earlier.ab_by_resource,
            ab_throttled=self.ab_throttled - earlier.ab_throttled,
            canvas_by_kind=self.canvas_by_kind - earlier.canvas_by_kind,
            canvas_throttled=self.canvas_throttled - earlier.canvas_throttled, latency_buckets=buckets,
            throttle_wait={k: v - earlier.throttle_wait.get(k, 0.0) for k, v in self.throttle_wait.items()},
        )


def read_counters(ab: ABConnectSimulator, canvas: CanvasSimulator) -> Counters:
    """Both simulators' request statistics and the handler's latency histogram, now."""
    ab_stats, canvas_stats = ab.stats(), canvas.stats.snapshot()
    by_kind: Counter[str] = Counter()
    for kind, statuses in canvas_stats["requests"].items():
        for status, n in statuses.items():
            by_kind[f"{kind} {status}"] += n
    return Counters(
        at=time.time(), ab_by_resource=Counter(ab_stats["by_resource"]), ab_throttled=ab_stats["throttled"],
        canvas_by_kind=by_kind, canvas_throttled=canvas_stats["throttled"], latency_buckets=latency_buckets(),
        throttle_wait=throttle_waits(),
    )


def throttle_waits() -> dict[str, float]:
    """``edusync_upstream_throttle_wait_seconds_total`` by system: client-side bucket and quota pauses."""
    out: dict[str, float] = {}
    for metric in UPSTREAM_THROTTLE_WAIT.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["system"]] = out.get(sample.labels["system"], 0.0) + sample.value
    return out


def latency_buckets() -> list[tuple[float, float]]:
    """Cumulative bucket counts of ``edusync_end_to_end_latency_seconds`` for this handler."""
    out: list[tuple[float, float]] = []
    for metric in END_TO_END_LATENCY.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("handler") == HANDLER_NAME:
                out.append((float(sample.labels["le"]), sample.value))
    if not out:  # no observation yet: the labelled child does not exist
        END_TO_END_LATENCY.labels(HANDLER_NAME)
        return latency_buckets()
    return sorted(out)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus's ``histogram_quantile``: linear interpolation inside the bucket holding rank q*n."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower_bound  # beyond the last finite bucket: its bound is all we know
            if count == lower_count:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, count
    return lower_bound
