"""A hostile AB Connect: slow bodies, an hour's Retry-After, a 150 MB page, HTML with 200, wrong
types, an implausible cursor jump. Each time the poll fails with an error naming the cause, the
cursor stays where it was, and SIGTERM ends the worker within its grace period. The real worker
(``edusync run``) talks to the AB simulator through ``simulators/hostile_proxy.py``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psutil
import pytest

from simulators.hostile_proxy import HostileMode
from tests.standards_env import StandardsEnv

GRACE = 10.0  # runtime.shutdown_grace_seconds in the test configuration
FEED = ["/rest/v4.1/events"]  # the poller's requests; the handler's reads pass untouched

CASES = [
    ("slow_body", HostileMode(kind="trickle", trickle_seconds=2.0, paths=FEED),
     "no complete answer within 3s (stalled or trickling body)"),
    ("retry_after_an_hour", HostileMode(kind="retry_after", retry_after="3600", paths=FEED),
     "Retry-After 3600s is beyond the configured cap of 60s"),
    ("page_over_the_size_cap", HostileMode(kind="oversize", oversize_bytes=150 * 1024 * 1024, paths=FEED),
     "passed the cap of 8,388,608 bytes"),
    ("html_with_status_200", HostileMode(kind="html200", paths=FEED), "HTML page instead of JSON"),
    ("number_where_a_string_is_documented", HostileMode(kind="wrong_type", field="target", paths=FEED),
     "field 'target': Input should be a valid string (got int)"),
    ("implausible_cursor_jump", HostileMode(kind="seq_jump", jump_to=10**12, paths=FEED),
     "seq jumps from"),
]


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandardsEnv]:
    bench = StandardsEnv(kafka_bootstrap, tmp_path_factory.mktemp("hostile"), uuid.uuid4().hex[:10], hostile=True)
    bench.seed(documents=3, standards=20)
    bench.start_worker()
    bench.wait_converged(timeout=120)
    assert bench.stop_worker() == 0
    try:
        yield bench
    finally:
        bench.close()


@pytest.mark.parametrize(("case", "mode", "cause"), CASES, ids=[c[0] for c in CASES])
def test_the_poll_fails_naming_the_cause_the_cursor_stays_and_sigterm_stops_the_worker(
    env: StandardsEnv, case: str, mode: HostileMode, cause: str,
) -> None:
    env.mutate("modify_standard", count=2)  # the feed has news, so a bad page would move the cursor
    before = env.cursor()
    assert before is not None
    env.proxy.set(mode.model_copy())  # type: ignore[union-attr]
    since = env.log.stat().st_size
    env.start_worker()
    try:
        deadline = time.monotonic() + 90
        while not (failures := [line for line in env.log_lines(since)
                                if line.get("event") == "poll failed; cursor not moved"]):
            assert env.proc is not None and env.proc.poll() is None, env.log_tail()
            assert time.monotonic() < deadline, f"{case}: no failed poll\n{env.log_tail()}"
            time.sleep(0.3)
        assert cause in failures[0]["error"], failures[0]
        assert env.cursor() == before, f"{case}: the cursor moved"
        assert env.proc is not None
        rss = psutil.Process(env.proc.pid).memory_info().rss
        assert rss < 400 * 1024 * 1024, f"{case}: the worker holds {rss / 2**20:.0f} MB"
        # SIGTERM while the hostile upstream is still in play (for the slow body: mid-poll).
        assert env.stop_worker(timeout=GRACE + 5) == 0, env.log_tail()
    finally:
        env.proxy.set(HostileMode())  # type: ignore[union-attr]
        env.kill_worker()
    assert env.cursor() == before


def test_once_the_upstream_behaves_the_worker_catches_up(env: StandardsEnv) -> None:
    before = env.cursor()
    assert before is not None
    env.start_worker()
    env.wait_converged(timeout=120)
    deadline = time.monotonic() + 60
    while (now := env.cursor()) == before:
        assert time.monotonic() < deadline, "the cursor never moved on"
        time.sleep(0.5)
    assert now is not None and now["seq"] == env.ab.stats()["max_seq"]
    assert env.dead_letters() == []
    assert env.stop_worker() == 0
