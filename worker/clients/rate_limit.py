"""A client-side token bucket, shared by every request of one upstream account."""

from __future__ import annotations

import time

import anyio

from worker.metrics import UPSTREAM_THROTTLE_WAIT, watch_budget
from worker.replica_share import REPLICAS, BudgetShare


class TokenBucket:
    """Refills ``rate`` tokens per second up to ``burst``; ``acquire`` waits for a token.

    One instance per upstream account: every client of that account must share it,
    because the upstream counts requests per account, not per connection. ``rate`` and ``burst``
    are the account's; this replica takes its ``share`` of both (``share_with`` names the account's).
    """

    def __init__(self, rate: float, burst: float, *, system: str = "unknown", share: BudgetShare = REPLICAS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("token bucket needs rate > 0 and burst >= 1")
        self.account_rate = rate
        self.account_burst = burst
        self._share = share
        self._epoch = share.epoch
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = anyio.Lock()
        self._system = system
        watch_budget(system, self.use)

    def use(self) -> float:
        """Share of the bucket spent, as of now (refill included, nothing taken)."""
        tokens = min(self.burst, self._tokens + (time.monotonic() - self._stamp) * self.rate)
        return 1.0 - tokens / self.burst

    @property
    def rate(self) -> float:
        """Tokens per second for this replica."""
        return self._share.of(self.account_rate)

    @property
    def burst(self) -> float:
        """This replica's bucket size (at least one request)."""
        return max(1.0, self._share.of(self.account_burst))

    def share_with(self, share: BudgetShare) -> None:
        """From now on take ``share`` of the account's rate and burst."""
        self._share = share
        self._epoch = share.epoch

    def _refill(self) -> None:
        if self._share.epoch != self._epoch:
            # A new assignment: the account may have just been spent by the replica that had it
            # (the upstream still counts that), so refill from empty rather than start from a burst.
            self._epoch = self._share.epoch
            self._tokens = 0.0
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, tokens: float = 1.0) -> None:
        """Take ``tokens``, sleeping until the bucket holds enough."""
        async with self._lock:
            self._refill()
            if self._tokens < tokens:
                wait = (tokens - self._tokens) / self.rate
                UPSTREAM_THROTTLE_WAIT.labels(self._system).inc(wait)
                await anyio.sleep(wait)
                self._refill()
            self._tokens -= tokens

    def drain(self) -> None:
        """Empty the bucket, for when the server says we are over budget anyway."""
        self._tokens = 0.0
        self._stamp = time.monotonic()
