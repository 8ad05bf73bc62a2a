"""``edusync cursor show|set|reset``: the change goes through the control topic and the poller's
owner applies it between two polls, exactly once (AB Connect simulator, real Kafka and worker)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operator_tools import edusync, error_lines, published_seqs
from tests.standards_env import PARTNER, StandardsEnv
from worker.pollers.abconnect_events import POLLER_NAME

pytestmark = pytest.mark.slow(110)


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path, unique: str) -> Iterator[StandardsEnv]:
    with StandardsEnv(kafka_bootstrap, tmp_path, unique) as bench:
        yield bench


def wait_published(env: StandardsEnv, expected: Counter[int]) -> None:
    deadline = time.monotonic() + 90
    while (seqs := published_seqs(env, once=False)) != expected:
        assert all(seqs[s] <= expected[s] for s in seqs), f"published more than once too often: {seqs}"
        assert time.monotonic() < deadline, (sorted(seqs.items()), sorted(expected.items()), env.log_tail())
        time.sleep(0.5)


def test_set_and_reset_are_applied_once_by_the_owner_between_polls(env: StandardsEnv) -> None:
    env.seed(documents=2, standards=10)
    env.start_worker()
    env.mutate("modify_standard", count=5, seed=3)
    env.wait_converged(timeout=120)
    feed = sorted(e.seq for e in env.ab.list_events(PARTNER, None, [], 0, 1_000_000)[0])
    wait_published(env, Counter(feed))
    poller = f"{env.tenant}/{POLLER_NAME}"
    shown = edusync(env, "cursor", "show", "--poller", poller, "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert json.loads(shown.stdout) == {"poller": poller, "cursor": {"seq": feed[-1]}}

    back_to = feed[-4]
    result = edusync(env, "cursor", "set", "--poller", poller, "--to", json.dumps({"seq": back_to}), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["before"] == {"seq": feed[-1]}
    # The events after the new cursor are read and published again, once more, no more.
    wait_published(env, Counter(feed) + Counter(s for s in feed if s > back_to))
    time.sleep(2)
    assert published_seqs(env, once=False) == Counter(feed) + Counter(s for s in feed if s > back_to)
    assert env.cursor() == {"seq": feed[-1]}
    applied = [line for line in env.log_lines() if line.get("event") == "cursor set by operator"]
    assert len(applied) == 1 and applied[0]["cursor"] == {"seq": back_to} and applied[0]["requested_by"]

    assert edusync(env, "cursor", "reset", "--poller", poller).returncode == 0
    wait_published(env, Counter(feed) + Counter(feed) + Counter(s for s in feed if s > back_to))
    assert any(line.get("event") == "cursor reset by operator" for line in env.log_lines())
    assert env.stop_worker() == 0


def test_bad_cursor_requests_are_one_line_errors(env: StandardsEnv) -> None:
    poller = f"{env.tenant}/{POLLER_NAME}"
    for args, message in ((("cursor", "set", "--poller", poller), "needs --to"),
                          (("cursor", "set", "--poller", poller, "--to", "{seq"), "not JSON"),
                          (("cursor", "reset", "--poller", poller, "--to", "1"), "goes with cursor set"),
                          (("cursor", "show", "--poller", f"{env.tenant}/nope"), "unknown poller")):
        result = edusync(env, *args)
        lines = error_lines(result.stderr)
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
