"""Reconcile requests of the MatrixLMS roster flow, spread evenly over the reconcile interval.

MatrixLMS is never read per event (FLOWS.md 2.5), so once per ``interval`` the handler's picture
of the site is checked against MatrixLMS: ``slices`` requests, slice ``k`` of round ``r`` due at
``start + (r + 1) * interval + k * interval / slices``. The reads thus come at a small, steady share
of the site's budget (1,836 classes a day in 96 slices: about 2.6 calls a minute) instead of one
32-minute burst. The cursor counts the requests published, so a restart neither repeats nor skips
one; after a stop longer than a round only the latest round's worth is requested.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from schemas.envelope import make_event
from schemas.matrixlms import RECONCILE_REQUESTED, MatrixReconcileRequestedV1
from worker.poller_frame import Outbound, PollResult
from worker.topics import MATRIXLMS_RECONCILE

POLLER_NAME = "matrixlms.reconcile"
SOURCE = "edusync:matrixlms.reconcile"


class MatrixReconcilePoller:
    """Publishes the reconcile requests of one tenant as they fall due."""

    name = POLLER_NAME

    def __init__(self, tenant: str, *, interval: float, slices: int, clock: Callable[[], float] = time.time) -> None:
        if interval <= 0 or slices < 1:
            raise ValueError("a reconcile needs a positive interval and at least one slice")
        self.tenant = tenant
        self.interval = interval
        self.slices = slices
        self._clock = clock

    @property
    def step(self) -> float:
        """Seconds between two requests."""
        return self.interval / self.slices

    async def poll(self, cursor: Any) -> PollResult:
        """The requests due since the last poll; the first round starts one interval after the
        flow first starts (its initial sync is fresh)."""
        now = self._clock()
        if cursor is None:
            return PollResult(events=[], cursor={"start": now, "done": 0})
        start, done = float(cursor["start"]), int(cursor["done"])
        due = int((now - start - self.interval) // self.step) + 1
        if due <= done:
            return PollResult(events=[], cursor=cursor)
        first = max(done, due - self.slices)
        events = [self._request(start, n) for n in range(first, due)]
        return PollResult(events=events, cursor={"start": start, "done": due},
                          newest_time=datetime.fromtimestamp(start + self.interval + (due - 1) * self.step, UTC))

    def _request(self, start: float, n: int) -> Outbound:
        round_, slice_ = divmod(n, self.slices)
        at = datetime.fromtimestamp(start + self.interval + n * self.step, UTC)
        data = MatrixReconcileRequestedV1(round=round_, slice=slice_, slices=self.slices, requested_at=at)
        return Outbound(MATRIXLMS_RECONCILE, make_event(
            tenant=self.tenant, source=SOURCE, type=RECONCILE_REQUESTED,
            subject=f"{self.tenant}/reconcile/{slice_}", version=f"{start:.0f}/{n}", data=data, time=at))
