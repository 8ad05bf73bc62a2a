"""Upstream retries against the real Class simulator with injected 5xx: one warning per system, host
and tenant summarises them by reason; the first retry of each reason in a window is an info line,
the rest debug."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import orjson
import pytest

from simulators.classroom import DEMO_SECRET, ClassSimulator
from simulators.classroom import create_app as class_app
from simulators.server import ThreadedServer
from worker.clients.classroom import ClassroomClient
from worker.clients.http import HTTPSettings
from worker.logs import configure_logging
from worker.upstream_retries import SUMMARY, tenant_scope

pytestmark = pytest.mark.anyio


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer(class_app(ClassSimulator(examples=False))) as running:
        yield running


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    monkeypatch.setattr(SUMMARY, "every", 0.3)  # a short window, so the test sees it close
    yield stream
    configure_logging("info")


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def _faults(server: ThreadedServer, remaining: int) -> None:
    httpx.put(f"{server.url}/_sim/faults", json={"error_rate": 1.0, "remaining": remaining, "seed": 1},
              timeout=10).raise_for_status()


async def _summaries(stream: io.StringIO, count: int) -> list[dict[str, Any]]:
    with anyio.fail_after(60):  # a hang guard; the window is 0.3 s
        while True:
            found = [e for e in _lines(stream) if e["event"] == "upstream.retries"]
            if len(found) >= count:
                return found
            await anyio.sleep(0.05)


async def test_retries_are_debug_lines_summarised_per_system_host_and_tenant(
        server: ThreadedServer, logs: io.StringIO) -> None:
    client = ClassroomClient(f"{server.url}/api/v1", DEMO_SECRET,
                             http=HTTPSettings(max_attempts=5, backoff_base_seconds=0.01, backoff_cap_seconds=0.02))
    try:
        _faults(server, 3)
        with tenant_scope("district-a"):
            await client.users_page(limit=1)
        _faults(server, 2)
        with tenant_scope(["district-b"]):
            await client.users_page(limit=1)
        summaries = await _summaries(logs, 2)
    finally:
        await client.aclose()

    retries = [e for e in _lines(logs) if e["event"] == "upstream.retry"]
    assert len(retries) == 5
    assert [e["level"] for e in retries] == ["info", "debug", "debug", "info", "debug"]
    assert {e["tenant"] for e in retries} == {"district-a", "district-b"}
    by_tenant = {s["tenant"]: s for s in summaries}
    assert set(by_tenant) == {"district-a", "district-b"}
    for tenant, count in (("district-a", 3), ("district-b", 2)):
        summary = by_tenant[tenant]
        assert summary["level"] == "warning"
        assert (summary["system"], summary["host"]) == ("classroom", "127.0.0.1")
        assert summary["retries"] == count and summary["by_reason"] == {"transient": count}
    assert [e for e in _lines(logs) if e["level"] == "warning" and e["event"] != "upstream.retries"] == []
