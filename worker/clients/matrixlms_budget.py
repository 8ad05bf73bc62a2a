"""The MatrixLMS call budget of one site: "If you exceed 120 API calls per minute, you will receive
a rate limit exception, and API access will be disabled for a minute" (seed 000:L23).

Neither the window (fixed or rolling) nor the scope (per key or per site) is documented
(matrix_class.md A.4), so this assumes the worst, as A.4 advises: a rolling 60 s window counted
per site. A ``SiteBudget`` admits at most ``limit`` calls in any rolling ``window`` (default 100
of the documented 120, FLOWS.md 2.5), one call in flight, and after a rate-limit exception
admits nothing for ``pause_seconds`` (default 65: the one-minute lockout plus a margin). Each
call's slot is dated when its answer arrives, not when it was sent: the server counts it at
arrival, somewhere in between, so the next window never opens early on the server's clock.

One budget per site per process (``BudgetRegistry``), shared by every client, flow and tenant
that calls the site; replicas divide the site's budget between them by configuration.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import httpx
import structlog

from worker.metrics import UPSTREAM_THROTTLE_WAIT, watch_budget
from worker.replica_share import REPLICAS, BudgetShare

log = structlog.get_logger(__name__)

SYSTEM = "matrixlms"
DOCUMENTED_LIMIT = 120  # calls per minute (seed 000:L23)
DEFAULT_CALLS_PER_MINUTE = 100  # headroom for other integrations on the same site (A.4, FLOWS 2.5)
WINDOW_SECONDS = 60.0
DEFAULT_LOCKOUT_PAUSE_SECONDS = 65.0  # "disabled for a minute", plus a margin (A.4 point 3)
# Slots expire this much after a full window, so float rounding and the server's own clock
# resolution never let a call in at the very edge of its window.
EDGE_MARGIN_SECONDS = 0.1


async def _real_sleep(seconds: float) -> None:
    await anyio.sleep(seconds)


@dataclass(frozen=True)
class BudgetClock:
    """Where the budget reads time and how it waits: monotonic seconds and a sleep, both injectable."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = _real_sleep

    @classmethod
    def scaled(cls, scale: float) -> BudgetClock:
        """A clock running ``scale`` times faster than real time, like the simulator's ``/_sim/clock``."""
        if scale <= 0:
            raise ValueError("scale must be > 0")

        async def sleep(seconds: float) -> None:
            await anyio.sleep(seconds / scale)

        return cls(now=lambda: time.monotonic() * scale, sleep=sleep)


@dataclass
class BudgetStats:
    """What a budget did, for benchmarks and tests."""

    admitted: int = 0
    waited_seconds: float = 0.0
    lockouts: int = 0
    paused_seconds: float = 0.0


