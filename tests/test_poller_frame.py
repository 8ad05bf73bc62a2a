"""The poller frame against the real broker: SIGKILL at every step loses and duplicates nothing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter

import anyio
import pytest

from schemas.envelope import CloudEvent
from tests.kafka_tools import read_topic
from worker.poller_frame import idle_interval
from worker.topics import TopicSpec, all_topics, ensure_topics

pytestmark = pytest.mark.anyio

TOTAL = 120
STEPS = ["after_fetch:3", "mid_send:10", "mid_send:25", "before_commit:2", "after_commit:4"]


def _poller(
    bootstrap: str, topic: str, tenant: str, kill_at: str | None = None, total: int = TOTAL, page: int = 7
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tests.frame_apps", "poller", "--bootstrap", bootstrap, "--topic", topic,
           "--tenant", tenant, "--total", str(total), "--page", str(page)]
    if kill_at:
        cmd += ["--kill-at", kill_at]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _assert_exactly_once(bootstrap: str, topic: str, tenant: str, total: int = TOTAL) -> None:
    records = await read_topic(bootstrap, topic)
    ids = Counter(CloudEvent.from_bytes(r.value).id for r in records)
    subjects = {CloudEvent.from_bytes(r.value).subject for r in records}
    assert len(ids) == total, f"expected {total} distinct events, got {len(ids)}"
    assert max(ids.values()) == 1, f"duplicates: {[i for i, n in ids.items() if n > 1][:5]}"
    assert subjects == {f"{tenant}/item/{i}" for i in range(1, total + 1)}


@pytest.mark.parametrize("kill_at", STEPS)
async def test_poller_killed_at_a_step_publishes_every_event_once(
    kafka_bootstrap: str, unique: str, kill_at: str
) -> None:
    topic, tenant = f"test.poller.{unique}", f"t{unique}"
    await ensure_topics(kafka_bootstrap, [*all_topics(), TopicSpec(topic, partitions=3)])
    first = _poller(kafka_bootstrap, topic, tenant, kill_at)
    assert first.wait(timeout=120) == -signal.SIGKILL, first.stderr.read().decode() if first.stderr else ""
    second = _poller(kafka_bootstrap, topic, tenant)
    assert second.wait(timeout=120) == 0, second.stderr.read().decode() if second.stderr else ""
    await _assert_exactly_once(kafka_bootstrap, topic, tenant)


async def test_poller_killed_at_random_moments_publishes_every_event_once(
    kafka_bootstrap: str, unique: str
) -> None:
    topic, tenant = f"test.poller.{unique}", f"t{unique}"
    await ensure_topics(kafka_bootstrap, [*all_topics(), TopicSpec(topic, partitions=3)])
    rng = random.Random(7)
    kills = 0
    total = 3000  # small pages, many transactions: several seconds of work to kill into
    for _ in range(4):
        proc = _poller(kafka_bootstrap, topic, tenant, total=total, page=5)
        await anyio.sleep(rng.uniform(1.0, 2.5))  # start-up takes about a second; die somewhere after
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    last = _poller(kafka_bootstrap, topic, tenant, total=total, page=5)
    assert last.wait(timeout=120) == 0
    assert kills >= 1, "the poller finished before any kill; the test proved nothing"
    await _assert_exactly_once(kafka_bootstrap, topic, tenant, total)


def test_idle_interval_doubles_up_to_four_times() -> None:
    assert [idle_interval(0.5, q) for q in range(6)] == [0.5, 0.5, 1.0, 2.0, 2.0, 2.0]
