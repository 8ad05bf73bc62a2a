"""The rate-budget use gauge of each client-side budget: spent share, read at scrape time."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from worker.clients.canvas_base import RateBudget
from worker.clients.matrixlms_budget import SiteBudget
from worker.clients.rate_limit import TokenBucket


def _uses(system: str) -> list[float]:
    return [s.value for family in REGISTRY.collect() for s in family.samples
            if s.name == "edusync_rate_budget_use_ratio" and s.labels["system"] == system]


@pytest.mark.anyio
async def test_a_token_bucket_reports_its_spent_share() -> None:
    bucket = TokenBucket(rate=0.001, burst=4, system="budgettest")  # refills too slowly to matter here
    assert bucket.use() == pytest.approx(0.0, abs=0.01)
    for _ in range(3):
        await bucket.acquire()
    assert bucket.use() == pytest.approx(0.75, abs=0.01)
    assert any(v == pytest.approx(0.75, abs=0.01) for v in _uses("budgettest"))


@pytest.mark.anyio
async def test_a_matrixlms_site_reports_its_window_and_a_lockout_as_full() -> None:
    budget = SiteBudget(limit=10)
    for _ in range(4):
        await budget.acquire()
        budget.settle()
    assert budget.use() == pytest.approx(0.4)
    budget.lockout()
    assert budget.use() == 1.0


def test_canvas_reports_the_quota_it_was_told() -> None:
    budget = RateBudget()
    assert budget.use() == 0.0
    budget.observe(httpx.Headers({"x-rate-limit-remaining": "700", "x-request-cost": "0"}))
    budget.observe(httpx.Headers({"x-rate-limit-remaining": "175"}))
    assert budget.use() == pytest.approx(0.75)