@dataclass
class SiteBudget:
    """At most ``limit`` calls to one site in any rolling ``window`` seconds, one at a time, and
    none for ``pause_seconds`` after a rate-limit exception. ``acquire`` is the HTTP layer's
    ``pace`` hook, ``gate`` its in-flight limiter and ``settle`` runs when an answer arrives."""

    limit: int = DEFAULT_CALLS_PER_MINUTE
    window: float = WINDOW_SECONDS
    pause_seconds: float = DEFAULT_LOCKOUT_PAUSE_SECONDS
    clock: BudgetClock = field(default_factory=BudgetClock)
    site: str = ""
    stats: BudgetStats = field(default_factory=BudgetStats)
    # The replicas that spend this site's window divide it (worker.replica_share).
    share: BudgetShare = field(default_factory=lambda: REPLICAS)

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0 or self.pause_seconds < 0:
            raise ValueError("a site budget needs limit >= 1, window > 0 and pause_seconds >= 0")
        self._slots: deque[float] = deque()
        self._open = False  # the last slot's call has not been answered yet
        self.paused_until = -math.inf
        self._epoch = self.share.epoch
        # One call in flight per site: the HTTP layer holds this around pacing and sending.
        self.gate = anyio.CapacityLimiter(1)
        watch_budget(SYSTEM, self.use)

    def use(self) -> float:
        """Share of this replica's window spent (1 while locked out)."""
        if self.clock.now() < self.paused_until:
            return 1.0
        return self.in_window() / max(1, int(self.share.of(self.limit)))

    def in_window(self) -> int:
        """Calls counted in the current rolling window."""
        self._expire(self.clock.now())
        return len(self._slots)

    def _expire(self, now: float) -> None:
        horizon = now - self.window - EDGE_MARGIN_SECONDS
        while self._slots and self._slots[0] <= horizon:
            self._slots.popleft()

    def settle(self) -> None:
        """The call in flight got its answer: date its slot now (the server counted it by now)."""
        if self._open and self._slots:
            self._slots[-1] = max(self._slots[-1], self.clock.now())
        self._open = False

    async def acquire(self) -> None:
        """Wait for a slot in the window (and for any lockout pause to end), then take it."""
        # One call in flight: if the previous one ended without an answer (timeout, reset), it
        # ended before this call could pass the gate, so now is a safe date for its slot.
        self.settle()
        self._after_reassignment()
        while True:
            now = self.clock.now()
            if now < self.paused_until:
                wait = self.paused_until - now
            else:
                self._expire(now)
                # Other replicas spend the same site's window: take this replica's share.
                if len(self._slots) < max(1, int(self.share.of(self.limit))):
                    self._slots.append(now)
                    self._open = True
                    self.stats.admitted += 1
                    return
                wait = self._slots[0] + self.window + EDGE_MARGIN_SECONDS - now
            wait = max(wait, 0.001)
            self.stats.waited_seconds += wait
            UPSTREAM_THROTTLE_WAIT.labels(SYSTEM).inc(wait)
            await self.clock.sleep(wait)

    def _after_reassignment(self) -> None:
        """A reassignment: the replica that had this site may have spent its share
        over the last window, which the site still counts. Assume it did, evenly (as a budget at
        its limit does), so calls here come back at the sustained rate rather than in a burst."""
        if self.share.epoch == self._epoch:
            return
        self._epoch = self.share.epoch
        now = self.clock.now()
        self._expire(now)
        own = max(1, int(self.share.of(self.limit)))
        missing = own - len(self._slots)
        if missing > 0:
            step = self.window / own
            assumed = [now - self.window + step * (i + 1) for i in range(missing)]
            self._slots = deque(sorted([*self._slots, *assumed]))

    def lockout(self) -> float:
        """A rate-limit exception arrived: send nothing to the site for ``pause_seconds``; returns it."""
        self.settle()
        until = self.clock.now() + self.pause_seconds
        if until > self.paused_until:
            self.paused_until = until
            self.stats.lockouts += 1
            self.stats.paused_seconds += self.pause_seconds
            log.warning("matrixlms.rate_limited", site=self.site, pause_seconds=self.pause_seconds,
                        calls_in_window=len(self._slots), limit=self.limit)
        return self.pause_seconds


def site_key(base_url: str) -> str:
    """The site a base URL names (scheme, host, port and path; case and a trailing slash aside)."""
    url = httpx.URL(base_url.strip())
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host.lower()}{port}{url.path.rstrip('/')}"


def per_replica_limit(calls_per_minute: int, replicas: int) -> int:
    """This replica's share of the site's budget (at least one call a minute)."""
    if calls_per_minute < 1 or replicas < 1:
        raise ValueError("calls_per_minute and replicas must be >= 1")
    return max(1, calls_per_minute // replicas)


class BudgetRegistry:
    """One ``SiteBudget`` per site for the whole process."""

    def __init__(self) -> None:
        self._budgets: dict[str, SiteBudget] = {}

    def get(self, base_url: str, *, limit: int, pause_seconds: float = DEFAULT_LOCKOUT_PAUSE_SECONDS,
            clock: BudgetClock | None = None) -> SiteBudget:
        """The site's shared budget, made on first use; a second caller asking for less tightens it."""
        key = site_key(base_url)
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = SiteBudget(limit=limit, pause_seconds=pause_seconds,
                                                     clock=clock or BudgetClock(), site=key)
            return budget
        if limit < budget.limit or pause_seconds > budget.pause_seconds:
            # Two configurations for one site: the stricter one protects both.
            log.warning("matrixlms.budget_tightened", site=key, limit=min(limit, budget.limit),
                        pause_seconds=max(pause_seconds, budget.pause_seconds))
            budget.limit = min(limit, budget.limit)
            budget.pause_seconds = max(pause_seconds, budget.pause_seconds)
        return budget

    def __len__(self) -> int:
        return len(self._budgets)


SITE_BUDGETS = BudgetRegistry()
