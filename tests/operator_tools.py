"""Shared by the operator-control tests: the ``edusync`` CLI against a standards bench, its
one-line errors, component states on /readyz, and what the AB Connect poller published."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import anyio
import httpx

from schemas.envelope import CloudEvent
from tests.kafka_tools import read_topic
from tests.standards_env import CANVAS_TOKEN, PARTNER_KEY, StandardsEnv
from worker.topics import ABCONNECT_EVENTS

HANDLER = "standards_to_canvas"


def edusync(env: StandardsEnv, *args: str) -> subprocess.CompletedProcess[str]:
    """One ``edusync`` command against the bench's configuration (with its secrets)."""
    cli_env = {**os.environ, "AB_KEY": PARTNER_KEY, "CANVAS_TOKEN": CANVAS_TOKEN}
    return subprocess.run([sys.executable, "-m", "worker", *args, "--config", str(env.config)],
                          capture_output=True, text=True, timeout=120, env=cli_env)


def error_lines(stderr: str) -> list[str]:
    """What stderr says besides the JSON log lines (aiokafka may log a young topic's hiccups)."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("{")]


def wait_state(env: StandardsEnv, component: str, state: str, timeout: float = 90) -> dict[str, Any]:
    """Poll /readyz until ``component`` reports ``state``; returns its entry."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            entry = httpx.get(f"http://127.0.0.1:{env.ops_port}/readyz", timeout=5).json()["components"].get(component)
        except httpx.HTTPError:
            entry = None
        if entry is not None and entry.get("state") == state:
            return dict(entry)
        assert env.proc is not None and env.proc.poll() is None, env.log_tail()
        assert time.monotonic() < deadline, f"{component} never {state}: {entry}\n{env.log_tail()}"
        time.sleep(0.3)


def event_requests(env: StandardsEnv) -> int:
    return int(env.ab.stats()["by_resource"].get("events", 0))


def published_seqs(env: StandardsEnv, *, once: bool = True) -> Counter[int]:
    """How often each AB Connect event seq was published for the bench's tenant; with ``once``,
    also that no CloudEvent id was published twice."""
    records = anyio.run(read_topic, env.bootstrap, ABCONNECT_EVENTS)
    events = [CloudEvent.from_bytes(r.value) for r in records]
    mine = [e for e in events if e.tenant == env.tenant]
    assert not once or len({e.id for e in mine}) == len(mine), "a CloudEvent id was published twice"
    return Counter(int(e.data_object()["seq"]) for e in mine)
