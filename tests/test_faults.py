"""The shared fault injector over real HTTP: a lost response is applied, then answered 504."""

from __future__ import annotations

import httpx

from simulators.faults import FaultConfig
from simulators.server import ThreadedServer
from tests.kv_target import KVTarget


def test_lost_response_applies_the_write_and_loses_the_answer() -> None:
    target = KVTarget()
    target.faults.set(FaultConfig(lost_response_rate=1.0, remaining=1))
    with ThreadedServer(target.app()) as server:
        lost = httpx.put(f"{server.url}/kv/a", json={"version": 1, "value": "x"})
        assert lost.status_code == 504 and lost.content == b""
        assert target.writes == [("a", 1)], "the write must have happened although the answer was lost"
        again = httpx.put(f"{server.url}/kv/a", json={"version": 2, "value": "y"})
        assert again.status_code == 200 and again.json() == {"version": 2, "value": "y"}
    assert target.faults.injected == 1
